# shellcheck shell=bash
# scripts/kafka/proc.sh — sourced by scripts/kafka.sh: broker processes (launch, readiness,
# SIGTERM/SIGKILL). Functions act on the node selected by node_paths.

read_pid() { { tr -dc '0-9' <"$PID_FILE"; } 2>/dev/null || true; }

pid_alive() {
  local pid=$1 state
  [[ -d "/proc/$pid" ]] || return 1
  # A zombie is not running (some container inits never reap).
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || echo X)
  [[ "$state" != Z && "$state" != X ]]
}

RUNNING_PID=""
is_running() {
  RUNNING_PID=""
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(read_pid)
  [[ -n "$pid" ]] && pid_alive "$pid" || return 1
  # Guard against pid reuse: it must be this node's broker.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- " $CLS_BROKER $SERVER_PROPS" || return 1
  RUNNING_PID=$pid
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

print_log_tail() {
  local f
  for f in "$SERVER_LOG" "$STDOUT_LOG"; do
    if [[ -s "$f" ]]; then
      printf '%s\n' "----- last lines of $f -----" >&2
      tail -n "${1:-60}" "$f" >&2 || true
    fi
  done
}

broker_log_size() { { stat -c %s "$SERVER_LOG" 2>/dev/null; } || echo 0; }

start_timeout() {
  if [[ -n "${KAFKA_START_TIMEOUT:-}" ]]; then
    printf '%s\n' "$KAFKA_START_TIMEOUT"
  elif ((NODES > 1)); then
    echo 240
  else
    echo 120
  fi
}

broker_heap() {
  if [[ -n "${KAFKA_HEAP_OPTS:-}" ]]; then
    printf '%s\n' "$KAFKA_HEAP_OPTS"
  elif ((NODES > 1)); then
    printf '%s\n' "-Xms128m -Xmx512m" # N JVMs share a small machine
  else
    printf '%s\n' "-Xms256m -Xmx1g"
  fi
}

# broker_jvm_opts: KAFKA_JVM_OPTS, or else those that `start` recorded: a node that a test
# kills and restarts (start-node) runs with the options its cluster started with.
broker_jvm_opts() {
  if [[ -n "${KAFKA_JVM_OPTS:-}" ]]; then
    printf '%s\n' "$KAFKA_JVM_OPTS"
  else
    cat "$JVM_OPTS_FILE" 2>/dev/null || true
  fi
}

# launch_node: start node $NODE's JVM in the background; sets LAUNCH_PID and
# LAUNCH_LOG_OFFSET (where this run's lines start in server.log).
launch_node() {
  local -a heap jvm
  read -r -a heap <<<"$(broker_heap)"
  read -r -a jvm <<<"-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true $(broker_jvm_opts)"
  mkdir -p "$LOG_DIR"
  rm -f "$PID_FILE"
  printf '===== %s start =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$STDOUT_LOG"
  LAUNCH_LOG_OFFSET=$(broker_log_size)
  # New session (setsid) so the broker survives this shell and can be signalled as a group;
  # the inner bash writes its own pid, then exec's java (same pid). fd 9 (our lock) is closed.
  # shellcheck disable=SC2016 # $$ and $@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
    "$JAVA" "${heap[@]}" "${jvm[@]}" \
    "-Dkafka.logs.dir=$LOG_DIR" "-Dlog4j2.configurationFile=$BROKER_LOG4J" \
    -cp "$LIBS_DIR/*" "$CLS_BROKER" "$SERVER_PROPS" \
    </dev/null >>"$STDOUT_LOG" 2>&1 9>&- &

  LAUNCH_PID=""
  for _ in $(seq 1 50); do
    LAUNCH_PID=$(read_pid)
    [[ -n "$LAUNCH_PID" ]] && break
    sleep 0.1
  done
  [[ -n "$LAUNCH_PID" ]] || { print_log_tail 40; die "node $NODE did not start (no pid file $PID_FILE)"; }
}

# api_versions <bootstrap>: BrokerApiVersionsCommand's output; it asks every broker the
# bootstrap's metadata lists, so one call proves they all serve requests.
api_versions() {
  local -a opts
  read -r -a opts <<<"$(tool_jvm_opts)"
  timeout 30 "$JAVA" "${opts[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J" \
    -cp "$LIBS_DIR/*" "$CLS_API_VERSIONS" --bootstrap-server "$1" 2>&1
}

# lists_brokers <api_versions output> <node index>...: each node answered, under its own id.
lists_brokers() {
  local out=$1 i
  shift
  for i in "$@"; do
    grep -q "^$HOST:$((KAFKA_PORT + 10 * (i - 1))) (id: $i " <<<"$out" || return 1
  done
}

# wait_nodes_ready <node index>... : wait until each named node's JVM is up, logged its
# start (after its LAUNCH offset, in NODE_LOG_OFFSET[i]), opened its ports, and the
# metadata seen through the first named node lists all of them (unfenced brokers).
# Probing before the logs say "started" only slows the brokers down on a small machine;
# the 20 s fallback covers a change of log wording.
wait_nodes_ready() {
  local timeout i p started out=""
  timeout=$(start_timeout)
  local deadline=$((SECONDS + timeout)) next_probe=$((SECONDS + 20)) bootstrap=""
  for i in "$@"; do bootstrap+="${bootstrap:+,}$HOST:$((KAFKA_PORT + 10 * (i - 1)))"; done
  while ((SECONDS < deadline)); do
    started=1
    for i in "$@"; do
      node_paths "$i"
      if ! pid_alive "${NODE_PID[i]}"; then
        print_log_tail 80
        die "node $i (pid ${NODE_PID[i]}) exited during startup (logs in $LOG_DIR)"
      fi
      while read -r p; do port_open "$p" || started=0; done < <(node_ports)
      tail -c "+$((NODE_LOG_OFFSET[i] + 1))" "$SERVER_LOG" 2>/dev/null |
        grep -q 'Kafka Server started' || started=0
    done
    if ((started == 1 || SECONDS >= next_probe)); then
      next_probe=$((SECONDS + 5))
      if out=$(api_versions "$bootstrap") && lists_brokers "$out" "$@"; then
        return 0
      fi
    fi
    sleep 0.25
  done
  for i in "$@"; do
    node_paths "$i"
    log "node $i:"
    print_log_tail 40
  done
  if [[ -n "$out" ]]; then
    printf '%s\n%s\n' "----- last BrokerApiVersionsCommand output -----" "$out" >&2
  fi
  return 1
}

# signal_node <SIG> <pid>: the whole process group first (setsid made the JVM its leader).
signal_node() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true; }

# wait_gone <seconds> <pid>...: 0 once every pid is gone, 1 at the deadline.
wait_gone() {
  local deadline=$((SECONDS + $1)) pid alive
  shift
  while :; do
    alive=0
    for pid in "$@"; do pid_alive "$pid" && alive=1; done
    ((alive == 0)) && return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# stop_pids <pid>...: SIGTERM all at once (a cluster stops in parallel), wait, SIGKILL fallback.
stop_pids() {
  local timeout=${KAFKA_STOP_TIMEOUT:-30} pid
  # SIGCONT after SIGTERM: a node paused by pause-node acts on the SIGTERM only once it runs.
  for pid in "$@"; do signal_node TERM "$pid" && signal_node CONT "$pid"; done
  wait_gone "$timeout" "$@" && return 0
  for pid in "$@"; do
    if pid_alive "$pid"; then
      log "broker pid $pid still alive after ${timeout}s, sending SIGKILL"
      signal_node KILL "$pid"
    fi
  done
  wait_gone 15 "$@" || die "could not kill broker pid(s) $*"
}

# thread_states <pid>: "<stopped> <threads>": how many of the process's threads are in
# state T (stopped by a signal) and how many it has, read from /proc as ps does. A JVM
# runs many threads: SIGSTOP has taken effect once all are stopped, SIGCONT once none is.
thread_states() {
  local f line state stopped=0 total=0
  for f in "/proc/$1/task/"*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue # a thread that just ended
    state=${line##*) }
    state=${state%% *}
    total=$((total + 1))
    if [[ "$state" == T ]]; then stopped=$((stopped + 1)); fi
  done
  echo "$stopped $total"
}

# is_paused <pid>: every thread of the process is stopped (a pause-node that took effect).
is_paused() {
  local stopped total
  read -r stopped total <<<"$(thread_states "$1")"
  ((total > 0 && stopped == total))
}

# wait_paused <seconds> <pid> <1|0>: 0 once the process is paused (1) or no thread of it
# is stopped (0); 1 at the deadline.
wait_paused() {
  local deadline=$((SECONDS + $1)) pid=$2 want=$3 stopped total
  while :; do
    read -r stopped total <<<"$(thread_states "$pid")"
    if ((want == 1 && total > 0 && stopped == total)) || ((want == 0 && stopped == 0)); then
      return 0
    fi
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
