#!/usr/bin/env bash
# scripts/bench.sh — issue 7's backfill benchmark against a real Kafka broker (issue 17: the pipe).
#
#   scripts/bench.sh            full run: ~443k and ~887k events (several minutes on 2 cores)
#   scripts/bench.sh --quick    smoke run: ~29k and ~57k events (under a minute once built)
#   scripts/bench.sh [ARGS...]  any other argument goes to the benchmark (see --help)
#
# Uses its own broker so that it does not disturb (or get disturbed by) the test broker on
# 9092: 127.0.0.1:$SILKROUTE_KAFKA_PORT (default 19092), data in $SILKROUTE_KAFKA_DIR (default
# /tmp/silkroute-kafka-bench). If that broker is not running it is started (scripts/kafka.sh)
# and stopped again at the end; a broker that was already running is left running.
#
# Per data set: raw reads of the input (BaseConsumer, StreamConsumer, kcat; orientation only),
# silkroute's drain (fresh process, --repeat times), and the ceiling it is judged against: the
# same-I/O pipe, a minimal rdkafka program with silkroute's client settings that does the same
# Kafka I/O per input event (consume, changelog write, changelog read-back, the indicator
# records of silkroute's first drain replayed, offsets stored or committed per transaction)
# with none of silkroute's code. drain/pipe is what our own code costs (targets: >= 80 % at
# least once, >= 70 % exactly once); the table also shows records and bytes written per input
# event for both (they should match) and CPU seconds of the process and of the broker.
#
# Prints a table of ratios and targets, and writes target/bench/backfill.json (or
# backfill-quick.json) plus a line in target/bench/backfill-history.jsonl for comparison across
# commits. It measures; it never fails on a missed target. Any SILKROUTE__* variable is passed to
# the service under test, e.g. SILKROUTE__PROCESSING__BATCH_MAX_WAIT_MS=5 scripts/bench.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export SILKROUTE_KAFKA_PORT=${SILKROUTE_KAFKA_PORT:-19092}
export SILKROUTE_KAFKA_CONTROLLER_PORT=${SILKROUTE_KAFKA_CONTROLLER_PORT:-$((SILKROUTE_KAFKA_PORT + 1))}
export SILKROUTE_KAFKA_DIR=${SILKROUTE_KAFKA_DIR:-/tmp/silkroute-kafka-bench}
BOOTSTRAP=127.0.0.1:$SILKROUTE_KAFKA_PORT

command -v kcat >/dev/null 2>&1 || {
  echo "bench.sh: kcat is needed (apt-get install -y kcat)" >&2
  exit 1
}

started=0
stop_broker() {
  if [[ $started == 1 ]]; then
    echo "bench.sh: stopping the broker it started" >&2
    scripts/kafka.sh stop >&2 || true
  fi
}
trap stop_broker EXIT

if ! scripts/kafka.sh status >/dev/null 2>&1; then
  echo "bench.sh: starting a broker on $BOOTSTRAP (data $SILKROUTE_KAFKA_DIR)" >&2
  started=1
  scripts/kafka.sh start >&2
fi

cargo build --release --example backfill_bench >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/backfill_bench

pid=$(tr -dc '0-9' <"$SILKROUTE_KAFKA_DIR/kafka.pid" 2>/dev/null || true)
extra=()
[[ -n "$pid" ]] && extra+=(--broker-pid "$pid")
[[ -d "$SILKROUTE_KAFKA_DIR/data" ]] && extra+=(--broker-data-dir "$SILKROUTE_KAFKA_DIR/data")

# A broker just started runs in its JVM's interpreter and first compilations for a while: on
# 2026-12-06 the first drain of A after a start cost the broker 5.8 CPU s, the same drain a
# minute later 2.0 s. So a broker this script started first gets one untimed drain of data
# set A, its report thrown away (BENCH_NO_WARMUP=1 skips it); within the run, drains and
# same-I/O pipes alternate, so that neither meets a warmer broker than the other. The drain
# ends with 10 s of the paced latency run: a drain's large requests leave the small ones of
# live traffic cold. On 2026-12-07, on a broker started and warmed with a drain alone, the
# first latency run's p99 was 54.0 ms and the next three 30.4-35.4 ms, the same binary; warmed
# with the latency run as well, the warm-up's own p99 was 57.8 ms and the next two 42.9 and
# 37.9. The benchmark itself then runs unmeasured pairs of a drain and a pipe until the
# broker's JIT compiler is quiet (--warm-up, up to 8 pairs; see backfill_bench.rs).
if [[ $started == 1 && -z "${BENCH_NO_WARMUP:-}" ]]; then
  echo "bench.sh: warming the new broker up with one drain of A and 10 s of live events (report discarded)" >&2
  warm=$(mktemp -d)
  "$BIN" --bootstrap "$BOOTSTRAP" "${extra[@]}" --only-a --repeat 1 --no-pipe --warm-up 0 --latency-secs 10 --out "$warm/warmup.json" >/dev/null
  rm -rf "$warm"
fi

"$BIN" --bootstrap "$BOOTSTRAP" "${extra[@]}" "$@"
