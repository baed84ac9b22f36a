#!/usr/bin/env bash
# scripts/ci/secure.sh — silkroute against a locked-down Kafka: TLS, SASL/SCRAM-SHA-512 and
# KRaft's StandardAuthorizer (no ACL = no access). Starts a fresh secure broker on its own ports
# and data dir (scripts/kafka.sh with SILKROUTE_KAFKA_SECURE=1), runs tests/secure.rs against it
# (the end-to-end run with exactly the documented ACLs in both modes, each ACL missing in turn,
# a wrong password, the password grepped for), prints the counts, stops the broker.
#
# Environment (optional):
#   SILKROUTE_SECURE_PORT   base port: PORT internal, PORT+1 controller, PORT+2 SASL_SSL (default 9192)
#   SILKROUTE_SECURE_DIR    broker data dir (default /tmp/silkroute-kafka-secure; wiped at start)
#   CARGO_TARGET_DIR        as for any cargo build
#
# Needs Java 17+, Maven (first jar fetch), openssl and a Rust toolchain; installs the first three
# with apt-get when missing. Exit 0 only when every test passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  echo "secure.sh: installing $pkg"
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  fi
}
need java openjdk-17-jre-headless
need mvn maven
need openssl openssl

export SILKROUTE_KAFKA_SECURE=1
export SILKROUTE_KAFKA_FRESH=1
export SILKROUTE_KAFKA_PORT=${SILKROUTE_SECURE_PORT:-9192}
export SILKROUTE_KAFKA_DIR=${SILKROUTE_SECURE_DIR:-/tmp/silkroute-kafka-secure}
unset SILKROUTE_KAFKA_CONTROLLER_PORT SILKROUTE_KAFKA_SECURE_PORT
secure_port=$((SILKROUTE_KAFKA_PORT + 2))

started=$SECONDS
stop_broker() {
  SILKROUTE_KAFKA_FRESH=0 scripts/kafka.sh stop || true
}
trap stop_broker EXIT

scripts/kafka.sh start
SILKROUTE_KAFKA_FRESH=0 scripts/kafka.sh acl list >/dev/null # the admin's client config works

export SILKROUTE_TEST_BOOTSTRAP=127.0.0.1:$secure_port
export SILKROUTE_TEST_KAFKA_CONFIG=$SILKROUTE_KAFKA_DIR/secure/admin.librdkafka
export SILKROUTE_TEST_SECURE_DIR=$SILKROUTE_KAFKA_DIR/secure
unset SILKROUTE_TEST_GUARANTEE

log=$(mktemp)
status=0
cargo test --features real-broker-tests --test secure -- --test-threads=1 --nocapture 2>&1 | tee "$log" || status=$?

echo
echo "=== secure-broker suite ==="
grep -E '^(ACL case|ACL cases:|wrong password:|exactly_once:|at_least_once:|  [A-Z][a-z]+ on )' "$log" || true
grep -E '^test result:' "$log" || true
acl_line=$(grep -E '^ACL cases:' "$log" | tail -n 1 || true)
echo "secure: ${acl_line:-ACL cases: not run}; $((SECONDS - started)) s in all"
rm -f "$log"
exit "$status"
