#!/usr/bin/env bash
# scripts/kafka.sh — a throwaway single-node Apache Kafka 4.1.1 (KRaft) broker
# for streamscore's integration tests, plus a way to run Kafka's own CLI tools.
#
# Usage:
#   scripts/kafka.sh start                      install (first time) + format + start, wait until ready
#   scripts/kafka.sh stop                       SIGTERM, wait, SIGKILL fallback; nothing left running
#   scripts/kafka.sh status                     exit 0 if running, 1 if not
#   scripts/kafka.sh env                        prints: export STREAMSCORE_TEST_BROKERS=127.0.0.1:$KAFKA_PORT
#   scripts/kafka.sh run-tool <MainClass|alias> [args...]
#                                               run a Kafka tools main class with the cached classpath
#                                               (stdout is the tool's own; our messages go to stderr)
#   scripts/kafka.sh install                    only fetch the jars into the cache
#   scripts/kafka.sh logs [N]                   tail the broker log
#
#   Test flow:  scripts/kafka.sh start && eval "$(scripts/kafka.sh env)" && go test ./... ; scripts/kafka.sh stop
#
# Environment:
#   KAFKA_PORT=9092              broker (PLAINTEXT) listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT        KRaft controller listener (default KAFKA_PORT+1)
#   STREAMSCORE_CACHE            cache root (default $HOME/.cache/streamscore); Kafka lives in
#                                $STREAMSCORE_CACHE/kafka-4.1.1/{libs,config,state-$KAFKA_PORT}
#   KAFKA_STATE_DIR              data/config/log dir (default <cache>/kafka-4.1.1/state-$KAFKA_PORT)
#   KAFKA_KEEP_DATA=1            keep topics/offsets across stop+start (default: fresh data each start)
#   KAFKA_HEAP_OPTS              broker heap (default "-Xms256m -Xmx1g")
#   KAFKA_JVM_OPTS               extra broker JVM options
#   KAFKA_TOOL_JVM_OPTS          JVM options for run-tool and the helper tools
#   KAFKA_EXTRA_CONFIG           extra server.properties lines (newline separated), appended last
#   KAFKA_START_TIMEOUT=120      seconds to wait for the broker to answer metadata requests
#   KAFKA_STOP_TIMEOUT=30        seconds to wait after SIGTERM before SIGKILL
#   JAVA_HOME                    JDK to use (else `java` on PATH); Java 17+ required
#
# Main classes verified (unzip -l) in the Maven Central 4.1.1 jars:
#   broker ........................ kafka.Kafka                                            (kafka_2.13-4.1.1.jar)
#   kafka-storage ................. kafka.tools.StorageTool                                (kafka_2.13-4.1.1.jar)
#   kafka-topics .................. org.apache.kafka.tools.TopicCommand                    (kafka-tools-4.1.1.jar)
#   kafka-console-producer ........ org.apache.kafka.tools.ConsoleProducer                 (kafka-tools-4.1.1.jar)
#   kafka-console-consumer ........ org.apache.kafka.tools.consumer.ConsoleConsumer        (kafka-tools-4.1.1.jar)
#   kafka-broker-api-versions ..... org.apache.kafka.tools.BrokerApiVersionsCommand        (kafka-tools-4.1.1.jar)
#   kafka-consumer-groups ......... org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
#   kafka-get-offsets ............. org.apache.kafka.tools.GetOffsetShell
#   kafka-metadata-quorum ......... org.apache.kafka.tools.MetadataQuorumCommand
# run-tool accepts either the class name or the alias on the left (e.g. `run-tool kafka-topics --list ...`).
#
# Note: kafka_2.13 alone does not pull in the CLI tools; scripts/kafka/pom.xml adds
# org.apache.kafka:kafka-tools and the log4j2 backend (log4j-api/core, log4j-slf4j-impl).

set -euo pipefail

readonly KAFKA_VERSION=4.1.1

readonly CLS_BROKER=kafka.Kafka
readonly CLS_STORAGE=kafka.tools.StorageTool
readonly CLS_TOPICS=org.apache.kafka.tools.TopicCommand
readonly CLS_PRODUCER=org.apache.kafka.tools.ConsoleProducer
readonly CLS_CONSUMER=org.apache.kafka.tools.consumer.ConsoleConsumer
readonly CLS_API_VERSIONS=org.apache.kafka.tools.BrokerApiVersionsCommand
readonly CLS_GROUPS=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
readonly CLS_GET_OFFSETS=org.apache.kafka.tools.GetOffsetShell
readonly CLS_QUORUM=org.apache.kafka.tools.MetadataQuorumCommand

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly POM="$SCRIPT_DIR/kafka/pom.xml"

readonly CACHE_ROOT="${STREAMSCORE_CACHE:-$HOME/.cache/streamscore}"
readonly KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
readonly LIBS_DIR="$KAFKA_HOME/libs"
readonly CONF_DIR="$KAFKA_HOME/config"
readonly INSTALLED_MARKER="$KAFKA_HOME/.installed"
readonly TOOLS_LOG4J="$CONF_DIR/tools-log4j2.xml"

readonly HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-}"

readonly STATE_MARKER_NAME=.streamscore-kafka-state

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^# Environment:/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }

check_ports() {
  valid_port "$KAFKA_PORT" ||
    die "KAFKA_PORT must be a TCP port number, got '$KAFKA_PORT'"
  if [[ -z "$KAFKA_CONTROLLER_PORT" ]]; then
    KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
  fi
  valid_port "$KAFKA_CONTROLLER_PORT" ||
    die "KAFKA_CONTROLLER_PORT must be a TCP port number, got '$KAFKA_CONTROLLER_PORT'"
  ((KAFKA_CONTROLLER_PORT != KAFKA_PORT)) || die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT"
}

init_state_paths() {
  STATE_DIR="${KAFKA_STATE_DIR:-$KAFKA_HOME/state-$KAFKA_PORT}"
  [[ "$STATE_DIR" == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
  STATE_DIR="${STATE_DIR%/}"
  [[ -n "$STATE_DIR" ]] || die "KAFKA_STATE_DIR must not be /"
  DATA_DIR="$STATE_DIR/data"
  LOG_DIR="$STATE_DIR/logs"
  PID_FILE="$STATE_DIR/kafka.pid"
  SERVER_PROPS="$STATE_DIR/server.properties"
  BROKER_LOG4J="$STATE_DIR/log4j2.xml"
  STDOUT_LOG="$LOG_DIR/kafka.out"
  SERVER_LOG="$LOG_DIR/server.log"
  # The lock lives next to (not inside) the state dir, which start may wipe.
  LOCK_FILE="$STATE_DIR.lock"
}

# ---------------------------------------------------------------------------
# java / maven / install

JAVA=""
find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA=$(command -v java)
  else
    die "java not found: Kafka $KAFKA_VERSION needs a Java 17+ runtime on PATH or in \$JAVA_HOME (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
  fi
}

check_java_version() {
  local line major first second
  line=$("$JAVA" -version 2>&1 | head -n 1) || die "'$JAVA -version' failed: $line"
  # openjdk version "17.0.15" 2025-04-15   |   java version "1.8.0_381"
  major=$(sed -E 's/^[^"]*"([0-9]+)(\.([0-9]+))?.*$/\1 \3/' <<<"$line")
  read -r first second <<<"$major"
  if [[ "$first" == 1 ]]; then first="${second:-0}"; fi
  [[ "$first" =~ ^[0-9]+$ ]] || { log "warning: cannot parse java version from: $line"; return 0; }
  ((first >= 17)) || die "Kafka $KAFKA_VERSION brokers need Java 17+, but $JAVA is: $line"
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

is_installed() {
  [[ -f "$INSTALLED_MARKER" && -d "$LIBS_DIR" && -f "$TOOLS_LOG4J" ]] &&
    [[ "$(cat "$INSTALLED_MARKER")" == "$(pom_sum)" ]]
}

write_tools_log4j() {
  mkdir -p "$CONF_DIR"
  local tmp="$TOOLS_LOG4J.tmp.$$"
  cat >"$tmp" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- written by scripts/kafka.sh: CLI tools log warnings to stderr only, so stdout stays the tool's output -->
<Configuration status="WARN">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN">
      <AppenderRef ref="stderr"/>
    </Root>
  </Loggers>
</Configuration>
EOF
  mv -f "$tmp" "$TOOLS_LOG4J"
}

ensure_installed() {
  [[ -f "$POM" ]] || die "missing $POM"
  if is_installed; then return 0; fi
  mkdir -p "$KAFKA_HOME"
  (
    exec 8>"$KAFKA_HOME/.install.lock"
    flock -w 900 8 || die "timed out waiting for another install to finish ($KAFKA_HOME/.install.lock)"
    if is_installed; then exit 0; fi
    command -v mvn >/dev/null 2>&1 ||
      die "mvn (Apache Maven) not found; it is needed once to fetch Kafka $KAFKA_VERSION from Maven Central into $LIBS_DIR (Debian/Ubuntu: apt-get install maven)"
    log "installing Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR (one-time)..."
    local tmp="$KAFKA_HOME/libs.tmp.$$" mvn_log="$KAFKA_HOME/mvn.log"
    rm -rf "$tmp"
    if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
      rm -rf "$tmp"
      tail -n 40 "$mvn_log" >&2 || true
      die "mvn dependency:copy-dependencies failed (full log: $mvn_log)"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/kafka-tools-$KAFKA_VERSION.jar" ]] ||
      die "mvn finished but kafka jars are missing from $tmp (log: $mvn_log)"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    write_tools_log4j
    pom_sum >"$INSTALLED_MARKER"
    log "installed $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars"
  )
}

tool_jvm_opts() {
  if [[ -n "${KAFKA_TOOL_JVM_OPTS:-}" ]]; then
    printf '%s\n' "$KAFKA_TOOL_JVM_OPTS"
  else
    # Short-lived clients: small heap, fast startup.
    printf '%s\n' "-Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true"
  fi
}

# run_tool_java <MainClass> args...  (not exec'd)
run_tool_java() {
  local cls=$1
  shift
  local -a opts
  read -r -a opts <<<"$(tool_jvm_opts)"
  "$JAVA" "${opts[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J" -cp "$LIBS_DIR/*" "$cls" "$@"
}

resolve_tool_class() {
  case "$1" in
    kafka-topics | kafka-topics.sh | topics) echo "$CLS_TOPICS" ;;
    kafka-console-producer | kafka-console-producer.sh | console-producer) echo "$CLS_PRODUCER" ;;
    kafka-console-consumer | kafka-console-consumer.sh | console-consumer) echo "$CLS_CONSUMER" ;;
    kafka-broker-api-versions | kafka-broker-api-versions.sh | broker-api-versions) echo "$CLS_API_VERSIONS" ;;
    kafka-consumer-groups | kafka-consumer-groups.sh | consumer-groups) echo "$CLS_GROUPS" ;;
    kafka-get-offsets | kafka-get-offsets.sh | get-offsets) echo "$CLS_GET_OFFSETS" ;;
    kafka-metadata-quorum | kafka-metadata-quorum.sh | metadata-quorum) echo "$CLS_QUORUM" ;;
    kafka-storage | kafka-storage.sh | storage) echo "$CLS_STORAGE" ;;
    *) echo "$1" ;;
  esac
}

# ---------------------------------------------------------------------------
# process state

read_pid() { { tr -dc '0-9' <"$PID_FILE"; } 2>/dev/null || true; }

RUNNING_PID=""
is_running() {
  RUNNING_PID=""
  [[ -f "$PID_FILE" ]] || return 1
  local pid state
  pid=$(read_pid)
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  # A zombie is not running (some container inits never reap).
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || echo X)
  [[ "$state" != Z && "$state" != X ]] || return 1
  # Guard against pid reuse: it must be our broker.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- " $CLS_BROKER $SERVER_PROPS" || return 1
  RUNNING_PID=$pid
}

pid_alive() {
  local pid=$1 state
  [[ -d "/proc/$pid" ]] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || echo X)
  [[ "$state" != Z && "$state" != X ]]
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

with_state_lock() {
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  flock -w 300 9 || die "timed out waiting for lock $LOCK_FILE (another kafka.sh start/stop?)"
}

print_log_tail() {
  local f
  for f in "$SERVER_LOG" "$STDOUT_LOG"; do
    if [[ -s "$f" ]]; then
      printf '%s\n' "----- last lines of $f -----" >&2
      tail -n "${1:-60}" "$f" >&2 || true
    fi
  done
}

# ---------------------------------------------------------------------------
# config

wipe_state() {
  if [[ -d "$STATE_DIR" ]]; then
    if [[ ! -f "$STATE_DIR/$STATE_MARKER_NAME" ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
      die "refusing to wipe $STATE_DIR: not empty and not created by kafka.sh (no $STATE_MARKER_NAME)"
    fi
    rm -rf -- "$STATE_DIR"
  fi
}

write_broker_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  touch "$STATE_DIR/$STATE_MARKER_NAME"
  cat >"$SERVER_PROPS" <<EOF
# written by scripts/kafka.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) — single-node KRaft broker for tests
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# test-friendly defaults
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '\n# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$SERVER_PROPS"
  fi

  cat >"$BROKER_LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- written by scripts/kafka.sh -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="server" fileName="$SERVER_LOG" filePattern="$SERVER_LOG.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies>
        <SizeBasedTriggeringPolicy size="50 MB"/>
      </Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO">
      <AppenderRef ref="server"/>
    </Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

format_storage() {
  local cluster_id out
  cluster_id=$(run_tool_java "$CLS_STORAGE" random-uuid 2>>"$LOG_DIR/format.log") ||
    { cat "$LOG_DIR/format.log" >&2; die "StorageTool random-uuid failed"; }
  cluster_id=$(tr -d '[:space:]' <<<"$cluster_id")
  [[ -n "$cluster_id" ]] || die "StorageTool random-uuid printed nothing"
  if ! out=$(run_tool_java "$CLS_STORAGE" format -t "$cluster_id" -c "$SERVER_PROPS" --standalone 2>&1); then
    printf '%s\n' "$out" >>"$LOG_DIR/format.log"
    printf '%s\n' "$out" >&2
    die "formatting KRaft storage in $DATA_DIR failed"
  fi
  printf '%s\n' "$out" >>"$LOG_DIR/format.log"
  log "formatted KRaft storage (cluster id $cluster_id)"
}

# ---------------------------------------------------------------------------
# commands

cmd_install() {
  find_java
  ensure_installed
  log "Kafka $KAFKA_VERSION jars are in $LIBS_DIR"
}

broker_log_size() { { stat -c %s "$SERVER_LOG" 2>/dev/null; } || echo 0; }

# wait_ready <pid> <server.log offset at launch>
wait_ready() {
  local pid=$1 log_offset=${2:-0} timeout=${KAFKA_START_TIMEOUT:-120}
  local deadline=$((SECONDS + timeout)) next_probe=$((SECONDS + 20)) out=""
  local -a opts
  read -r -a opts <<<"$(tool_jvm_opts)"
  while ((SECONDS < deadline)); do
    if ! pid_alive "$pid"; then
      print_log_tail 80
      die "broker process $pid exited during startup (logs in $LOG_DIR)"
    fi
    # Probe once the broker logged that it started (or every few seconds regardless,
    # in case the log wording changes): a tools JVM competing for CPU with a
    # starting broker only slows both down on a small machine.
    if port_open "$KAFKA_PORT" &&
      { tail -c "+$((log_offset + 1))" "$SERVER_LOG" 2>/dev/null | grep -q 'Kafka Server started' ||
        ((SECONDS >= next_probe)); }; then
      next_probe=$((SECONDS + 5))
      # Confirm the broker answers requests with a real client.
      if out=$(timeout 30 "$JAVA" "${opts[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J" \
        -cp "$LIBS_DIR/*" "$CLS_API_VERSIONS" --bootstrap-server "$HOST:$KAFKA_PORT" 2>&1) &&
        grep -q "$HOST:$KAFKA_PORT" <<<"$out"; then
        return 0
      fi
    fi
    sleep 0.25
  done
  print_log_tail 80
  if [[ -n "$out" ]]; then
    printf '%s\n%s\n' "----- last BrokerApiVersionsCommand output -----" "$out" >&2
  fi
  return 1
}

kill_broker() {
  # kill_broker <pid> : SIGTERM the process group, wait, SIGKILL fallback.
  local pid=$1 timeout=${KAFKA_STOP_TIMEOUT:-30}
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    log "broker (pid $pid) still alive after ${timeout}s, sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    pid_alive "$pid" && die "could not kill broker pid $pid"
  fi
  return 0
}

cmd_start() {
  find_java
  check_java_version
  ensure_installed
  with_state_lock

  if is_running; then
    log "already running (pid $RUNNING_PID) on $HOST:$KAFKA_PORT, state dir $STATE_DIR"
    return 0
  fi

  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $HOST:$p is already in use by another process (pick another KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
    fi
  done

  local keep=0
  if [[ "${KAFKA_KEEP_DATA:-0}" == 1 && -f "$DATA_DIR/meta.properties" ]]; then
    keep=1
    log "KAFKA_KEEP_DATA=1: reusing existing data in $DATA_DIR"
  else
    wipe_state
  fi
  write_broker_config
  rm -f "$PID_FILE"
  if ((keep == 0)); then
    format_storage
  fi

  local -a heap jvm
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
  read -r -a jvm <<<"-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true ${KAFKA_JVM_OPTS:-}"

  log "starting Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (controller $HOST:$KAFKA_CONTROLLER_PORT), logs in $LOG_DIR"
  printf '===== %s start =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$STDOUT_LOG"
  local log_offset
  log_offset=$(broker_log_size)
  # New session (setsid) so the broker survives this shell and can be signalled as a group;
  # the inner bash writes its own pid, then exec's java (same pid). fd 9 (our lock) is closed.
  # shellcheck disable=SC2016 # $$ and $@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
    "$JAVA" "${heap[@]}" "${jvm[@]}" \
    "-Dkafka.logs.dir=$LOG_DIR" "-Dlog4j2.configurationFile=$BROKER_LOG4J" \
    -cp "$LIBS_DIR/*" "$CLS_BROKER" "$SERVER_PROPS" \
    </dev/null >>"$STDOUT_LOG" 2>&1 9>&- &

  local pid=""
  for _ in $(seq 1 50); do
    pid=$(read_pid)
    [[ -n "$pid" ]] && break
    sleep 0.1
  done
  [[ -n "$pid" ]] || { print_log_tail 40; die "broker did not start (no pid file)"; }

  if ! wait_ready "$pid" "$log_offset"; then
    log "broker not ready after ${KAFKA_START_TIMEOUT:-120}s; stopping it"
    kill_broker "$pid" || true
    rm -f "$PID_FILE"
    die "Kafka failed to start on $HOST:$KAFKA_PORT (logs in $LOG_DIR)"
  fi
  log "ready: Kafka $KAFKA_VERSION pid $pid on $HOST:$KAFKA_PORT (state $STATE_DIR)"
  log "  eval \"\$($0 env)\"   # export STREAMSCORE_TEST_BROKERS=$HOST:$KAFKA_PORT"
}

cmd_stop() {
  with_state_lock
  if ! is_running; then
    rm -f "$PID_FILE"
    log "not running (port $KAFKA_PORT)"
    return 0
  fi
  local pid=$RUNNING_PID
  log "stopping Kafka (pid $pid)..."
  kill_broker "$pid"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  if is_running; then
    echo "running: Kafka $KAFKA_VERSION pid $RUNNING_PID on $HOST:$KAFKA_PORT (state $STATE_DIR)"
    return 0
  fi
  echo "not running (port $KAFKA_PORT, state $STATE_DIR)"
  return 1
}

cmd_env() {
  echo "export STREAMSCORE_TEST_BROKERS=$HOST:$KAFKA_PORT"
}

cmd_run_tool() {
  (($# >= 1)) || die "usage: $0 run-tool <MainClass|alias> [args...]"
  local cls
  cls=$(resolve_tool_class "$1")
  shift
  find_java
  ensure_installed
  local -a opts
  read -r -a opts <<<"$(tool_jvm_opts)"
  exec "$JAVA" "${opts[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J" -cp "$LIBS_DIR/*" "$cls" "$@"
}

cmd_logs() {
  local n=${1:-100}
  [[ -f "$SERVER_LOG" ]] || die "no log at $SERVER_LOG"
  tail -n "$n" "$SERVER_LOG"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  check_ports
  init_state_paths
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    run-tool) cmd_run_tool "$@" ;;
    install) cmd_install "$@" ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
