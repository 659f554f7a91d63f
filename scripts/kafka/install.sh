# shellcheck shell=bash
# scripts/kafka/install.sh — sourced by scripts/kafka.sh: finding Java, fetching the Kafka
# jars with Maven into the cache (once per pom.xml), and running Kafka's CLI tool classes.

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
