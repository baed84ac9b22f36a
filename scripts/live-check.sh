#!/usr/bin/env bash
# Live check of what operators see: a real silkroute (`run`, release build) fed with the sample
# data and some poison through the real Kafka broker, scraped by a real Prometheus (Debian
# package) that also loads our alert rules. Then:
#   - `promtool check metrics` on the live /metrics,
#   - every Grafana dashboard query and every alert expression evaluated through Prometheus's
#     HTTP API (scripts/prom_live_check.py); every dashboard query must return data.
#
#   scripts/live-check.sh        (needs scripts/kafka.sh start; .ci/run does it)
#
# Environment: SILKROUTE_TEST_BOOTSTRAP (default 127.0.0.1:9092).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BOOTSTRAP=${SILKROUTE_TEST_BOOTSTRAP:-127.0.0.1:9092}
BIN=target/release/silkroute
WORK=$(mktemp -d /tmp/silkroute-live.XXXXXX)
SUFFIX=live$$
HTTP=127.0.0.1:19464
PROM=127.0.0.1:19090
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

command -v promtool >/dev/null && command -v prometheus >/dev/null || {
  echo "live-check: prometheus/promtool missing (apt-get install prometheus)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --quiet
python3 -c 'import yaml' 2>/dev/null || {
  echo "live-check: installing PyYAML for scripts/prom_live_check.py (pip)"
  python3 -m pip install --quiet --disable-pip-version-check pyyaml; }

export SILKROUTE__KAFKA__BOOTSTRAP_SERVERS=$BOOTSTRAP
export SILKROUTE__KAFKA__GROUP_ID=silkroute-$SUFFIX
export SILKROUTE__TOPICS__TRADE=customs.trade.monthly.$SUFFIX
export SILKROUTE__TOPICS__FREIGHT=freight.trains.monthly.$SUFFIX
export SILKROUTE__TOPICS__FX=fx.rates.monthly.$SUFFIX
export SILKROUTE__TOPICS__INDICATORS=silkroute.indicators.$SUFFIX
export SILKROUTE__TOPICS__DEAD_LETTER=silkroute.dlq.$SUFFIX
export SILKROUTE__TOPICS__PARTITIONS=3
export SILKROUTE__TOPICS__REPLICATION_FACTOR=1
export SILKROUTE__HTTP__LISTEN=$HTTP
export SILKROUTE__LOG__FORMAT=json

echo "live-check: publishing the sample and some poison to $BOOTSTRAP"
"$BIN" publish data/sample/*.jsonl
printf '%s\n' '{"type":"customs_trade","region":"XJ"}' 'not json' '[1]' '{"type":"weather"}' > "$WORK/poison.jsonl"
"$BIN" publish --raw "$WORK/poison.jsonl"

"$BIN" run > "$WORK/silkroute.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  curl -fs "http://$HTTP/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "http://$HTTP/readyz" >/dev/null || { echo "live-check: silkroute never became ready" >&2; tail -30 "$WORK/silkroute.log" >&2; exit 1; }

echo "live-check: promtool check metrics on the live /metrics"
curl -fs "http://$HTTP/metrics" > "$WORK/metrics.txt"
promtool check metrics < "$WORK/metrics.txt"
grep -q '^silkroute_events_rejected_total{reason="missing_field"} 1' "$WORK/metrics.txt" || { echo "live-check: poison not counted" >&2; exit 1; }

cat > "$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/silkroute-rules.yml
scrape_configs:
  - job_name: silkroute
    static_configs:
      - targets: ['$HTTP']
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="$PROM" > "$WORK/prometheus.log" 2>&1 &
pids+=($!)
echo "live-check: Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') scraping silkroute; evaluating the dashboard and the alerts"
# Keep some traffic flowing so rates are non-zero while Prometheus evaluates.
( for i in $(seq 1 20); do "$BIN" publish data/sample/freight.jsonl >/dev/null 2>&1 || true; sleep 2; done ) &
pids+=($!)
python3 scripts/prom_live_check.py --prometheus "http://$PROM" \
  --dashboard deploy/grafana/silkroute.json --rules deploy/prometheus/silkroute-rules.yml \
  --var area=XJ --var port=khorgos --var job=silkroute --wait 90
echo "live-check: passed"
