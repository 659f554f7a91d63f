#!/usr/bin/env bash
# scripts/kafka.sh — a throwaway Apache Kafka 4.1.1 (KRaft) broker, or a cluster of N
# broker+controller nodes on loopback, for streamscore's integration tests, plus a way to
# run Kafka's own CLI tools.
#
# Usage:
#   scripts/kafka.sh start                      install (first time) + format + start all nodes, wait until ready
#   scripts/kafka.sh stop                       SIGTERM every node, wait, SIGKILL fallback; nothing left running
#   scripts/kafka.sh status                     one line per node; exit 0 if every node runs, 1 if not
#   scripts/kafka.sh env                        prints the export lines below (STREAMSCORE_TEST_*)
#   scripts/kafka.sh kill-node I                SIGKILL node I (1..KAFKA_NODES) and check that it is gone
#   scripts/kafka.sh start-node I               start node I again on its data (no format, no wipe), wait until it serves
#   scripts/kafka.sh pause-node I               SIGSTOP node I's JVM (a hung broker: its sockets stay open, nothing
#                                               answers) and check that every thread of it is stopped
#   scripts/kafka.sh resume-node I              SIGCONT a paused node I and check that no thread of it is stopped
#   scripts/kafka.sh run-tool <MainClass|alias> [args...]
#                                               run a Kafka tools main class with the cached classpath
#                                               (stdout is the tool's own; our messages go to stderr)
#   scripts/kafka.sh install                    only fetch the jars into the cache
#   scripts/kafka.sh logs [LINES] [I]           tail the broker log (LINES, default 100) of node I,
#                                               or of every node (with a header each) when I is omitted
#
#   Give every call the same KAFKA_PORT and KAFKA_NODES (and KAFKA_STATE_DIR) as `start`.
#   Test flow:  scripts/kafka.sh start && eval "$(scripts/kafka.sh env)" && go test ./... ; scripts/kafka.sh stop
#   Cluster:    KAFKA_NODES=3 KAFKA_PORT=29192 scripts/kafka.sh start   (then the same variables for every call)
#
#   Node i (1-based) has node.id=i and is broker+controller; its ports are
#     PLAINTEXT 127.0.0.1:$((KAFKA_PORT + 10*(i-1)))   controller +1   SASL_SSL +2 (KAFKA_SECURE=1)
#   One node keeps everything in the state dir; node i of a cluster in <state dir>/node-i.
#   A cluster replicates topics and internal topics 3 ways with min.insync.replicas=2.
#
#   `env` prints (one export per line):
#     STREAMSCORE_TEST_BROKERS=127.0.0.1:P[,127.0.0.1:P+10,...]  STREAMSCORE_TEST_KAFKA_NODES=N
#     STREAMSCORE_TEST_KAFKA_PORT=P
#   and, after a KAFKA_SECURE=1 start:
#     STREAMSCORE_TEST_SECURE_BROKERS=127.0.0.1:P+2[,...]  (SASL_SSL, SCRAM-SHA-512)
#     STREAMSCORE_TEST_TLS_CA_FILE=<state dir>/tls/ca.pem  (signed the brokers' certificate: SAN 127.0.0.1, localhost)
#     STREAMSCORE_TEST_SASL_USERNAME=streamscore  STREAMSCORE_TEST_SASL_PASSWORD=<generated at start>
#   A ready-made client config for the CLI tools over SASL_SSL is <state dir>/tls/client.properties
#   (run-tool kafka-topics --bootstrap-server 127.0.0.1:P+2 --command-config <it> --list).
#
# Environment:
#   KAFKA_PORT=9092              node 1's broker (PLAINTEXT) listener on 127.0.0.1; node i's is +10*(i-1)
#   KAFKA_NODES=1                number of nodes (1..9); 3 is the tested cluster
#   KAFKA_SECURE=1               also a SASL_SSL (SCRAM-SHA-512) listener on each node's port +2, with a
#                                throwaway CA and a generated password for user streamscore (openssl needed)
#   KAFKA_CONTROLLER_PORT        KRaft controller listener (default KAFKA_PORT+1; single node only)
#   STREAMSCORE_CACHE            cache root (default $HOME/.cache/streamscore); Kafka lives in
#                                $STREAMSCORE_CACHE/kafka-4.1.1/{libs,config,state-$KAFKA_PORT}
#   KAFKA_STATE_DIR              data/config/log dir (default <cache>/kafka-4.1.1/state-$KAFKA_PORT)
#   KAFKA_KEEP_DATA=1            keep topics/offsets (and the SCRAM password) across stop+start
#                                (default: fresh data each start)
#   KAFKA_HEAP_OPTS              heap of each node (default "-Xms256m -Xmx1g"; "-Xms128m -Xmx512m" with N > 1)
#   KAFKA_JVM_OPTS               extra broker JVM options (start records them: start-node reuses
#                                them unless given its own; make test's brokers JIT with C1 only)
#   KAFKA_TOOL_JVM_OPTS          JVM options for run-tool and the helper tools
#   KAFKA_EXTRA_CONFIG           extra server.properties lines (newline separated), appended last
#   KAFKA_START_TIMEOUT          seconds to wait for the node(s) to answer metadata requests
#                                (default 120; 240 with N > 1: N JVMs start on the same cores)
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
readonly SASL_USER=streamscore
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-}"
NODES="${KAFKA_NODES:-1}"
SECURE="${KAFKA_SECURE:-0}"

readonly STATE_MARKER_NAME=.streamscore-kafka-state

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^# Environment:/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
}

# shellcheck source=scripts/kafka/install.sh
source "$SCRIPT_DIR/kafka/install.sh"
# shellcheck source=scripts/kafka/config.sh
source "$SCRIPT_DIR/kafka/config.sh"
# shellcheck source=scripts/kafka/proc.sh
source "$SCRIPT_DIR/kafka/proc.sh"

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }

check_settings() {
  [[ "$NODES" =~ ^[1-9]$ ]] || die "KAFKA_NODES must be a node count from 1 to 9, got '$NODES'"
  [[ "$SECURE" =~ ^[01]$ ]] || die "KAFKA_SECURE must be 0 or 1, got '$SECURE'"
  valid_port "$KAFKA_PORT" ||
    die "KAFKA_PORT must be a TCP port number, got '$KAFKA_PORT'"
  valid_port "$((KAFKA_PORT + 10 * (NODES - 1) + 2))" ||
    die "KAFKA_PORT=$KAFKA_PORT is too high for $NODES node(s): node $NODES would listen on $((KAFKA_PORT + 10 * (NODES - 1)))..+2"
  if [[ -z "$KAFKA_CONTROLLER_PORT" ]]; then
    KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
  elif ((NODES > 1)); then
    die "KAFKA_CONTROLLER_PORT works with a single node only; node i of a cluster has its controller on its broker port +1"
  fi
  valid_port "$KAFKA_CONTROLLER_PORT" ||
    die "KAFKA_CONTROLLER_PORT must be a TCP port number, got '$KAFKA_CONTROLLER_PORT'"
  ((KAFKA_CONTROLLER_PORT != KAFKA_PORT)) || die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT"
  ((SECURE == 0 || KAFKA_CONTROLLER_PORT != KAFKA_PORT + 2)) ||
    die "KAFKA_CONTROLLER_PORT must not be KAFKA_PORT+2: that is the SASL_SSL port with KAFKA_SECURE=1"
}

init_state_paths() {
  STATE_DIR="${KAFKA_STATE_DIR:-$KAFKA_HOME/state-$KAFKA_PORT}"
  [[ "$STATE_DIR" == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
  STATE_DIR="${STATE_DIR%/}"
  [[ -n "$STATE_DIR" ]] || die "KAFKA_STATE_DIR must not be /"
  NODES_FILE="$STATE_DIR/nodes"
  JVM_OPTS_FILE="$STATE_DIR/jvm-opts"
  # The lock lives next to (not inside) the state dir, which start may wipe.
  LOCK_FILE="$STATE_DIR.lock"
  secure_paths
  node_paths 1
}

# node_arg <I>: validate a node index given on the command line.
node_arg() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && (($1 <= NODES)) ||
    die "node index must be 1..$NODES (KAFKA_NODES=$NODES), got '${1:-}'"
}
# ---------------------------------------------------------------------------
# commands

with_state_lock() {
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  flock -w 300 9 || die "timed out waiting for lock $LOCK_FILE (another kafka.sh start/stop?)"
}

cmd_install() {
  find_java
  ensure_installed
  log "Kafka $KAFKA_VERSION jars are in $LIBS_DIR"
}

# running_nodes [n]: how many of n (default KAFKA_NODES) nodes of this state dir run.
running_nodes() {
  local saved=$NODES i count=0
  NODES=${1:-$NODES}
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    if is_running; then count=$((count + 1)); fi
  done
  NODES=$saved
  echo "$count"
}

# can_keep_data: KAFKA_KEEP_DATA=1 and every node has formatted data of this layout.
can_keep_data() {
  [[ "${KAFKA_KEEP_DATA:-0}" == 1 ]] || return 1
  local rec i
  rec=$(recorded_nodes)
  [[ -z "$rec" || "$rec" == "$NODES" ]] ||
    die "KAFKA_KEEP_DATA=1: $STATE_DIR holds a KAFKA_NODES=$rec layout, not KAFKA_NODES=$NODES"
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    [[ -f "$DATA_DIR/meta.properties" ]] || return 1
  done
}

check_ports_free() {
  local p
  while read -r p; do
    if port_open "$p"; then
      die "port $HOST:$p (node $NODE) is already in use by another process (pick another KAFKA_PORT)"
    fi
  done < <(node_ports)
}

# prepare_state: wipe (unless kept), write every node's config, format (unless kept).
prepare_state() {
  local keep=0 i
  if can_keep_data; then
    keep=1
    log "KAFKA_KEEP_DATA=1: reusing existing data in $STATE_DIR"
  else
    wipe_state
  fi
  mkdir -p "$STATE_DIR"
  touch "$STATE_DIR/$STATE_MARKER_NAME"
  echo "$NODES" >"$NODES_FILE"
  if ((SECURE == 1)); then make_secure_material "$keep"; else drop_secure_material; fi
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    write_node_config
  done
  if ((keep == 0)); then format_all; fi
}

cmd_start() {
  find_java
  check_java_version
  ensure_installed
  with_state_lock

  local running rec i extra
  running=$(running_nodes)
  if ((running == NODES)); then
    log "already running: $NODES node(s) on $(node_list 0), state dir $STATE_DIR"
    return 0
  fi
  ((running == 0)) ||
    die "$running of $NODES nodes already run from $STATE_DIR: \`start-node I\` starts a missing one, \`stop\` stops them all"
  rec=$(recorded_nodes)
  if [[ -n "$rec" && "$rec" != "$NODES" ]] && (($(running_nodes "$rec") > 0)); then
    die "$STATE_DIR runs a KAFKA_NODES=$rec layout: stop it first (KAFKA_NODES=$rec $0 stop)"
  fi
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    check_ports_free
  done

  prepare_state
  printf '%s\n' "${KAFKA_JVM_OPTS:-}" >"$JVM_OPTS_FILE"
  local -a all=()
  NODE_PID=() NODE_LOG_OFFSET=()
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    extra=""
    if ((SECURE == 1)); then extra=", SASL_SSL $NODE_SECURE_PORT"; fi
    log "starting node $i: Kafka $KAFKA_VERSION on $HOST:$NODE_PORT (controller $NODE_CTRL_PORT$extra), logs in $LOG_DIR"
    launch_node
    NODE_PID[i]=$LAUNCH_PID
    NODE_LOG_OFFSET[i]=$LAUNCH_LOG_OFFSET
    all+=("$i")
  done

  if ! wait_nodes_ready "${all[@]}"; then
    log "not ready after $(start_timeout)s; stopping every node"
    stop_pids "${NODE_PID[@]}" || true
    for i in "${all[@]}"; do node_paths "$i" && rm -f "$PID_FILE"; done
    die "Kafka failed to start on $(node_list 0) (logs in $STATE_DIR)"
  fi
  log "ready: Kafka $KAFKA_VERSION, $NODES node(s) (pid ${NODE_PID[*]}) on $(node_list 0) (state $STATE_DIR)"
  log "  eval \"\$($0 env)\"   # export STREAMSCORE_TEST_BROKERS=$(node_list 0)"
}

cmd_stop() {
  with_state_lock
  # Stop means nothing of this state dir is left running, whatever KAFKA_NODES says.
  local i rec
  rec=$(recorded_nodes)
  if [[ -n "$rec" && "$rec" != "$NODES" ]]; then
    log "$STATE_DIR was started with KAFKA_NODES=$rec (not $NODES): stopping those $rec node(s)"
    NODES=$rec
  fi
  local -a pids=()
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    if is_running; then pids+=("$RUNNING_PID"); else rm -f "$PID_FILE"; fi
  done
  if ((${#pids[@]} == 0)); then
    log "not running (port $KAFKA_PORT)"
    return 0
  fi
  log "stopping Kafka (pid ${pids[*]})..."
  stop_pids "${pids[@]}"
  for ((i = 1; i <= NODES; i++)); do node_paths "$i" && rm -f "$PID_FILE"; done
  log "stopped"
}

cmd_status() {
  check_layout
  if ((NODES == 1)); then
    if is_running; then
      echo "running: Kafka $KAFKA_VERSION pid $RUNNING_PID on $HOST:$KAFKA_PORT (state $STATE_DIR)"
      return 0
    fi
    echo "not running (port $KAFKA_PORT, state $STATE_DIR)"
    return 1
  fi
  local i up=0 extra="" state
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    if was_started_secure; then extra=", SASL_SSL $NODE_SECURE_PORT"; fi
    if is_running; then
      up=$((up + 1))
      state=running
      if is_paused "$RUNNING_PID"; then state="paused (SIGSTOP)"; fi
      echo "node $i: $state: pid $RUNNING_PID on $HOST:$NODE_PORT (controller $NODE_CTRL_PORT$extra, state $NODE_DIR)"
    else
      echo "node $i: not running (port $NODE_PORT, state $NODE_DIR)"
    fi
  done
  echo "$up of $NODES nodes running"
  ((up == NODES))
}

cmd_env() {
  check_layout
  echo "export STREAMSCORE_TEST_BROKERS=$(node_list 0)"
  echo "export STREAMSCORE_TEST_KAFKA_NODES=$NODES"
  echo "export STREAMSCORE_TEST_KAFKA_PORT=$KAFKA_PORT"
  if was_started_secure; then
    echo "export STREAMSCORE_TEST_SECURE_BROKERS=$(node_list 2)"
    echo "export STREAMSCORE_TEST_TLS_CA_FILE=$(printf '%q' "$CA_PEM")"
    echo "export STREAMSCORE_TEST_SASL_USERNAME=$SASL_USER"
    echo "export STREAMSCORE_TEST_SASL_PASSWORD=$(printf '%q' "$(cat "$PASSWORD_FILE")")"
  fi
}

cmd_kill_node() {
  node_arg "${1:-}"
  with_state_lock
  check_layout
  node_paths "$1"
  if ! is_running; then
    rm -f "$PID_FILE"
    log "node $1 is not running (port $NODE_PORT)"
    return 0
  fi
  local pid=$RUNNING_PID p=""
  signal_node KILL "$pid"
  wait_gone 15 "$pid" || die "node $1 (pid $pid) still alive 15s after SIGKILL"
  for _ in $(seq 1 50); do
    p=""
    while read -r q; do if port_open "$q"; then p=$q; fi; done < <(node_ports)
    [[ -z "$p" ]] && break
    sleep 0.1
  done
  [[ -z "$p" ]] || die "node $1 (pid $pid) is gone but port $HOST:$p still accepts connections"
  rm -f "$PID_FILE"
  log "killed node $1 (pid $pid, port $NODE_PORT)"
}

cmd_start_node() {
  node_arg "${1:-}"
  find_java
  check_java_version
  ensure_installed
  with_state_lock
  check_layout
  node_paths "$1"
  if is_running; then
    log "node $1 already running (pid $RUNNING_PID) on $HOST:$NODE_PORT"
    return 0
  fi
  [[ -f "$DATA_DIR/meta.properties" && -f "$SERVER_PROPS" ]] ||
    die "node $1 has no formatted data in $DATA_DIR: run \`start\` first"
  SECURE=0
  if grep -q '^listener.name.sasl_ssl' "$SERVER_PROPS"; then SECURE=1; fi
  check_ports_free
  log "starting node $1 on its data: $HOST:$NODE_PORT, logs in $LOG_DIR"
  NODE_PID=() NODE_LOG_OFFSET=()
  launch_node
  NODE_PID[$1]=$LAUNCH_PID
  NODE_LOG_OFFSET[$1]=$LAUNCH_LOG_OFFSET
  if ! wait_nodes_ready "$1"; then
    log "node $1 not ready after $(start_timeout)s; stopping it"
    stop_pids "$LAUNCH_PID" || true
    rm -f "$PID_FILE"
    die "node $1 failed to start on $HOST:$NODE_PORT (logs in $LOG_DIR)"
  fi
  log "ready: node $1 pid $LAUNCH_PID on $HOST:$NODE_PORT"
}

# running_node_arg <I> <verb>: node I must be running; sets NODE's paths and RUNNING_PID.
running_node_arg() {
  node_arg "${1:-}"
  with_state_lock
  check_layout
  node_paths "$1"
  is_running || die "cannot $2 node $1: it is not running (port $NODE_PORT; \`start-node $1\` starts it)"
}

cmd_pause_node() {
  running_node_arg "${1:-}" pause
  local pid=$RUNNING_PID
  if is_paused "$pid"; then
    log "node $1 (pid $pid) is already paused"
    return 0
  fi
  signal_node STOP "$pid"
  wait_paused 10 "$pid" 1 ||
    die "node $1 (pid $pid) not stopped 10s after SIGSTOP (stopped/threads: $(thread_states "$pid"))"
  log "paused node $1 (pid $pid, port $NODE_PORT): SIGSTOP; \`resume-node $1\` continues it"
}

cmd_resume_node() {
  running_node_arg "${1:-}" resume
  local pid=$RUNNING_PID
  signal_node CONT "$pid"
  wait_paused 10 "$pid" 0 ||
    die "node $1 (pid $pid) still stopped 10s after SIGCONT (stopped/threads: $(thread_states "$pid"))"
  log "resumed node $1 (pid $pid, port $NODE_PORT): SIGCONT"
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
  local n=${1:-100} i
  [[ "$n" =~ ^[0-9]+$ ]] || die "usage: $0 logs [LINES] [NODE]: LINES must be a number, got '$n'"
  if (($# >= 2)); then
    node_arg "$2"
    node_paths "$2"
  elif ((NODES > 1)); then
    for ((i = 1; i <= NODES; i++)); do
      node_paths "$i"
      echo "===== node $i: $SERVER_LOG ====="
      tail -n "$n" "$SERVER_LOG" 2>/dev/null || echo "(no log yet)"
    done
    return 0
  fi
  [[ -f "$SERVER_LOG" ]] || die "no log at $SERVER_LOG"
  tail -n "$n" "$SERVER_LOG"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  check_settings
  init_state_paths
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    start-node) cmd_start_node "$@" ;;
    pause-node) cmd_pause_node "$@" ;;
    resume-node) cmd_resume_node "$@" ;;
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
