#!/usr/bin/env bash
# benches/cluster.sh: presenced as a two-node cluster (PostgreSQL store, NATS link) under load.
#
# One command, as root (PostgreSQL runs as the postgres user through runuser):
#     benches/cluster.sh
# Starts its own PostgreSQL and NATS on free loopback ports (stopped by pid at the end), builds presenced and
# xmpp_load --release, and runs:
#   1. failover: FAIL_USERS clients online on node a (assignment "active-standby": every user on a), kill -9 of
#      node a, time until every client is logged in again through node b and has done one message round trip;
#      heartbeat 1 s / timeout 2 s, users moved in batches of FAIL_BATCH with no pause;
#   2. the same with the source product's batch defaults (25 users per batch, 1 s pause) on FAIL_USERS_SLOW
#      users, to show the contrast;
#   3. chat across the two nodes ("balanced": half the users on each, so about half the messages cross NATS)
#      and, for comparison in the same run, chat on one presenced on the same PostgreSQL store without
#      [cluster]: CHAT_USERS clients, CHAT_RATE2 then CHAT_RATE messages/s offered for CHAT_SECS s each.
# Appends one JSON line per run to benches/cluster_results.jsonl; benches/CLUSTER.md discusses them.
#
# Sizes from the environment: FAIL_USERS=10000 FAIL_BATCH=10000 FAIL_USERS_SLOW=500 CHAT_USERS=2000
# CHAT_RATE=20000 CHAT_RATE2=2000 CHAT_SECS=20 POOL=4 RUNS="failover slow chat single" OUT=benches/cluster_results.jsonl
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
FAIL_USERS=${FAIL_USERS:-10000}
FAIL_BATCH=${FAIL_BATCH:-10000}
FAIL_USERS_SLOW=${FAIL_USERS_SLOW:-500}
CHAT_USERS=${CHAT_USERS:-2000}
CHAT_RATE=${CHAT_RATE:-20000}
CHAT_SECS=${CHAT_SECS:-20}
# A lower rate first, which neither setup saturates: latency without queueing.
CHAT_RATE2=${CHAT_RATE2:-2000}
# [store] pool of every node: PostgreSQL connections (presenced's default is 4).
POOL=${POOL:-4}
RUNS=${RUNS:-"failover slow chat single"}
OUT=${OUT:-$REPO/benches/cluster_results.jsonl}

log() { printf '[cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is started as the postgres user with runuser)"
MAX_USERS=$(printf '%s\n' "$FAIL_USERS" "$FAIL_USERS_SLOW" "$CHAT_USERS" | sort -n | tail -1)
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -gt 65536 ] && NOFILE=65536
ulimit -n "$NOFILE"
# Each client is a socket in the tool and one in a node (plus, briefly, one in the node it was redirected from).
[ "$NOFILE" -gt $((MAX_USERS + 500)) ] || die "ulimit -Hn is $NOFILE: too low for $MAX_USERS clients"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "PostgreSQL not found under /usr/lib/postgresql/*/bin: apt-get install postgresql"
command -v nats-server >/dev/null || die "nats-server not found: apt-get install nats-server"
command -v openssl >/dev/null || die "openssl not found"

START_TS=$(date +%s)
PIDS=()     # presenced nodes and NATS, stopped in reverse order on exit
PG_PID=""   # the postmaster (stopped with SIGINT: fast shutdown)
CHILD=""    # the foreground tool run, if any
WORK=""
stop_pid() { # pid [signal]: the signal (TERM), up to 20 s, then KILL
    local pid=$1 sig=${2:-TERM}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    [ -n "$CHILD" ] && stop_pid "$CHILD"
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    [ -n "$PG_PID" ] && stop_pid "$PG_PID" INT
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
child() {
    "$@" &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}
wait_port() {
    local port=$1 what=$2 pid=$3
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || die "$what exited before listening on 127.0.0.1:$port"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$what did not listen on 127.0.0.1:$port within 60 s"
}
wait_until() { # seconds what command...: polls the command every 0.2 s until it succeeds
    local secs=$1 what=$2
    shift 2
    local end=$(($(date +%s) + secs))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || die "$what not within $secs s"
        sleep 0.2
    done
}

# --- build ----------------------------------------------------------------------------------------------------
log "building presenced and xmpp_load (release)"
(cd "$REPO" && cargo build --release -q -p examples --bin presenced -p benches --bin xmpp_load)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PRESENCED=$TARGET/release/presenced
LOAD=$TARGET/release/xmpp_load
[ -x "$PRESENCED" ] && [ -x "$LOAD" ] || die "binaries not found under $TARGET/release"

# --- shared files and services --------------------------------------------------------------------------------
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    WORK=$(mktemp -d /dev/shm/presence-cluster.XXXXXX)
else
    WORK=$(mktemp -d /tmp/presence-cluster.XXXXXX)
fi
chmod 755 "$WORK"
# One certificate for localhost, served by both nodes: a client sent on by <see-other-host/> checks the same one.
bench_cert "$WORK"

PGPORT=$(free_port)
mkdir "$WORK/pg"
chown postgres:postgres "$WORK/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres --no-sync -E UTF8 --no-locale \
    >"$WORK/pg/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$WORK/pg/initdb.log")"
# fsync off: the store lives on tmpfs anyway, as in compare.sh; the figures are about the nodes.
runuser -u postgres -- "$PGBIN/postgres" -D "$WORK/pg/data" -p "$PGPORT" -k "$WORK/pg" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 >>"$WORK/pg/server.log" 2>&1 &
RUNUSER_PID=$!
for _ in $(seq 300); do
    PG_PID=$(head -1 "$WORK/pg/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$PG_PID" ] && break
    sleep 0.1
done
[ -n "$PG_PID" ] || die "postgres did not start: $(tail -5 "$WORK/pg/server.log")"
psql_() { # db sql
    "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$1" -XqtA -v ON_ERROR_STOP=1 -c "$2"
}
wait_until 60 "PostgreSQL accepting connections" psql_ postgres "SELECT 1" >/dev/null
PG_VERSION=$(psql_ postgres "SHOW server_version")
log "PostgreSQL $PG_VERSION on 127.0.0.1:$PGPORT (pid $PG_PID, via runuser $RUNUSER_PID)"

NATS_PORT=$(free_port)
nats-server -a 127.0.0.1 -p "$NATS_PORT" >>"$WORK/nats.log" 2>&1 &
PIDS+=($!)
wait_port "$NATS_PORT" nats-server "$!"
NATS_VERSION=$(nats-server --version | awk '{print $2}')
log "NATS $NATS_VERSION on 127.0.0.1:$NATS_PORT"

KEYS=$WORK/keys.txt
# The accounts, once: every run's database is a copy of this one (CREATE DATABASE ... TEMPLATE), so the
# verifiers (three PBKDF2 runs per user, with the tool's cached keys) are derived once.
psql_ postgres "CREATE DATABASE base"
log "provisioning $MAX_USERS accounts in PostgreSQL"
"$LOAD" provision --postgres "postgresql://postgres@127.0.0.1:$PGPORT/base" --users "$MAX_USERS" \
    --scram-cache "$KEYS"

# --- nodes ----------------------------------------------------------------------------------------------------
# write_node name db assignment users_per_batch batch_pause [cluster=1]
write_node() {
    local name=$1 db=$2 assignment=$3 batch=$4 pause=$5 cluster=${6:-1}
    local d=$WORK/$db/$name
    mkdir -p "$d"
    local port sip
    port=$(free_port)
    sip=$(free_port)
    echo "$port" >"$d/port"
    cat >"$d/presenced.toml" <<EOF
domain = "localhost"
data_dir = "$d/data"

[xmpp]
c2s_bind = "127.0.0.1:$port"
c2s_tls_bind = "off"
tls_cert = "$WORK/cert.pem"
tls_key = "$WORK/key.pem"

[sip]
bind = "127.0.0.1:$sip"
tls_bind = "off"

[s2s]
bind = "off"

[http]
bind = "127.0.0.1:$(free_port)"

[store]
kind = "postgres"
url = "postgresql://postgres@127.0.0.1:$PGPORT/$db"
pool = $POOL

# As in compare.sh: every load client connects from 127.0.0.1.
[limits]
max_contacts = 0
max_watchers = 0
max_connections_per_ip = 0

# Warnings, and what the cluster does (state changes, batches moved), with timestamps.
[log]
level = "warn,examples::cluster=info"
EOF
    [ "$cluster" = 1 ] || return 0
    cat >>"$d/presenced.toml" <<EOF

[cluster]
node = "$name"
group = "g1"
nats = "nats://127.0.0.1:$NATS_PORT"
assignment = "$assignment"
advertise_xmpp = "localhost:$port"
advertise_sip = "127.0.0.1:$sip"

[cluster.failover]
heartbeat_interval = "1s"
heartbeat_timeout = "2s"
initialization_timeout = "4s"
connect_timeout = "1s"
critical_service_down_delay = "3s"
users_per_batch = $batch
batch_pause = "$pause"
automatic_fallback = false
fallback_stable_period = "30min"
login_rate_per_second = 5000
EOF
}
start_node() { # db name -> sets NODE_PID
    local d=$WORK/$1/$2
    "$PRESENCED" --config "$d/presenced.toml" serve >>"$d/server.log" 2>&1 &
    NODE_PID=$!
    disown "$NODE_PID" # no "Killed" notice when the failover run kills it; it is still stopped by pid on exit
    PIDS+=("$NODE_PID")
    wait_port "$(cat "$d/port")" "presenced $2" "$NODE_PID"
}
both_normal() { [ "$(psql_ "$1" "SELECT string_agg(name || '=' || coalesce(state, ''), ',' ORDER BY name) FROM cluster_nodes" 2>/dev/null)" = "a=Normal,b=Normal" ]; }
placed() { [ "$(psql_ "$1" "SELECT count(*) FROM cluster_placement" 2>/dev/null || echo 0)" -ge "$2" ]; }
# cluster db assignment batch pause: a fresh database, nodes a then b, both managers Normal -> A_PID B_PID A_PORT B_PORT
cluster() {
    local db=$1
    write_node a "$db" "$2" "$3" "$4"
    write_node b "$db" "$2" "$3" "$4"
    start_node "$db" a
    A_PID=$NODE_PID
    start_node "$db" b
    B_PID=$NODE_PID
    A_PORT=$(cat "$WORK/$db/a/port")
    B_PORT=$(cat "$WORK/$db/b/port")
    wait_until 60 "both failover managers Normal" both_normal "$db"
}
stop_nodes() {
    local p
    for p in "$@"; do stop_pid "$p"; done
}
show_log() { # db name: the cluster's lines of a node's log
    local f=$WORK/$1/$2/server.log
    [ -s "$f" ] && grep -v '^\s*$' "$f" | tail -n "${3:-12}" | cut -c1-220 | sed "s/^/    [$1 $2] /" >&2 || true
}
load() { # addr label [args...]
    local addr=$1 label=$2
    shift 2
    child "$LOAD" run --addr "$addr" --ca "$WORK/cert.pem" --scram-cache "$KEYS" --label "$label" "$@"
}
: >"$OUT.tmp"
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
COMMON_TAGS=(--tag "rev=$REV" --tag "store_pool=$POOL" --tag "postgres=$PG_VERSION" --tag "nats=$NATS_VERSION"
    --tag "cpus=$(nproc)" --tag "date=$(date -u +%FT%TZ)")

failover_run() { # db users batch pause label
    local db=$1 n=$2 batch=$3 pause=$4 label=$5
    psql_ postgres "CREATE DATABASE $db TEMPLATE base"
    # Only u0..u{n-1}: the nodes move every account of the dead node, not just the ones online.
    psql_ "$db" "DELETE FROM accounts WHERE substring(split_part(jid, '@', 1) from 2)::int >= $n"
    cluster "$db" active-standby "$batch" "$pause"
    wait_until 60 "$n accounts placed" placed "$db" "$n"
    log "$label: $n users on node a (pid $A_PID, :$A_PORT), node b (pid $B_PID, :$B_PORT); heartbeat 1 s / 2 s, batches of $batch, pause $pause"
    load "127.0.0.1:$A_PORT" "$label" --users "$n" --workload failover --kill-pid "$A_PID" \
        --failover-addr "127.0.0.1:$B_PORT" --server-pid "$B_PID" \
        --tag "heartbeat_interval=1s" --tag "heartbeat_timeout=2s" --tag "users_per_batch=$batch" \
        --tag "batch_pause=$pause" --tag "assignment=active-standby" "${COMMON_TAGS[@]}" >>"$OUT.tmp"
    tail -1 "$OUT.tmp" >&2
    show_log "$db" b
    psql_ "$db" "SELECT 'placement after: ' || string_agg(host || '=' || n, ' ') FROM (SELECT host, count(*) n FROM cluster_placement GROUP BY host) t" >&2
    stop_nodes "$B_PID"
}

for RUN in $RUNS; do
    case $RUN in
    failover) failover_run fo "$FAIL_USERS" "$FAIL_BATCH" 0ms failover ;;
    slow) failover_run fo_slow "$FAIL_USERS_SLOW" 25 1s failover-product-batches ;;
    chat)
        # Balanced placement needs both nodes registered before the accounts exist: provision after the start.
        psql_ postgres "CREATE DATABASE chat"
        cluster chat balanced 1000 0ms
        log "chat: provisioning $CHAT_USERS accounts with both nodes running"
        "$LOAD" provision --postgres "postgresql://postgres@127.0.0.1:$PGPORT/chat" --users "$CHAT_USERS" \
            --scram-cache "$KEYS"
        wait_until 60 "$CHAT_USERS accounts placed" placed chat "$CHAT_USERS"
        psql_ chat "SELECT 'placement: ' || string_agg(host || '=' || n, ' ') FROM (SELECT host, count(*) n FROM cluster_placement GROUP BY host) t" >&2
        for rate in $CHAT_RATE2 $CHAT_RATE; do
            log "chat across two nodes: $CHAT_USERS clients (all connect to a; b's users follow see-other-host), $rate msg/s for $CHAT_SECS s"
            load "127.0.0.1:$A_PORT" cluster-2-nodes --users "$CHAT_USERS" --workload chat --rate "$rate" \
                --duration "$CHAT_SECS" --server-pid "$A_PID" --server-pid "$B_PID" --tag "assignment=balanced" \
                "${COMMON_TAGS[@]}" >>"$OUT.tmp"
            tail -1 "$OUT.tmp" >&2
            sleep 2
        done
        show_log chat a 4
        show_log chat b 4
        stop_nodes "$B_PID" "$A_PID"
        ;;
    single)
        psql_ postgres "CREATE DATABASE single TEMPLATE base"
        write_node a single - 0 0ms 0
        start_node single a
        for rate in $CHAT_RATE2 $CHAT_RATE; do
            log "chat on one node (same PostgreSQL store, no [cluster]): $CHAT_USERS clients, $rate msg/s for $CHAT_SECS s"
            load "127.0.0.1:$(cat "$WORK/single/a/port")" single-node --users "$CHAT_USERS" --workload chat \
                --rate "$rate" --duration "$CHAT_SECS" --server-pid "$NODE_PID" "${COMMON_TAGS[@]}" >>"$OUT.tmp"
            tail -1 "$OUT.tmp" >&2
            sleep 2
        done
        show_log single a 4
        stop_nodes "$NODE_PID"
        ;;
    *) die "unknown run $RUN (failover slow chat single)" ;;
    esac
done

cat "$OUT.tmp" >>"$OUT"
rm -f "$OUT.tmp"
log "all runs done in $(($(date +%s) - START_TS)) s; appended to $OUT"
