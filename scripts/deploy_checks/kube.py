"""kubernetes-validate over each kustomize build, and reading a build back.

A build is the output of `kustomize build` for one kustomization, saved as BUILD_DIR/NAME.yaml
by check-deploy.sh (NAME is the directory under deploy/kubernetes, `/` turned into `_`)."""

import os
import re
import subprocess
import sys

import yaml

# Custom resources: kubernetes-validate has no schema for them; the manifest checks check them
# instead. Any other kind without a schema is an error.
CRD_KINDS = {
    "ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication",
    "KafkaTopic",
}


def load_build(build_dir, name):
    """The objects of one build, in order."""
    with open(os.path.join(build_dir, name + ".yaml"), encoding="utf-8") as f:
        return [o for o in yaml.safe_load_all(f) if o]


def _classify(name, line):
    """One line of kubernetes-validate's output -> (what to print or None, whether it is fine)."""
    if line.startswith("INFO"):
        m = re.match(r".*resource ([^ ]+) against.*", line)
        return "ok    %s: %s" % (name, m.group(1) if m else line), True
    if line.startswith("WARN"):
        m = re.search(r"schema for kind ([A-Za-z]+) with api version", line)
        if m and m.group(1) in CRD_KINDS:
            return "warn  %s: %s is a custom resource, no schema (checked below)" % (
                name, m.group(1)), True
        return "ERROR %s: %s" % (name, line[len("WARN "):]), False
    if not line:
        return None, True
    return "ERROR %s: %s" % (name, line), False


def validate(build_dir, names, kubernetes_version):
    """kubernetes-validate --strict on every build: each resource validated, custom resources
    (CRD_KINDS) allowed without a schema, anything else it reports is a failure."""
    if not names:
        print("nothing was built")
        return 1
    ok = True
    for name in names:
        out = subprocess.run(
            [sys.executable, "-m", "kubernetes_validate", "--strict",
             "--kubernetes-version", kubernetes_version,
             os.path.join(build_dir, name + ".yaml")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
        )
        ok &= out.returncode == 0
        for line in out.stdout.rstrip("\n").split("\n"):
            text, fine = _classify(name, line)
            ok &= fine
            if text is not None:
                print(text)
    return 0 if ok else 1
