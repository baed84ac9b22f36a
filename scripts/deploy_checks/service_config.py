"""Each build's configuration, loaded by the real silkroute binary: the ConfigMap's
silkroute.toml plus the Deployment's SILKROUTE__* variables, with placeholders for values from
Secrets and a pod name for the downward API. `replay` with no events loads and checks the
configuration exactly as `run` does, then exits without connecting anywhere; an unknown key or
a bad value exits 2 naming the key."""

import os
import subprocess
import tempfile

from .kube import load_build

BINARIES = ("target/release/silkroute", "target/debug/silkroute")
POD_NAME = "silkroute-5d8f7c9b6d-x2k9z"  # a pod name, as the downward API gives it
SECRET_PLACEHOLDER = "placeholder-from-secret"
TIMEOUT_S = 60


def find_binary():
    """SILKROUTE_BIN, else the newer of the release and debug builds; None without one."""
    if os.environ.get("SILKROUTE_BIN"):
        return os.environ["SILKROUTE_BIN"]
    built = [b for b in BINARIES if os.access(b, os.X_OK)]
    return max(built, key=os.path.getmtime) if built else None


def pod_configuration(objs):
    """(silkroute.toml text, [(variable, value)]) of the build's Deployment, or None."""
    deps = [o for o in objs if o["kind"] == "Deployment"]
    if not deps:
        return None
    pod = deps[0]["spec"]["template"]["spec"]
    c = next(c for c in pod["containers"] if c["name"] == "silkroute")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/silkroute")
    cm_name = vols[mount["name"]]["configMap"]["name"]
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == cm_name)
    env = []
    for e in c.get("env", []):
        if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            value = POD_NAME
        else:
            value = e.get("value", SECRET_PLACEHOLDER if "valueFrom" in e else "")
        env.append((e["name"], value))
    return cm["data"]["silkroute.toml"], env


def check(build_dir, names):
    binary = find_binary()
    if binary is None:
        print("no silkroute binary built (target/*/silkroute): skipped")
        return 3
    print("binary: %s" % binary)
    rc = 0
    with tempfile.TemporaryDirectory() as home:
        for name in names:
            found = pod_configuration(load_build(build_dir, name))
            if found is None:
                continue
            toml, env = found
            path = os.path.join(home, name + ".toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(toml)
            # Only the pod's variables: none of this machine's SILKROUTE__* may leak in.
            clean = {"PATH": os.environ.get("PATH", ""), "HOME": home, **dict(env)}
            try:
                run = subprocess.run([binary, "--config", path, "replay", "-"], env=clean,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S,
                                     check=False)
                ok, out = run.returncode == 0, run.stdout
            except subprocess.TimeoutExpired as e:
                ok, out = False, (e.output or b"").decode(errors="replace") + "(timed out)"
            if ok:
                print("ok    %s: configuration accepted" % name)
            else:
                lines = [ln for ln in out.splitlines() if "config" in ln.lower()]
                print("ERROR %s: the service refuses its configuration: %s" % (
                    name, "\n".join(lines[:3])))
                rc = 1
    return rc
