#!/usr/bin/env bash
# CI: scripts/check-deploy.sh must fail on broken artefacts, in the step that owns the check.
# Each case copies the working tree to a temporary directory, breaks one artefact there (a
# kustomization naming a missing file, a metric name typo in an alert, a dashboard query on an
# unknown metric, a replica count, ...), runs `check-deploy.sh --no-install` on the copy and
# compares the steps that FAIL with the ones expected. Case c00 breaks nothing: all must pass.
#
#   scripts/ci/deploy-mutations.sh              every case (about 20 s each on an idle machine)
#   scripts/ci/deploy-mutations.sh c04 c13      only these
#
# Needs the tools check-deploy.sh uses; run scripts/check-deploy.sh once first to install them.
# The cases on the binary (c26, c28) need target/release/silkroute (or SILKROUTE_BIN), c27
# needs /usr/bin/curl (an ELF that links libcurl); without them they are skipped.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
BIN=${SILKROUTE_BIN:-$ROOT/target/release/silkroute}

# case -> the steps expected to fail (keys as in step_key below), "-" for none.
declare -A EXPECT=(
  [c00]="-"
  [c01]="build"
  [c02]="tests metrics"
  [c03]="copies manifests tests metrics"
  [c04]="metrics"
  [c05]="dashboard"
  [c06]="dashboard"
  [c07]="dashboard"
  [c09]="manifests"
  [c10]="manifests"
  [c11]="manifests"
  [c12]="manifests"
  [c13]="copies manifests"
  [c14]="manifests"
  [c15]="hadolint"
  [c16]="tests"
  [c17]="validate"
  [c18]="manifests"
  [c19]="rules tests"
  [c20]="dashboard"
  [c21]="manifests"
  [c22]="manifests"
  [c23]="dashboard"
  [c24]="manifests"
  [c25]="manifests"
  [c26]="config"
  [c27]="config libs"
  [c28]="-"
)

DASH=deploy/grafana/silkroute.json
# dash PYTHON: edits the dashboard; `d` is the dashboard, `panels` every panel, rows included.
dash() {
  python3 - "$DASH" "$1" <<'PY'
import json, sys
path, code = sys.argv[1], sys.argv[2]
with open(path) as f:
    d = json.load(f)
def walk(ps):
    for p in ps or []:
        yield p
        yield from walk(p.get("panels"))
panels = list(walk(d["panels"]))
exec(code)
with open(path, "w") as f:
    f.write(json.dumps(d, indent=2) + "\n")
PY
}
first_lag='0,/silkroute_consumer_lag_messages) > 10000/s//'

# break CASE: breaks the tree in the current directory; sets FIX=1 when check-deploy.sh must
# regenerate the PrometheusRule first (an edit of the rule file made the proper way).
break_tree() {
  FIX=0
  case "$1" in
    c00) ;;
    c01) sed -i 's#^  - ../../base$#  - ../../base\n  - missing.yaml#' deploy/kubernetes/overlays/dev/kustomization.yaml ;;
    c02) FIX=1; sed -i "${first_lag}silkroute_consumer_lag_mesages) > 10000/" deploy/prometheus/silkroute-rules.yml ;;
    c03) sed -i "${first_lag}silkroute_consumer_lag_mesages) > 10000/" deploy/prometheus/silkroute-rules.yml ;;
    c04) dash 'e = panels[7]["targets"][0]; e["expr"] = e["expr"].replace("silkroute_events_consumed_total", "silkroute_events_consumd_total")' ;;
    c05) dash 'e = panels[8]["targets"][0]; e["expr"] = e["expr"].replace("$namespace", "$namespacee")' ;;
    c06) dash 'panels[3]["gridPos"] = dict(panels[2]["gridPos"])' ;;
    c07) dash 'panels[4]["targets"][0]["expr"] += " )"' ;;
    c09) sed -i 's/^  replicas: 3$/  replicas: 2/' deploy/kubernetes/overlays/production/deployment-patch.yaml ;;
    c10) sed -i 's/runAsUser: 65532/runAsUser: 1000/' deploy/kubernetes/base/deployment.yaml ;;
    c11) python3 - <<'PY'
p = "deploy/kubernetes/overlays/production/kafka-topics/topics.yaml"
t = open(p).read()
j = t.index("cleanup.policy: compact", t.index("name: silkroute-cells-changelog"))
open(p, "w").write(t[:j] + "cleanup.policy: delete" + t[j + len("cleanup.policy: compact"):])
PY
      ;;
    c12) printf 'bogus_key = 1\n' >> deploy/kubernetes/overlays/production/silkroute.toml ;;
    c13) sed -i '0,/for: 10m/s//for: 11m/' deploy/kubernetes/components/monitoring/prometheusrule.yaml ;;
    c14) printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  password: hunter2\n' \
           > deploy/kubernetes/base/secret.yaml
         sed -i 's/^resources:$/resources:\n  - secret.yaml/' deploy/kubernetes/base/kustomization.yaml ;;
    c15) printf 'RUN cd /tmp && echo hi\n' >> Dockerfile ;;
    c16) FIX=1; sed -i "${first_lag}silkroute_consumer_lag_messages) > 20000/" deploy/prometheus/silkroute-rules.yml ;;
    c17) sed -i '0,/imagePullPolicy:/s//imagePullPolicyy:/' deploy/kubernetes/base/deployment.yaml ;;
    c18) sed -i 's/maxReplicaCount: 3/maxReplicaCount: 10/' deploy/kubernetes/overlays/production-keda/scaledobject.yaml ;;
    c19) FIX=1; sed -i "${first_lag}silkroute_consumer_lag_messages) > > 10000/" deploy/prometheus/silkroute-rules.yml ;;
    c20) dash 'd["schemaVersion"] = 30' ;;
    c21) sed -i 's/grafana_dashboard: "1"/grafana_dashboard: "0"/' $(grep -rl 'grafana_dashboard: "1"' deploy) ;;
    c22) sed -i 's/^group_id = "silkroute"$/group_id = "silkroute"\ninstance_id = "shared"/' deploy/kubernetes/overlays/production/silkroute.toml ;;
    c23) dash 'del d["templating"]["list"][0]' ;;
    c24) sed -i 's/fieldPath: metadata.name/fieldPath: metadata.namespace/' deploy/kubernetes/base/deployment.yaml ;;
    c25) sed -i 's/port: 9464/port: 9465/' deploy/kubernetes/base/service.yaml ;;
    c26) export SILKROUTE_BIN=$BIN
         printf '\n[http]\nlisten = "nonsense"\n' >> deploy/kubernetes/overlays/production/silkroute.toml ;;
    c27) mkdir -p target/release && cp /usr/bin/curl target/release/silkroute ;;
    c28) mkdir -p target/release && cp "$BIN" target/release/silkroute ;;
    *) echo "no case $1" >&2; return 2 ;;
  esac
}

step_key() {
  case "$1" in
    tools*) echo tools ;; "derived copies"*) echo copies ;; "kustomize build"*) echo build ;;
    kubernetes-validate*) echo validate ;; "manifest checks"*) echo manifests ;;
    "promtool check rules"*) echo rules ;; "promtool test rules"*) echo tests ;;
    dashboard*) echo dashboard ;; "metric names"*) echo metrics ;; configuration*) echo config ;;
    hadolint*) echo hadolint ;; "release binary"*) echo libs ;; *) echo "?$1" ;;
  esac
}

cases=("$@")
[ ${#cases[@]} -gt 0 ] || mapfile -t cases < <(printf '%s\n' "${!EXPECT[@]}" | sort)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0 skipped=0
for c in "${cases[@]}"; do
  if [ -z "${EXPECT[$c]+x}" ]; then echo "no case $c" >&2; exit 2; fi
  if { [ "$c" = c26 ] || [ "$c" = c28 ]; } && [ ! -x "$BIN" ]; then
    echo "SKIP  $c: no $BIN"; skipped=$((skipped + 1)); continue
  fi
  if [ "$c" = c27 ] && [ ! -x /usr/bin/curl ]; then
    echo "SKIP  $c: no /usr/bin/curl"; skipped=$((skipped + 1)); continue
  fi
  tree=$work/$c
  mkdir -p "$tree"
  # The working tree as it is (files deleted but not yet committed are left out).
  git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$tree"
  got=$(
    cd "$tree" || exit 2
    unset SILKROUTE_BIN
    break_tree "$c" || exit 2
    args=(--no-install); [ "$FIX" = 1 ] && args+=(--fix)
    scripts/check-deploy.sh "${args[@]}" >"$work/$c.log" 2>&1
    sed -n 's/^    FAIL  //p' "$work/$c.log" | while IFS= read -r s; do step_key "$s"; done | sort | tr '\n' ' '
  )
  want=$(tr ' ' '\n' <<<"${EXPECT[$c]}" | grep -v '^-$' | grep . | sort | tr '\n' ' ')
  if [ "$got" = "$want" ]; then
    echo "ok    $c: fails ${want:-nothing}"; passed=$((passed + 1))
  else
    echo "FAIL  $c: expected to fail [${want}], failed [${got}]"; failed=$((failed + 1))
    sed 's/^/      /' "$work/$c.log" | grep -E 'ERROR|FAIL|differs|not exported' | head -20
  fi
  rm -rf "$tree"
done
echo "deploy mutations: $passed as expected, $failed not, $skipped skipped"
[ $failed -eq 0 ]
