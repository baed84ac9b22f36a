#!/usr/bin/env bash
# scripts/ci/downstream.sh — the downstream example (examples/downstream/) end to end on a real
# Kafka: `silkroute publish data/sample/*.jsonl`, `silkroute run` until it has processed every
# event, then `silkroute_table.py --once` (confluent-kafka, read_committed) must print the
# bulletin's headline figures: XJ 2024-09 322.39 bn yuan, $44.17 bn, +29.0 %, rank 1;
# Khorgos 6,269 trains, +8.1 %, streak 12.
#
# Broker: $SILKROUTE_TEST_BOOTSTRAP when set (fresh topic and group names are used), else one
# started here with scripts/kafka.sh (SILKROUTE_KAFKA_PORT, default 9092; data dir
# SILKROUTE_KAFKA_DIR, default /tmp/silkroute-kafka-downstream) and stopped at the end.
# Binary: $SILKROUTE_BIN, else target/release/silkroute (built when missing). Installs
# confluent-kafka into the venv target/ci-tools/venv when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/ci-tools/venv
work=$target/downstream
mkdir -p "$work"
started=$(date +%s)
step() { printf '\n--- %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "tools"
if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r examples/downstream/requirements.txt
fi
"$venv/bin/python" -c 'import confluent_kafka as c; print("confluent-kafka", c.version()[0], "librdkafka", c.libversion()[0])'
bin=${SILKROUTE_BIN:-$target/release/silkroute}
[ -x "$bin" ] || cargo build --release --locked --quiet
"$bin" --version

service=
cleanup() {
  if [ -n "$service" ]; then kill -TERM "$service" 2>/dev/null && wait "$service" || true; fi
  if [ -n "${own_broker:-}" ]; then scripts/kafka.sh stop >/dev/null || true; fi
}
trap cleanup EXIT

step "broker"
if [ -n "${SILKROUTE_TEST_BOOTSTRAP:-}" ]; then
  bootstrap=$SILKROUTE_TEST_BOOTSTRAP
else
  export SILKROUTE_KAFKA_DIR=${SILKROUTE_KAFKA_DIR:-/tmp/silkroute-kafka-downstream}
  SILKROUTE_KAFKA_FRESH=1 scripts/kafka.sh start
  own_broker=1
  bootstrap=127.0.0.1:${SILKROUTE_KAFKA_PORT:-9092}
fi
echo "Kafka at $bootstrap"

u=downstream-$(date +%s)-$$
http=127.0.0.1:$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SILKROUTE__KAFKA__BOOTSTRAP_SERVERS=$bootstrap
export SILKROUTE__KAFKA__GROUP_ID=$u
export SILKROUTE__TOPICS__TRADE=$u-trade SILKROUTE__TOPICS__FREIGHT=$u-freight SILKROUTE__TOPICS__FX=$u-fx
export SILKROUTE__TOPICS__INDICATORS=$u-indicators SILKROUTE__TOPICS__DEAD_LETTER=$u-dlq
export SILKROUTE__TOPICS__PARTITIONS=3 SILKROUTE__TOPICS__REPLICATION_FACTOR=1
export SILKROUTE__HTTP__LISTEN=$http

step "silkroute publish data/sample/*.jsonl"
"$bin" publish data/sample/*.jsonl 2>&1 | tail -3
events=$(cat data/sample/*.jsonl | grep -c .)

step "silkroute run, until all $events events are processed"
"$bin" run >"$work/service.log" 2>&1 &
service=$!
processed() {
  "$venv/bin/python" - "$http" <<'EOF'
import sys, urllib.request
try:
    text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=2).read().decode()
except OSError:
    print(-1); sys.exit()
print(int(sum(float(l.split()[-1]) for l in text.splitlines()
              if l.startswith("silkroute_processing_duration_seconds_count"))))
EOF
}
deadline=$(($(date +%s) + 120))
while n=$(processed); [ "$n" -lt "$events" ]; do
  kill -0 "$service" 2>/dev/null || { cat "$work/service.log"; echo "silkroute run stopped" >&2; exit 1; }
  [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$work/service.log"; echo "processed $n of $events events in 120 s" >&2; exit 1; }
  sleep 0.5
done
echo "processed $n events (silkroute_processing_duration_seconds_count)"

step "examples/downstream/silkroute_table.py --once (read_committed)"
"$venv/bin/python" examples/downstream/silkroute_table.py --bootstrap "$bootstrap" \
  --topic "$u-indicators" --region XJ --port khorgos --once --timeout 60 | tee "$work/table.txt"

step "headline figures"
fails=0
expect() {
  if grep -qE "$2" "$work/table.txt"; then echo "  ok  $1"; else echo "  MISSING  $1  (/$2/)"; fails=$((fails + 1)); fi
}
expect "XJ 2024-09: 322.39 bn yuan" '^XJ 2024-09, January to month 9: 322\.39 bn yuan'
expect '$44.17 bn' '^XJ 2024-09.*, \$44\.17 bn,'
expect "+29.0 %" '^XJ 2024-09.* bn, \+29\.0 %'
expect "rank 1" '^XJ 2024-09.*, rank 1 of [0-9]+$'
expect "Khorgos 6,269 trains, +8.1 %" '^khorgos china_europe 2024-09: 6,269 trains in 9 months, \+8\.1 %'
expect "streak 12 (threshold 600)" '^khorgos .*, streak 12 months above 600$'
expect "Belt and Road share 92.4 %" '^ +belt_and_road +297\.85 bn yuan +share +92\.4 %'
echo "downstream: $((7 - fails)) passed, $fails failed ($(($(date +%s) - started)) s)"
[ "$fails" -eq 0 ]
