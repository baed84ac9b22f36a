#!/usr/bin/env bash
# scripts/kafka.sh — run a real, single-node Apache Kafka 4.x broker (KRaft, combined
# broker+controller, node.id=1) on loopback for silkroute's tests.
#
#   scripts/kafka.sh start      fetch jars (first run), format storage (first run), start, wait until healthy
#   scripts/kafka.sh stop       SIGTERM + wait (bounded), then SIGKILL; data kept
#   scripts/kafka.sh restart    graceful stop, then start; data kept (a bounce)
#   scripts/kafka.sh kill       SIGKILL, no clean shutdown; data kept (next start recovers)
#   scripts/kafka.sh status     exit 0 if the broker is up and answering, 1 otherwise
#   scripts/kafka.sh version    print the Kafka version in use
#   scripts/kafka.sh logs [-f|N] show the last N (200) lines of the broker log, or follow it
#   scripts/kafka.sh reset      stop (if running) and wipe the data dir
#   scripts/kafka.sh fetch      only download the jars into the cache
#   scripts/kafka.sh tool CLASS [ARGS...]
#                               run a Kafka CLI class with the broker's classpath, e.g.
#                               tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#   scripts/kafka.sh acl add|remove|list [ARGS...]
#                               secure mode: AclCommand as the admin user on the secure listener;
#                               ARGS as AclCommand's, e.g. acl add --allow-principal User:silkroute
#                               --operation Read --topic customs.trade.monthly (remove needs no --force)
#
# Environment (all optional):
#   SILKROUTE_KAFKA_VERSION          Kafka version from Maven Central (default 4.4.0)
#   SILKROUTE_CACHE                  cache root; jars go to $SILKROUTE_CACHE/kafka-<version> (default ~/.cache/silkroute)
#   SILKROUTE_KAFKA_DIR              data dir: config, KRaft storage, pid, log (default /tmp/silkroute-kafka)
#   SILKROUTE_KAFKA_PORT             PLAINTEXT listener port on 127.0.0.1 (default 9092)
#   SILKROUTE_KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default PORT+1)
#   SILKROUTE_KAFKA_HEAP_OPTS        JVM heap flags (default "-Xms256m -Xmx768m")
#   SILKROUTE_KAFKA_START_TIMEOUT    seconds to wait for the broker to come up (default 90)
#   SILKROUTE_KAFKA_STOP_TIMEOUT     seconds to wait for a graceful stop before SIGKILL (default 60)
#   SILKROUTE_KAFKA_FRESH=1          on start/restart: stop and wipe the data dir first
#   SILKROUTE_KAFKA_EXTRA_PROPS      extra server.properties lines (key=value, newline separated),
#                                    appended last so they override the defaults below
#   SILKROUTE_KAFKA_SECURE=1         secure mode (chosen when the data dir is first formatted; later
#                                    commands on that dir follow it without the variable):
#                                      * clients connect to SASL_SSL on 127.0.0.1:SECURE_PORT, SASL
#                                        mechanism SCRAM-SHA-512, server certificate signed by the CA
#                                        in DATA_DIR/secure/ca.pem (made at the first start, openssl);
#                                      * SCRAM-SHA-512 users `admin` (super user: grants ACLs) and
#                                        `silkroute`, passwords random, in DATA_DIR/secure/<user>.password
#                                        (created at format time with --add-scram);
#                                      * StandardAuthorizer, allow.everyone.if.no.acl.found=false,
#                                        super.users=User:broker;User:admin;
#                                      * PORT and CONTROLLER_PORT are SASL_PLAINTEXT (PLAIN) for the
#                                        broker's own user `broker` only;
#                                      * DATA_DIR/secure/admin.properties is a Java client config for
#                                        the admin (`tool ... --command-config` it), and
#                                        DATA_DIR/secure/<user>.librdkafka the librdkafka options
#                                        (key=value lines) for `admin` and `silkroute`.
#   SILKROUTE_KAFKA_SECURE_PORT      secure mode: the SASL_SSL listener port (default PORT+2)
#   JAVA_HOME                        Java 17+ to use (default: `java` on PATH)
#
# Broker settings worth knowing (see write_server_properties):
#   * auto.create.topics.enable=false — tests must prove that silkroute creates its own topics.
#   * every internal topic (offsets, transaction state, share-group state) uses replication
#     factor 1 / min ISR 1, so consumer groups and transactions work on one node.
#   * the log cleaner is on (compacted topics are used).
#   * group.initial.rebalance.delay.ms=0 so consumer groups form without the 3 s delay.
#
# Needs: Java 17+, Maven 3 (`mvn`) for the first fetch. Uses kcat for the health check if it is
# installed, otherwise a TCP connect plus the "Kafka Server started" log line.
set -euo pipefail

PROG=kafka.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUPPORT_DIR=$SCRIPT_DIR/kafka

KAFKA_VERSION=${SILKROUTE_KAFKA_VERSION:-4.4.0}
CACHE_ROOT=${SILKROUTE_CACHE:-$HOME/.cache/silkroute}
KAFKA_HOME=$CACHE_ROOT/kafka-$KAFKA_VERSION
LIBS=$KAFKA_HOME/libs
DATA_DIR=${SILKROUTE_KAFKA_DIR:-/tmp/silkroute-kafka}
HOST=127.0.0.1
PORT=${SILKROUTE_KAFKA_PORT:-9092}
CONTROLLER_PORT=${SILKROUTE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
SECURE_PORT=${SILKROUTE_KAFKA_SECURE_PORT:-$((PORT + 2))}
HEAP_OPTS=${SILKROUTE_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
START_TIMEOUT=${SILKROUTE_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${SILKROUTE_KAFKA_STOP_TIMEOUT:-60}

PID_FILE=$DATA_DIR/kafka.pid
LOG_FILE=$DATA_DIR/kafka.log
PROPS=$DATA_DIR/server.properties
LOG4J_CONF=$DATA_DIR/log4j2.properties
STORAGE_DIR=$DATA_DIR/data
CLUSTER_ID_FILE=$DATA_DIR/cluster.id
STARTED_MARKER="Kafka Server started"
MODE_FILE=$DATA_DIR/mode
SECURE_DIR=$DATA_DIR/secure

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA=$JAVA_HOME/bin/java
else
  JAVA=java
fi

# ---------------------------------------------------------------------------------------------
# helpers

say() { printf '%s\n' "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

check_settings() {
  is_uint "$PORT" || die "SILKROUTE_KAFKA_PORT must be a port number, got '$PORT'"
  is_uint "$CONTROLLER_PORT" || die "SILKROUTE_KAFKA_CONTROLLER_PORT must be a port number, got '$CONTROLLER_PORT'"
  [[ "$PORT" != "$CONTROLLER_PORT" ]] || die "broker and controller ports must differ (both $PORT)"
  is_uint "$SECURE_PORT" || die "SILKROUTE_KAFKA_SECURE_PORT must be a port number, got '$SECURE_PORT'"
  is_uint "$START_TIMEOUT" || die "SILKROUTE_KAFKA_START_TIMEOUT must be seconds, got '$START_TIMEOUT'"
  is_uint "$STOP_TIMEOUT" || die "SILKROUTE_KAFKA_STOP_TIMEOUT must be seconds, got '$STOP_TIMEOUT'"
  case "$DATA_DIR" in
    "" | / | "$HOME" | "$HOME/") die "refusing to use '$DATA_DIR' as the Kafka data dir" ;;
  esac
}

# Serialise start/stop/restart/kill/reset on one data dir (parallel test runners may all call
# `start`). fd 9 is closed for the broker so the JVM never holds the lock.
lock_data_dir() {
  mkdir -p "$DATA_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$DATA_DIR/.lock"
    flock -w $((START_TIMEOUT + STOP_TIMEOUT + 120)) 9 || die "timed out waiting for the lock on $DATA_DIR/.lock"
  fi
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need Java 17+; set JAVA_HOME or install openjdk-17-jre-headless)"
  local line major
  line=$("$JAVA" -version 2>&1 | head -n 1)
  major=$(sed -E 's/.*version "([0-9]+)(\.[0-9]+)?.*/\1/' <<<"$line")
  if [[ "$major" == 1 ]]; then major=$(sed -E 's/.*version "1\.([0-9]+).*/\1/' <<<"$line"); fi
  if is_uint "$major" && ((major < 17)); then
    die "Kafka $KAFKA_VERSION needs Java 17+, found: $line"
  fi
}

# ---------------------------------------------------------------------------------------------
# jars: Maven Central -> $KAFKA_HOME/libs (once per version and pom.xml content)

pom_digest() { sha256sum "$SUPPORT_DIR/pom.xml" | cut -d' ' -f1; }

jars_ready() {
  [[ -f "$KAFKA_HOME/.complete" && -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] &&
    [[ "$(cat "$KAFKA_HOME/.complete")" == "$KAFKA_VERSION $(pom_digest)" ]]
}

ensure_jars() {
  [[ -f "$SUPPORT_DIR/pom.xml" ]] || die "missing $SUPPORT_DIR/pom.xml"
  jars_ready && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven is needed once to fetch Kafka $KAFKA_VERSION (apt-get install -y maven)"
  mkdir -p "$KAFKA_HOME"
  (
    if command -v flock >/dev/null 2>&1; then
      exec 8>"$KAFKA_HOME/.lock"
      flock -w 600 8 || die "timed out waiting for the lock on $KAFKA_HOME/.lock"
    fi
    jars_ready && exit 0 # another process fetched them while we waited
    warn "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_HOME ..."
    local tmp=$KAFKA_HOME/libs.tmp.$$
    rm -rf "$tmp"
    cp "$SUPPORT_DIR/pom.xml" "$KAFKA_HOME/pom.xml"
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_HOME/pom.xml" \
      dependency:copy-dependencies \
      -Dkafka.version="$KAFKA_VERSION" \
      -DincludeScope=runtime \
      -DoutputDirectory="$tmp" \
      >"$KAFKA_HOME/mvn.log" 2>&1; then
      tail -n 40 "$KAFKA_HOME/mvn.log" >&2 || true
      rm -rf "$tmp"
      die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full log: $KAFKA_HOME/mvn.log)"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Maven finished but $tmp/kafka_2.13-$KAFKA_VERSION.jar is missing"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    rm -rf "$KAFKA_HOME/target"
    printf '%s %s\n' "$KAFKA_VERSION" "$(pom_digest)" >"$KAFKA_HOME/.complete"
  )
}

# ---------------------------------------------------------------------------------------------
# secure mode: TLS material, users, client configs (made once per data dir)

# The data dir's mode once formatted (DATA_DIR/mode), else what SILKROUTE_KAFKA_SECURE asks.
is_secure() {
  if [[ -f "$MODE_FILE" ]]; then
    [[ "$(cat "$MODE_FILE")" == secure ]]
  else
    [[ "${SILKROUTE_KAFKA_SECURE:-0}" == 1 ]]
  fi
}

check_mode() {
  local want=plain have
  [[ "${SILKROUTE_KAFKA_FRESH:-0}" == 1 ]] && return 0 # the data dir is wiped first
  [[ "${SILKROUTE_KAFKA_SECURE:-}" == 1 ]] && want=secure
  if [[ -f "$MODE_FILE" ]]; then
    have=$(cat "$MODE_FILE")
    if [[ -n "${SILKROUTE_KAFKA_SECURE:-}" && "$have" != "$want" ]]; then
      die "$DATA_DIR was formatted in $have mode, SILKROUTE_KAFKA_SECURE asks for $want: reset it (SILKROUTE_KAFKA_FRESH=1) or use another SILKROUTE_KAFKA_DIR"
    fi
  elif [[ -f "$STORAGE_DIR/meta.properties" && "$want" == secure ]]; then
    die "$DATA_DIR was formatted without secure mode: reset it (SILKROUTE_KAFKA_FRESH=1) or use another SILKROUTE_KAFKA_DIR"
  fi
}

new_password() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

password_of() { cat "$SECURE_DIR/$1.password"; }

# CA, broker certificate (SAN 127.0.0.1 and localhost) in a PKCS12 keystore, the passwords of
# the users, and the client configs. Idempotent: what exists is kept.
make_secure_material() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found (needed for the secure mode's certificates; apt-get install -y openssl)"
  mkdir -p "$SECURE_DIR"
  chmod 700 "$SECURE_DIR"
  local u
  for u in broker admin silkroute keystore; do
    [[ -s "$SECURE_DIR/$u.password" ]] || (umask 077 && new_password >"$SECURE_DIR/$u.password")
  done
  if [[ ! -s "$SECURE_DIR/broker.p12" ]]; then
    (
      cd "$SECURE_DIR"
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
        -subj "/CN=silkroute test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >openssl.log 2>&1
      openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost" \
        >>openssl.log 2>&1
      printf '%s\n' "subjectAltName=IP:$HOST,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >broker.ext
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile broker.ext -out broker.pem >>openssl.log 2>&1
      openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
        -out broker.p12.tmp -passout "pass:$(cat keystore.password)" >>openssl.log 2>&1
      mv broker.p12.tmp broker.p12
    ) || die "making the TLS certificates failed (see $SECURE_DIR/openssl.log)"
  fi
  (
    umask 077
    cat >"$SECURE_DIR/admin.properties" <<EOF
# Java client config for the admin user on the secure listener (scripts/kafka.sh acl uses it).
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password_of admin)";
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_DIR/ca.pem
EOF
    for u in admin silkroute; do
      cat >"$SECURE_DIR/$u.librdkafka" <<EOF
bootstrap.servers=$HOST:$SECURE_PORT
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.username=$u
sasl.password=$(password_of "$u")
ssl.ca.location=$SECURE_DIR/ca.pem
EOF
    done
  )
}

# server.properties lines of the secure mode: listeners, SASL, TLS, authorizer.
secure_properties() {
  local plain
  plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$(password_of broker)\" user_broker=\"$(password_of broker)\";"
  cat <<EOF
# --- secure mode: clients on SASL_SSL + SCRAM-SHA-512; the broker's own links on SASL PLAIN ---
listeners=INTERNAL://$HOST:$PORT,CLIENT://$HOST:$SECURE_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=INTERNAL://$HOST:$PORT,CLIENT://$HOST:$SECURE_PORT
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.internal.sasl.enabled.mechanisms=PLAIN
listener.name.internal.plain.sasl.jaas.config=$plain
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.client.ssl.keystore.type=PKCS12
listener.name.client.ssl.keystore.location=$SECURE_DIR/broker.p12
listener.name.client.ssl.keystore.password=$(password_of keystore)
listener.name.client.ssl.key.password=$(password_of keystore)
listener.name.client.ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
EOF
}

# ---------------------------------------------------------------------------------------------
# config + storage

plaintext_properties() {
  cat <<EOF
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
}

write_server_properties() {
  local tmp=$PROPS.tmp
  cat >"$tmp" <<EOF
# Generated by scripts/kafka.sh on every start; edits are overwritten.
# Use SILKROUTE_KAFKA_EXTRA_PROPS to add or override settings.

# --- KRaft: one combined broker + controller ---
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
$(if is_secure; then secure_properties; else plaintext_properties; fi)

# --- storage ---
log.dirs=$STORAGE_DIR

# --- single node: every topic, internal ones included, has one replica ---
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# --- test friendliness ---
# Topics are never auto-created: the code under test must create what it uses.
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

# --- compaction (compacted topics are used) ---
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432

# After a SIGKILL the controller (same process) only accepts the broker's new incarnation once the
# old broker session expires (default 9 s): keep that short, with heartbeats well inside it.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000

num.network.threads=2
num.io.threads=4
EOF
  if [[ -n "${SILKROUTE_KAFKA_EXTRA_PROPS:-}" ]]; then
    printf '\n# --- SILKROUTE_KAFKA_EXTRA_PROPS ---\n%s\n' "$SILKROUTE_KAFKA_EXTRA_PROPS" >>"$tmp"
  fi
  mv "$tmp" "$PROPS"
  cp "$SUPPORT_DIR/log4j2.properties" "$LOG4J_CONF"
}

new_cluster_id() {
  # Kafka cluster ids are 16 random bytes, base64url without padding (22 chars).
  # One in 64 starts with '-', which the storage tool's argument parser reads as
  # an option; Kafka's own Uuid.randomUuid() draws again in that case, and so do we.
  local cid
  while :; do
    cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $cid == -* ]] || break
  done
  printf '%s' "$cid"
}

format_storage() {
  [[ -f "$STORAGE_DIR/meta.properties" ]] && return 0
  local cid
  if [[ -s "$CLUSTER_ID_FILE" ]]; then
    cid=$(cat "$CLUSTER_ID_FILE")
  else
    cid=$(new_cluster_id)
    printf '%s\n' "$cid" >"$CLUSTER_ID_FILE"
  fi
  local scram=() mode=plain u
  if is_secure; then
    mode=secure
    for u in admin silkroute; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(password_of "$u")]")
    done
  fi
  if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$SUPPORT_DIR/tools-log4j2.properties" \
    -cp "$LIBS/*" kafka.tools.StorageTool format \
    --cluster-id="$cid" --config "$PROPS" --ignore-formatted "${scram[@]}" \
    >"$DATA_DIR/format.log" 2>&1; then
    cat "$DATA_DIR/format.log" >&2
    die "formatting KRaft storage in $STORAGE_DIR failed"
  fi
  printf '%s\n' "$mode" >"$MODE_FILE"
}

wipe_data_dir() {
  [[ -d "$DATA_DIR" ]] || return 0
  find "$DATA_DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
}

# ---------------------------------------------------------------------------------------------
# process state

read_pid() {
  local pid=""
  [[ -f "$PID_FILE" ]] && pid=$(tr -dc '0-9' <"$PID_FILE")
  printf '%s' "$pid"
}

pid_alive() {
  local pid=$1 state
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # a zombie is dead for our purposes
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ "$state" != Z ]]
}

# The pid in the pid file is alive and really is our broker (not a recycled pid).
is_running() {
  local pid
  pid=$(read_pid)
  pid_alive "$pid" || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS"
}

port_open() {
  local port=$1
  if command -v timeout >/dev/null 2>&1; then
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$port" 2>/dev/null
  else
    bash -c "exec 3<>/dev/tcp/$HOST/$port" 2>/dev/null
  fi
}

kcat_bin() {
  if command -v kcat >/dev/null 2>&1; then
    printf kcat
  elif command -v kafkacat >/dev/null 2>&1; then
    printf kafkacat
  fi
}

healthy() {
  is_running || return 1
  port_open "$PORT" || return 1
  grep -qF "$STARTED_MARKER" "$LOG_FILE" 2>/dev/null || return 1
  if is_secure; then
    # The client listener answers TLS with a certificate the CA vouches for.
    port_open "$SECURE_PORT" || return 1
    openssl s_client -connect "$HOST:$SECURE_PORT" -CAfile "$SECURE_DIR/ca.pem" \
      -verify_return_error -verify_ip "$HOST" </dev/null >/dev/null 2>&1 || return 1
    return 0
  fi
  local kc
  kc=$(kcat_bin)
  if [[ -n "$kc" ]]; then
    "$kc" -L -b "$HOST:$PORT" -m 5 2>/dev/null | grep -q 'broker 1 at' || return 1
  fi
}

show_log_tail() {
  if [[ -f "$LOG_FILE" ]]; then
    printf -- '--- last lines of %s ---\n' "$LOG_FILE" >&2
    tail -n "${1:-60}" "$LOG_FILE" >&2 || true
    printf -- '--- end of log ---\n' >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# commands (called with the data-dir lock held)

launch() {
  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  rm -f "$PID_FILE"
  # The wrapper shell records its own pid and then execs the JVM (same pid). setsid detaches
  # the broker from the caller's session/process group; stdin/stdout/stderr and every other
  # inherited fd are closed/redirected so callers waiting for EOF on a pipe never hang.
  # shellcheck disable=SC2016,SC2086
  setsid bash -c '
    for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-"; fi; done
    echo $$ >"$0"
    exec "$@"' "$PID_FILE" \
    "$JAVA" -server $HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -Dkafka.logs.dir="$DATA_DIR/logs" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$PID_FILE" ]] && return 0
    sleep 0.05
  done
  die "the broker process did not start (no pid file at $PID_FILE)"
}

wait_healthy() {
  local started=$SECONDS pid
  while ((SECONDS - started < START_TIMEOUT)); do
    if healthy; then
      return 0
    fi
    pid=$(read_pid)
    if ! pid_alive "$pid"; then
      show_log_tail 80
      die "the Kafka broker exited during startup"
    fi
    sleep 0.5
  done
  show_log_tail 80
  die "the Kafka broker did not become ready on $HOST:$PORT within ${START_TIMEOUT}s (still running as pid $(read_pid); use '$0 kill' to get rid of it)"
}

do_start() {
  if [[ "${SILKROUTE_KAFKA_FRESH:-0}" == 1 ]]; then
    do_stop
    wipe_data_dir
  fi
  if is_running; then
    wait_healthy # already up (or still booting from an earlier start): quiet
    return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$PORT"; then
    die "$HOST:$PORT is already in use by another process (not the broker of $DATA_DIR); set SILKROUTE_KAFKA_PORT"
  fi
  if port_open "$CONTROLLER_PORT"; then
    die "controller port $HOST:$CONTROLLER_PORT is already in use; set SILKROUTE_KAFKA_CONTROLLER_PORT"
  fi
  if is_secure && port_open "$SECURE_PORT"; then
    die "secure port $HOST:$SECURE_PORT is already in use; set SILKROUTE_KAFKA_SECURE_PORT"
  fi
  check_java
  ensure_jars
  mkdir -p "$DATA_DIR/logs"
  if is_secure; then make_secure_material; fi
  write_server_properties
  format_storage
  local t0=$SECONDS
  launch
  wait_healthy
  if is_secure; then
    say "kafka $KAFKA_VERSION up, secure: SASL_SSL on $HOST:$SECURE_PORT (pid $(read_pid), $((SECONDS - t0))s; users and CA in $SECURE_DIR)"
  else
    say "kafka $KAFKA_VERSION up on $HOST:$PORT (pid $(read_pid), $((SECONDS - t0))s)"
  fi
}

wait_exit() {
  local pid=$1 timeout=$2 start=$SECONDS
  while pid_alive "$pid"; do
    ((SECONDS - start >= timeout)) && return 1
    sleep 0.2
  done
  # The JVM's main thread can already be a zombie while its other threads are still being torn
  # down with the sockets open: also wait (briefly) for both listeners to go away.
  while port_open "$PORT" || port_open "$CONTROLLER_PORT" || { is_secure && port_open "$SECURE_PORT"; }; do
    ((SECONDS - start >= timeout + 10)) && break
    sleep 0.1
  done
  return 0
}

do_stop() {
  local pid
  if ! is_running; then
    rm -f "$PID_FILE"
    return 0
  fi
  pid=$(read_pid)
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_exit "$pid" "$STOP_TIMEOUT"; then
    warn "broker (pid $pid) did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 30 || die "broker (pid $pid) survived SIGKILL"
  fi
  rm -f "$PID_FILE"
}

do_kill() {
  local pid
  if ! is_running; then
    rm -f "$PID_FILE"
    return 0
  fi
  pid=$(read_pid)
  kill -KILL "$pid" 2>/dev/null || true
  wait_exit "$pid" 30 || die "broker (pid $pid) survived SIGKILL"
  rm -f "$PID_FILE"
}

do_status() {
  if healthy; then
    say "kafka $KAFKA_VERSION up on $HOST:$PORT (pid $(read_pid), data $DATA_DIR)"
    return 0
  fi
  if is_running; then
    say "kafka $KAFKA_VERSION running (pid $(read_pid)) but not answering on $HOST:$PORT"
  else
    say "kafka not running (data $DATA_DIR)"
  fi
  return 1
}

do_logs() {
  [[ -f "$LOG_FILE" ]] || die "no broker log at $LOG_FILE"
  case "${1:-}" in
    -f | --follow) exec tail -n 50 -F "$LOG_FILE" ;;
    "") tail -n 200 "$LOG_FILE" ;;
    *)
      is_uint "$1" || die "usage: $0 logs [-f|N]"
      tail -n "$1" "$LOG_FILE"
      ;;
  esac
}

do_tool() {
  (($# >= 1)) || die "usage: $0 tool CLASS [ARGS...]  (e.g. org.apache.kafka.tools.TopicCommand)"
  check_java
  ensure_jars
  exec "$JAVA" -Xmx512m -Dlog4j2.configurationFile="$SUPPORT_DIR/tools-log4j2.properties" \
    -cp "$LIBS/*" "$@"
}

do_acl() {
  is_secure || die "acl: $DATA_DIR is not a secure-mode broker (start it with SILKROUTE_KAFKA_SECURE=1)"
  [[ -f "$SECURE_DIR/admin.properties" ]] || die "acl: no $SECURE_DIR/admin.properties (start the broker first)"
  local sub=${1:-}
  (($# > 0)) && shift
  case "$sub" in
    add | remove) set -- "--$sub" --force "$@" ;;
    list) set -- --list "$@" ;;
    *) die "usage: $0 acl add|remove|list [AclCommand options...]" ;;
  esac
  do_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$HOST:$SECURE_PORT" \
    --command-config "$SECURE_DIR/admin.properties" "$@"
}

# ---------------------------------------------------------------------------------------------

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  check_settings
  case "$cmd" in
    start)
      lock_data_dir
      check_mode
      do_start
      ;;
    stop)
      lock_data_dir
      do_stop
      ;;
    restart)
      lock_data_dir
      check_mode
      do_stop
      do_start
      ;;
    kill)
      lock_data_dir
      do_kill
      ;;
    reset)
      lock_data_dir
      do_stop
      wipe_data_dir
      ;;
    status) do_status ;;
    version) say "$KAFKA_VERSION" ;;
    logs) do_logs "$@" ;;
    fetch)
      check_java
      ensure_jars
      ;;
    tool) do_tool "$@" ;;
    acl) do_acl "$@" ;;
    -h | --help | help) usage ;;
    "")
      usage >&2
      exit 2
      ;;
    *)
      warn "unknown command '$cmd'"
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
