#!/usr/bin/env bash
# benches/shards.sh: the chat workload of benches/compare.sh on one build of presenced at several engine shard
# counts (issue 17: "throughput at N = 1 and N = 2"), interleaved on fresh servers.
#
#     benches/shards.sh
#
# Builds presenced and xmpp_load --release, provisions CHAT_USERS accounts once, then runs ROUNDS rounds; each
# round runs every count of SHARDS_LIST (in reverse order every other round, so drift hits all counts alike),
# each on a freshly started server (the count set through PRESENCED_SHARDS): warm-up login, then the chat
# workload (CHAT_USERS clients, CHAT_RATE msg/s offered, CHAT_SECS s). Raw JSON lines go to
# benches/shards.jsonl and a Markdown table (medians per count) to benches/SHARDS.md. The figure that does not
# depend on the load tool keeping up is server CPU per delivered message.
#
# Environment: SHARDS_LIST="1 2" CHAT_USERS=2000 CHAT_RATE=20000 CHAT_SECS=20 ROUNDS=2; PRESENCED_BIN (another
# build of presenced, for an A/B), JSONL and OUT (where the results go).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
SHARDS_LIST=${SHARDS_LIST:-"1 2"}
CHAT_USERS=${CHAT_USERS:-2000}
CHAT_RATE=${CHAT_RATE:-20000}
CHAT_SECS=${CHAT_SECS:-20}
ROUNDS=${ROUNDS:-2}
JSONL=${JSONL:-$REPO/benches/shards.jsonl}
OUT=${OUT:-$REPO/benches/SHARDS.md}

log() { printf '[shards %s] %s\n' "$(date +%T)" "$*" >&2; }

NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -gt 65536 ] && NOFILE=65536
ulimit -n "$NOFILE"

WORK=$(mktemp -d /dev/shm/shards.XXXXXX 2>/dev/null || mktemp -d /tmp/shards.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building presenced and xmpp_load (release)"
(cd "$REPO" && cargo build --release -q -p examples --bin presenced -p benches --bin xmpp_load)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${PRESENCED_BIN:-$TARGET/release/presenced}
LOAD=$TARGET/release/xmpp_load

bench_cert "$WORK"

PORT=$(free_port)
cat >"$WORK/presenced.toml" <<EOF
$(presenced_listeners "$WORK/data" "$PORT" "$WORK")

[limits]
max_contacts = 0
max_watchers = 0
max_connections_per_ip = 0
# No archiving, as for Prosody and ejabberd here (presenced archives every chat message by default).
max_archive_per_user = 0
EOF
log "provisioning $CHAT_USERS users"
"$LOAD" provision --data-dir "$WORK/data" --users "$CHAT_USERS" --roster 0 --roster-users 0 >/dev/null

start() { # shards
    PRESENCED_SHARDS=$1 "$BIN" --config "$WORK/presenced.toml" serve >>"$WORK/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && return
        sleep 0.1
    done
    log "the server with $1 shards did not start"; exit 1
}
stop() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
}
run() { # shards workload users [args]
    local n=$1 w=$2 users=$3
    shift 3
    "$LOAD" run --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/keys" \
        --server-pid "$SERVER" --label "shards=$n" --workload "$w" --users "$users" "$@"
}

: >"$JSONL"
for round in $(seq "$ROUNDS"); do
    order=$SHARDS_LIST
    [ $((round % 2)) = 0 ] && order=$(printf '%s\n' $SHARDS_LIST | tac | tr '\n' ' ')
    for n in $order; do
        start "$n"
        run "$n" login "$CHAT_USERS" >/dev/null
        stop
        start "$n"
        log "round $round, $n shards: chat, $CHAT_USERS clients, $CHAT_RATE msg/s for $CHAT_SECS s"
        run "$n" chat "$CHAT_USERS" --rate "$CHAT_RATE" --duration "$CHAT_SECS" >>"$JSONL"
        stop
        tail -1 "$JSONL" | grep -q '"login_errors":0.000' || { log "$n shards: logins failed: $(tail -1 "$JSONL" | cut -c1-300)"; exit 1; }
    done
done

python3 - "$JSONL" "$(git -C "$REPO" rev-parse --short HEAD)" "$(nproc)" >"$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["server"], []).append(r)
labels = sorted(by, key=lambda s: int(s.split("=")[1]))
def med(b, k):
    return statistics.median(r[k] for r in by[b])
def cpu_us(b):
    return statistics.median(r["phase_server_cpu_s"] / max(r["delivered"], 1) * 1e6 for r in by[b])
print("# Chat workload by engine shard count\n")
print(f"`benches/shards.sh` at `{sys.argv[2]}` on {sys.argv[3]} cores, load tool on the same machine;")
print(f"{len(by[labels[0]])} rounds per count, interleaved, fresh servers; medians. Raw lines: `benches/shards.jsonl`.\n")
print("| measure | " + " | ".join(labels) + " |")
print("|---|" + "---:|" * len(labels))
for label, key in [("messages/s delivered", "delivered_per_s"), ("messages/s sent", "sent_per_s"),
                   ("latency p50, ms", "p50_ms"), ("latency p99, ms", "p99_ms"),
                   ("server CPU in the chat phase, s", "phase_server_cpu_s"), ("RSS at end, KiB", "rss_end_kib")]:
    print(f"| {label} | " + " | ".join(f"{med(b, key):,.2f}" for b in labels) + " |")
print("| server CPU per delivered message, µs | " + " | ".join(f"{cpu_us(b):.1f}" for b in labels) + " |")
PY
log "wrote $OUT"
