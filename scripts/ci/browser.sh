#!/usr/bin/env bash
# The page in a real browser (issue 16): Debian's chromium, headless, driven by playwright-core
# (from npm, no browser download). Checks the live page of `silkroute demo` and the report
# files (from data/sample, and from data/releases when it exists): the rendered DOM shows the
# bulletin's 13 figures, the console shows no errors, nothing is wider than a phone's screen;
# screenshots (desktop and phone width) go to target/browser/.
#
# Uses target/release/silkroute, else target/debug/silkroute (built when neither exists);
# SILKROUTE_BIN overrides. Exit 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=${SILKROUTE_BIN:-}
if [ -z "$bin" ]; then
  for b in "$target/release/silkroute" "$target/debug/silkroute"; do
    if [ -x "$b" ]; then bin=$b; break; fi
  done
fi
if [ -z "$bin" ]; then
  cargo build --locked --bin silkroute
  bin=$target/debug/silkroute
fi

if ! command -v chromium >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
tools=$target/ci-tools/browser
if [ ! -f "$tools/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --no-save --silent playwright-core@1.49 >/dev/null)
fi
chromium --version 2>/dev/null

out=$target/browser
rm -rf "$out"
mkdir -p "$out"

# The reports first: they need no service.
pages=()
"$bin" report --output "$out/report-sample.html" data/sample/*.jsonl 2>"$out/report-sample.log"
tail -1 "$out/report-sample.log"
pages+=("report-sample=file://$out/report-sample.html")
if [ -d data/releases ]; then
  mapfile -t releases < <(find data/releases -name '*.jsonl' | sort)
  "$bin" report --region XJ --period 2024-09 --output "$out/report-releases.html" "${releases[@]}" \
    2>"$out/report-releases.log"
  tail -1 "$out/report-releases.log"
  pages+=("report-releases=file://$out/report-releases.html")
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SILKROUTE__HTTP__LISTEN=127.0.0.1:$port "$bin" demo >"$out/demo.log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
# Wait only until the demo answers HTTP: waiting for the data is the browser's part.
for _ in $(seq 1 600); do
  if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$demo" 2>/dev/null || { cat "$out/demo.log"; echo "browser: the demo stopped" >&2; exit 1; }
  sleep 0.2
done
pages=("live=http://127.0.0.1:$port/" "${pages[@]}")

PLAYWRIGHT_CORE=$tools/node_modules/playwright-core SHOTS=$out \
  node scripts/ci/browser.cjs "${pages[@]}"
grep -q "Live page: http://127.0.0.1:$port/" "$out/demo.log" || {
  echo "browser: the demo did not print the page's address" >&2
  exit 1
}
