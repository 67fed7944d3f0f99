#!/usr/bin/env bash
# benches/idle.sh: presenced alone under compare.sh's idle workload (issue 17), for measuring one change at a time.
#
#     benches/idle.sh                      # 10,000 idle TLS clients, release build, one JSON line on stdout
#     HEAPTRACK=1 USERS=2000 benches/idle.sh   # the server under heaptrack (needs a build without mimalloc:
#                                              # PRESENCED=path/to/presenced); the profile lands in $OUT_DIR
#
# The same server configuration, accounts and rosters as compare.sh (u0..u499 with 200 mutual contacts each, one
# self-signed ECDSA P-256 certificate, STARTTLS, SCRAM-SHA-1), a work directory on tmpfs, and every process it
# starts stopped by pid on exit. Environment: USERS (10000), ROSTER_USERS (500), ROSTER (200), SECS (5, how long
# the clients idle before the RSS is read), PRESENCED and LOAD (binaries; default: release builds of this tree,
# built if missing), HEAPTRACK (1: run the server under heaptrack), OUT_DIR (where heaptrack's file and the server's
# log, presenced-idle.log, go: /tmp); RUST_LOG reaches the server.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
USERS=${USERS:-10000}
ROSTER_USERS=${ROSTER_USERS:-500}
ROSTER=${ROSTER:-200}
SECS=${SECS:-5}
HEAPTRACK=${HEAPTRACK:-0}
OUT_DIR=${OUT_DIR:-/tmp}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PRESENCED=${PRESENCED:-$TARGET/release/presenced}
LOAD=${LOAD:-$TARGET/release/xmpp_load}

log() { printf '[idle %s] %s\n' "$(date +%T)" "$*" >&2; }

if [ ! -x "$PRESENCED" ] || [ ! -x "$LOAD" ]; then
    log "building presenced and xmpp_load (release)"
    (cd "$REPO" && cargo build --release -q -p examples --bin presenced -p benches --bin xmpp_load)
fi
ulimit -n "$(( USERS * 2 + 1000 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /dev/shm/presence-idle.XXXXXX 2>/dev/null || mktemp -d /tmp/presence-idle.XXXXXX)
SERVER=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then
        kill -TERM "$SERVER" 2>/dev/null || true
        for _ in $(seq 200); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER" 2>/dev/null || true
    fi
    [ -s "$WORK/server.log" ] && cp "$WORK/server.log" "$OUT_DIR/presenced-idle.log"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_cert "$WORK"
PORT=$(free_port)
cat >"$WORK/presenced.toml" <<EOF
$(presenced_listeners "$WORK/data" "$PORT" "$WORK")

[log]
level = "warn"

[limits]
max_contacts = 0
max_watchers = 0
max_connections_per_ip = 0
EOF
log "provisioning $USERS users, $ROSTER-contact rosters for u0..u$((ROSTER_USERS - 1))"
"$LOAD" provision --data-dir "$WORK/data" --scram-cache "$WORK/keys" --users "$USERS" --roster "$ROSTER" --roster-users "$ROSTER_USERS" >&2

if [ "$HEAPTRACK" = 1 ]; then
    # heaptrack's own process (it runs the server in the foreground) is stopped through the server.
    heaptrack -o "$OUT_DIR/presenced-idle-$USERS" "$PRESENCED" --config "$WORK/presenced.toml" serve \
        >"$WORK/server.log" 2>&1 &
    for _ in $(seq 200); do
        SERVER=$(pgrep -f -n "^$PRESENCED --config $WORK/presenced.toml" || true)
        [ -n "$SERVER" ] && break
        sleep 0.1
    done
else
    "$PRESENCED" --config "$WORK/presenced.toml" serve >"$WORK/server.log" 2>&1 &
    SERVER=$!
fi
[ -n "$SERVER" ] || { log "the server did not start"; exit 1; }
for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { log "the server exited: $(tail -3 "$WORK/server.log")"; exit 1; }
    sleep 0.1
done
log "idle: $USERS clients for ${SECS}s (server pid $SERVER)"
if [ "$HEAPTRACK" != 1 ]; then
    "$LOAD" run --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/keys" \
        --server-pid "$SERVER" --label presenced --workload idle --users "$USERS" --duration "$SECS"
    exit 0
fi
# Under heaptrack the server is killed while every client is still connected and idle: what heaptrack then
# reports as leaked is exactly what the idle clients hold (heaptrack_print --print-leaks, or -F with
# --flamegraph-cost-type leaked), with none of the logins' transient peaks.
"$LOAD" run --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/keys" \
    --server-pid "$SERVER" --label presenced --workload idle --users "$USERS" --duration "$((SECS + 30))" \
    2>"$WORK/load.err" &
LOADER=$!
until grep -q "logins in" "$WORK/load.err" 2>/dev/null; do
    kill -0 "$LOADER" 2>/dev/null || { cat "$WORK/load.err" >&2; exit 1; }
    sleep 0.5
done
sleep "$SECS"
log "killing the server with $USERS idle clients connected: $(grep VmRSS /proc/"$SERVER"/status)"
kill -KILL "$SERVER"
kill -TERM "$LOADER" 2>/dev/null || true
wait || true
log "heaptrack profile: $(ls -t "$OUT_DIR"/presenced-idle-"$USERS"*.zst "$OUT_DIR"/presenced-idle-"$USERS"*.gz 2>/dev/null | head -1)"
