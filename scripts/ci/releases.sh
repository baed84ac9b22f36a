#!/usr/bin/env bash
# CI: the two bundled sample data sets, both reconstructions of the same bulletin.
#   1. python3 ≥ 3.10 (standard library only); installed with apt-get when missing
#   2. regenerate data/releases and data/sample into a temporary directory: each must be
#      byte-identical to the committed files (README.md included)
#   3. scripts/check_releases.py on the committed data/releases: the 13 statements by the
#      contract v2 derivation rules, the release shape, agreement with data/sample
#   4. scripts/check_sample.py on the committed data/sample: the 13 statements (v1 rules)
set -euo pipefail
cd "$(dirname "$0")/../.."
step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "python"
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi
python3 --version

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "regenerate"
python3 scripts/gen_releases.py --out "$tmp/releases"
python3 scripts/gen_sample.py --out "$tmp/sample"
for set in releases sample; do
  if ! diff -r "$tmp/$set" "data/$set" >"$tmp/$set.diff"; then
    echo "data/$set differs from what scripts/gen_$set.py generates:"
    head -20 "$tmp/$set.diff"
    exit 1
  fi
  echo "data/$set: $(cat data/$set/*.jsonl | wc -l) events, identical to a fresh generation"
done

step "check data/releases"
python3 scripts/check_releases.py

step "check data/sample"
python3 scripts/check_sample.py
