#!/usr/bin/env bash
# scripts/ci/hostile.sh — the hostile-input suite (tests/hostile.rs) and the poison-pill test
# of issue 14 (tests/poison.rs) against the real broker named by SILKROUTE_TEST_BOOTSTRAP, in
# both processing modes. Prints each run's summary line (consumed / applied / ignored /
# dead-lettered / rejected counts) and exits non-zero if any run fails.
#
#   SILKROUTE_TEST_BOOTSTRAP=127.0.0.1:9092 scripts/ci/hostile.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [ -z "${SILKROUTE_TEST_BOOTSTRAP:-}" ]; then
  echo "hostile.sh: SILKROUTE_TEST_BOOTSTRAP must name a running broker (scripts/kafka.sh start)" >&2
  exit 2
fi

failed=0
for mode in exactly_once at_least_once; do
  for suite in hostile poison; do
    log=$(mktemp)
    echo "==> $suite ($mode)"
    if SILKROUTE_TEST_GUARANTEE=$mode cargo test --features real-broker-tests --test "$suite" \
        -- --nocapture --test-threads=1 >"$log" 2>&1; then
      grep -oE 'hostile\[.*|^test result:.*' "$log" || true
    else
      failed=1
      tail -n 60 "$log"
      echo "hostile.sh: $suite failed in $mode"
    fi
    rm -f "$log"
  done
done
if [ $failed -ne 0 ]; then exit 1; fi
echo "hostile.sh: OK (both modes)"
