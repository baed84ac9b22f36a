#!/usr/bin/env bash
# scripts/ci/contract.sh [SAMPLES_DIR...] — the machine-readable contract, checked by tools.
#
#   1. docs/asyncapi.yaml validated by the AsyncAPI CLI (npm @asyncapi/cli), payload schemas
#      included (it resolves the $refs into docs/schema/)
#   2. docs/schema/*.json checked against the JSON Schema 2020-12 meta-schema (check-jsonschema)
#   3. the input events of data/sample/ (and data/releases/ when it exists) against the event
#      schemas, and the records `silkroute replay` derives from each set against the record
#      schemas (jsonschema-rs, scripts/ci/contract_check.py); for data/releases also the
#      records (and keys) that scripts/check_releases.py derives on its own from contract v2
#   4. each SAMPLES_DIR written by the test harness (tests/common/mod.rs, when the tests ran
#      with SILKROUTE_CONTRACT_SAMPLES=<dir>): events.jsonl (valid events the tests published)
#      and records.jsonl (records they read back or derived offline) must validate;
#      refused-events.jsonl (events the tests published that the service refuses) must not
#   5. deliberately wrong records must fail: built-in variants of the bulletin's headline
#      record (contract_check.py wrong), and the real replayed XJ record with ytd_cny turned
#      into a JSON number and with yoy_rank removed, through the check-jsonschema CLI
#
# Installs what is missing into target/ci-tools (a Python venv with check-jsonschema and
# jsonschema-rs; @asyncapi/cli with npm). The binary: $SILKROUTE_BIN, else
# target/release/silkroute (built when missing). Every step runs; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
tools=$target/ci-tools
work=$target/contract
step() { printf '\n--- %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
failed=()
fail() { failed+=("$1"); echo "FAILED: $1"; }
started=$(date +%s)

step "tools"
ASYNCAPI_CLI_VERSION=${ASYNCAPI_CLI_VERSION:-4.1.1}
venv=$tools/venv
if ! "$venv/bin/python" -c 'import jsonschema_rs' 2>/dev/null \
  || [ ! -x "$venv/bin/check-jsonschema" ]; then
  python3 -m venv "$venv" || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
  "$venv/bin/pip" install -q --disable-pip-version-check check-jsonschema jsonschema-rs || exit 1
fi
asyncapi=$tools/npm/node_modules/.bin/asyncapi
if [ ! -x "$asyncapi" ]; then
  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
  mkdir -p "$tools/npm"
  # The CLI with its dependency overrides (scripts/ci/npm-tools/package.json says why).
  sed "s/\"@asyncapi\/cli\": \"[^\"]*\"/\"@asyncapi\/cli\": \"$ASYNCAPI_CLI_VERSION\"/" \
    "$root/scripts/ci/npm-tools/package.json" >"$tools/npm/package.json"
  npm install --prefix "$tools/npm" --no-audit --no-fund --loglevel=error >/dev/null || exit 1
fi
# No anonymous usage metrics (CI reaches no metrics endpoint; trying costs time).
export ASYNCAPI_METRICS_CONFIG_PATH=$tools/asyncapi-analytics.json
[ -f "$ASYNCAPI_METRICS_CONFIG_PATH" ] \
  || echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"ci"}' >"$ASYNCAPI_METRICS_CONFIG_PATH"
echo "asyncapi $("$asyncapi" --version 2>/dev/null | head -1)"
"$venv/bin/check-jsonschema" --version
py=$venv/bin/python
check=$root/scripts/ci/contract_check.py

step "AsyncAPI document: asyncapi validate docs/asyncapi.yaml"
out=$("$asyncapi" validate docs/asyncapi.yaml --fail-severity warn 2>&1)
rc=$?
echo "$out" | grep -Ev '^\s*$|anonymous metrics'
[ $rc -eq 0 ] || fail "asyncapi validate (exit $rc)"
# Every schema file is a payload of the document (so the CLI has validated it too).
for f in docs/schema/*.schema.json; do
  case $(basename "$f") in defs.schema.json | record.schema.json) continue ;; esac
  grep -q "\./schema/$(basename "$f")" docs/asyncapi.yaml || fail "docs/asyncapi.yaml does not reference $f"
done

step "JSON Schemas against the 2020-12 meta-schema"
"$venv/bin/check-jsonschema" --check-metaschema docs/schema/*.json || fail "meta-schema"

bin=${SILKROUTE_BIN:-$target/release/silkroute}
if [ -n "${SILKROUTE_BIN:-}" ] && [ ! -x "$bin" ]; then
  fail "SILKROUTE_BIN=$bin is not an executable"
  bin=
elif [ ! -x "$bin" ]; then
  step "building $bin"
  cargo build --release --locked --quiet || { fail "cargo build --release"; bin=; }
fi
mkdir -p "$work"
for set in data/sample data/releases; do
  files=("$set"/*.jsonl)
  [ -e "${files[0]}" ] || { echo "($set: no event files, skipped)"; continue; }
  step "$set: events, and the records replay derives from them"
  "$py" "$check" events "${files[@]}" || fail "$set events"
  if [ "$set" = data/releases ] && [ -f scripts/check_releases.py ]; then
    # The records of an independent contract-v2 derivation (not the engine's), with keys.
    if python3 scripts/check_releases.py --records "$work/derived-releases.jsonl" >"$work/check_releases.out" 2>&1; then
      "$py" "$check" records "$work/derived-releases.jsonl" || fail "$set records derived by check_releases.py"
    else
      tail -5 "$work/check_releases.out"
      fail "scripts/check_releases.py --records"
    fi
  fi
  [ -n "$bin" ] || continue
  records=$work/replay-$(basename "$set").jsonl
  if "$bin" replay "${files[@]}" >"$records" 2>"$work/replay-$(basename "$set").err"; then
    tail -1 "$work/replay-$(basename "$set").err"
    "$py" "$check" records "$records" || fail "$set replay records"
  else
    cat "$work/replay-$(basename "$set").err"
    fail "silkroute replay $set"
  fi
done

for dir in "$@"; do
  step "test-suite samples in $dir"
  [ -s "$dir/events.jsonl" ] || fail "$dir/events.jsonl missing or empty (did the tests run with SILKROUTE_CONTRACT_SAMPLES=$dir?)"
  [ -s "$dir/records.jsonl" ] || fail "$dir/records.jsonl missing or empty"
  [ -s "$dir/events.jsonl" ] && { "$py" "$check" events "$dir/events.jsonl" || fail "$dir events"; }
  [ -s "$dir/records.jsonl" ] && { "$py" "$check" records "$dir/records.jsonl" || fail "$dir records"; }
  if [ -s "$dir/refused-events.jsonl" ]; then
    "$py" "$check" refused "$dir/refused-events.jsonl" || fail "$dir refused events"
  fi
done

step "deliberately wrong records must fail"
"$py" "$check" wrong || fail "wrong records"
real=$work/replay-sample.jsonl
if [ -s "$real" ]; then
  # The real headline record, broken two ways; the CLI must refuse each, naming the field.
  "$py" - "$real" "$work" <<'EOF'
import json, sys
records, work = sys.argv[1], sys.argv[2]
r = next(json.loads(l) for l in open(records) if '"region":"XJ","flow":"total","dimension":"total"' in l
         and '"period":"2024-09"' in l)
number = dict(r, ytd_cny=float(r["ytd_cny"]))
json.dump(number, open(f"{work}/wrong-ytd-number.json", "w"))
no_rank = {k: v for k, v in r.items() if k != "yoy_rank"}
json.dump(no_rank, open(f"{work}/wrong-no-rank.json", "w"))
EOF
  for wrong in "wrong-ytd-number.json:ytd_cny" "wrong-no-rank.json:'yoy_rank' is a required property"; do
    file=${wrong%%:*} field=${wrong#*:}
    out=$("$venv/bin/check-jsonschema" --verbose --schemafile docs/schema/trade.schema.json "$work/$file" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && grep -qF "$field" <<<"$out"; then
      echo "  check-jsonschema refuses $file (names $field)"
    else
      echo "$out"
      fail "check-jsonschema accepted $file, or refused it without naming $field"
    fi
  done
fi

step "contract: done in $(($(date +%s) - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "contract: all checks passed"
