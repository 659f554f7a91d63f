# shellcheck shell=bash
# scripts/kafka/config.sh — sourced by scripts/kafka.sh: the node layout, server.properties,
# KRaft formatting, and (KAFKA_SECURE=1) the throwaway TLS material and SCRAM password.

# node_paths <i>: point the per-node globals at node i (1-based). With one node the
# layout is exactly the historical single-broker one: everything directly in $STATE_DIR,
# controller on KAFKA_CONTROLLER_PORT; with N nodes node i lives in $STATE_DIR/node-i.
node_paths() {
  NODE=$1
  NODE_PORT=$((KAFKA_PORT + 10 * (NODE - 1)))
  NODE_SECURE_PORT=$((NODE_PORT + 2))
  if ((NODES == 1)); then
    NODE_DIR=$STATE_DIR
    NODE_CTRL_PORT=$KAFKA_CONTROLLER_PORT
  else
    NODE_DIR=$STATE_DIR/node-$NODE
    NODE_CTRL_PORT=$((NODE_PORT + 1))
  fi
  DATA_DIR="$NODE_DIR/data"
  LOG_DIR="$NODE_DIR/logs"
  PID_FILE="$NODE_DIR/kafka.pid"
  SERVER_PROPS="$NODE_DIR/server.properties"
  BROKER_LOG4J="$NODE_DIR/log4j2.xml"
  STDOUT_LOG="$LOG_DIR/kafka.out"
  SERVER_LOG="$LOG_DIR/server.log"
}

# node_list <port offset>: 127.0.0.1:P+off[,127.0.0.1:P+10+off,...] for all nodes.
node_list() {
  local off=$1 i out=""
  for ((i = 1; i <= NODES; i++)); do
    out+="${out:+,}$HOST:$((KAFKA_PORT + 10 * (i - 1) + off))"
  done
  printf '%s\n' "$out"
}

# The ports node i needs free before it starts.
node_ports() {
  printf '%s\n' "$NODE_PORT" "$NODE_CTRL_PORT"
  if ((SECURE == 1)); then printf '%s\n' "$NODE_SECURE_PORT"; fi
}

controller_voters() {
  local i out=""
  for ((i = 1; i <= NODES; i++)); do
    out+="${out:+,}$i@$HOST:$((KAFKA_PORT + 10 * (i - 1) + 1))"
  done
  printf '%s\n' "$out"
}

# ---------------------------------------------------------------------------
# state dir

wipe_state() {
  if [[ -d "$STATE_DIR" ]]; then
    if [[ ! -f "$STATE_DIR/$STATE_MARKER_NAME" ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
      die "refusing to wipe $STATE_DIR: not empty and not created by kafka.sh (no $STATE_MARKER_NAME)"
    fi
    rm -rf -- "$STATE_DIR"
  fi
}

# recorded_nodes: the KAFKA_NODES the state dir was last started with (empty if unknown).
recorded_nodes() { { tr -dc '0-9' <"$NODES_FILE"; } 2>/dev/null || true; }

# check_layout: every call must pass the KAFKA_NODES the cluster was started with,
# or kill-node/start-node/stop would look for pid files that are not there.
check_layout() {
  local rec
  rec=$(recorded_nodes)
  [[ -z "$rec" || "$rec" == "$NODES" ]] ||
    die "$STATE_DIR was started with KAFKA_NODES=$rec, but this call has KAFKA_NODES=$NODES: pass the same KAFKA_NODES (and KAFKA_PORT) to every call"
}

# ---------------------------------------------------------------------------
# server.properties

# Replication of data and internal topics: 3 ways in a cluster (2 must be in sync),
# 1 on a single node.
replication_config() {
  local rf=$((NODES < 3 ? NODES : 3))
  local isr=$((rf > 1 ? rf - 1 : 1))
  cat <<EOF
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
EOF
  if ((NODES > 1)); then
    # A SIGKILLed node is fenced (and leaves every ISR) after this long without a heartbeat.
    printf '%s\n' "broker.heartbeat.interval.ms=1000" "broker.session.timeout.ms=6000"
  fi
}

# The SASL_SSL listener: SCRAM-SHA-512 over TLS with the PEM key+chain made by make_tls.
secure_config() {
  cat <<EOF

# KAFKA_SECURE=1: SASL_SSL (SCRAM-SHA-512) on port +2; inter-broker traffic stays PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$BROKER_PEM
listener.name.sasl_ssl.ssl.client.auth=none
EOF
}

write_node_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  local listeners="PLAINTEXT://$HOST:$NODE_PORT,CONTROLLER://$HOST:$NODE_CTRL_PORT"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" quorum
  if ((SECURE == 1)); then
    listeners+=",SASL_SSL://$HOST:$NODE_SECURE_PORT"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  if ((NODES == 1)); then
    quorum="controller.quorum.bootstrap.servers=$HOST:$NODE_CTRL_PORT"
  else
    quorum="controller.quorum.voters=$(controller_voters)"
  fi
  {
    cat <<EOF
# written by scripts/kafka.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) — KRaft broker+controller $NODE of $NODES for tests
process.roles=broker,controller
node.id=$NODE
$quorum
listeners=$listeners
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR

# test-friendly defaults
auto.create.topics.enable=false
num.partitions=3
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
    replication_config
    if ((SECURE == 1)); then secure_config; fi
    if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
      printf '\n# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG"
    fi
  } >"$SERVER_PROPS"
  write_node_log4j
}

write_node_log4j() {
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

# ---------------------------------------------------------------------------
# KRaft formatting

# new_cluster_id: what `kafka-storage random-uuid` prints (16 random bytes, URL-safe
# base64 without padding, never starting with '-'), without paying for a JVM.
new_cluster_id() {
  local id=-
  while [[ "$id" == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  [[ ${#id} == 22 ]] || die "could not make a cluster id from /dev/urandom (got '$id')"
  printf '%s\n' "$id"
}

# format_node <cluster id>: format node $NODE's log dir. One node bootstraps a dynamic
# quorum of itself (--standalone); a cluster uses the static controller.quorum.voters.
# With KAFKA_SECURE=1 the SCRAM user is part of the bootstrap metadata, so it exists
# before any client connects.
format_node() {
  local -a args=(format -t "$1" -c "$SERVER_PROPS")
  if ((NODES == 1)); then args+=(--standalone); fi
  if ((SECURE == 1)); then
    args+=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$(cat "$PASSWORD_FILE")]")
  fi
  local out
  if ! out=$(run_tool_java "$CLS_STORAGE" "${args[@]}" 2>&1); then
    printf '%s\n' "$out" >>"$LOG_DIR/format.log"
    printf '%s\n' "$out" >&2
    return 1
  fi
  printf '%s\n' "$out" >>"$LOG_DIR/format.log"
}

# format_all: one cluster id for every node; the formats run in parallel (one JVM each).
format_all() {
  local id i
  id=$(new_cluster_id)
  local -a pids=()
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    format_node "$id" &
    pids+=($!)
  done
  for ((i = 1; i <= NODES; i++)); do
    node_paths "$i"
    wait "${pids[i - 1]}" || die "formatting KRaft storage of node $i in $DATA_DIR failed"
  done
  printf '%s\n' "$id" >"$STATE_DIR/cluster-id"
  log "formatted KRaft storage of $NODES node(s) (cluster id $id)"
}

# ---------------------------------------------------------------------------
# KAFKA_SECURE=1: throwaway CA, broker certificate, SCRAM password

secure_paths() {
  TLS_DIR="$STATE_DIR/tls"
  CA_PEM="$TLS_DIR/ca.pem"
  BROKER_PEM="$TLS_DIR/broker.pem"
  PASSWORD_FILE="$STATE_DIR/scram-password"
  CLIENT_PROPS="$TLS_DIR/client.properties"
}

# was_started_secure: the state dir holds the material of a KAFKA_SECURE=1 start.
was_started_secure() { [[ -s "$PASSWORD_FILE" && -s "$CA_PEM" && -s "$BROKER_PEM" ]]; }

# make_tls: a CA (ca.pem; its key is deleted once it signed) and one broker certificate
# for every node (all on loopback): SAN IP:127.0.0.1 + DNS:localhost, serverAuth.
make_tls() {
  command -v openssl >/dev/null 2>&1 || die "KAFKA_SECURE=1 needs openssl (Debian/Ubuntu: apt-get install openssl)"
  rm -rf -- "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  local t=$TLS_DIR
  cat >"$t/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = streamscore throwaway test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_broker]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  if ! {
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 365 -config "$t/openssl.cnf" \
      -extensions v3_ca -keyout "$t/ca.key" -out "$CA_PEM" &&
      openssl req -new -nodes -newkey rsa:2048 -sha256 -subj /CN=localhost -config "$t/openssl.cnf" \
        -keyout "$t/broker.key" -out "$t/broker.csr" &&
      openssl x509 -req -sha256 -days 365 -in "$t/broker.csr" -CA "$CA_PEM" -CAkey "$t/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$t/openssl.cnf" -extensions v3_broker \
        -out "$t/broker.crt"
  } >"$t/openssl.log" 2>&1; then
    cat "$t/openssl.log" >&2
    die "generating the test CA / broker certificate with openssl failed"
  fi
  # Kafka's PEM keystore: the (unencrypted PKCS#8) key, then the certificate chain.
  cat "$t/broker.key" "$t/broker.crt" "$CA_PEM" >"$BROKER_PEM"
  chmod 600 "$BROKER_PEM" "$t/broker.key"
  rm -f "$t/ca.key" "$t/broker.csr"
}

# make_secure_material [keep]: TLS + password + a client config for Kafka's CLI tools.
# A kept (KAFKA_KEEP_DATA=1) cluster keeps its password: the SCRAM credential lives in
# its metadata and is only written at format time.
make_secure_material() {
  local keep=${1:-0}
  if ((keep == 1)); then
    [[ -s "$PASSWORD_FILE" ]] ||
      die "KAFKA_KEEP_DATA=1 with KAFKA_SECURE=1: the kept data in $STATE_DIR was not formatted by a KAFKA_SECURE=1 start (no SCRAM user); start once without KAFKA_KEEP_DATA"
    if [[ -s "$CA_PEM" && -s "$BROKER_PEM" ]]; then return 0; fi
  else
    (
      umask 077
      openssl rand -hex 24 >"$PASSWORD_FILE"
    ) || die "generating the SCRAM password with openssl failed"
  fi
  make_tls
  (
    umask 077
    cat >"$CLIENT_PROPS" <<EOF
# written by scripts/kafka.sh: Kafka CLI tools over SASL_SSL, e.g.
#   scripts/kafka.sh run-tool kafka-topics --bootstrap-server $HOST:$((KAFKA_PORT + 2)) --command-config $CLIENT_PROPS --list
# (kafka-console-producer/-consumer take it as --producer.config / --consumer.config)
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SASL_USER" password="$(cat "$PASSWORD_FILE")";
ssl.truststore.type=PEM
ssl.truststore.location=$CA_PEM
EOF
  )
}

# drop_secure_material: a plain start must not leave secure lines in `env`.
drop_secure_material() { rm -rf -- "$TLS_DIR" "$PASSWORD_FILE"; }
