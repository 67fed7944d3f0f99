#!/usr/bin/env bash
# benches/chat_ab.sh: the chat workload of benches/compare.sh on two builds of presenced, interleaved, to see what
# a change costs (issue 12: "the runtime costs nothing").
#
#     benches/chat_ab.sh [BASE_REV]        # BASE_REV defaults to the commit before the runtime (b7a023b)
#
# Builds presenced at BASE_REV (in a temporary worktree, its own target dir) and at the working tree, both
# --release, plus xmpp_load from the working tree. Provisions CHAT_USERS accounts once per build (same store
# format), then runs ROUNDS rounds in ABBA order, each on a freshly started server: warm-up login, then the chat
# workload (CHAT_USERS clients, CHAT_RATE msg/s offered, CHAT_SECS s). Raw JSON lines go to
# benches/chat_ab.jsonl and a Markdown table (medians per build) to benches/CHAT_AB.md.
#
# Environment: CHAT_USERS=2000 CHAT_RATE=20000 CHAT_SECS=20 ROUNDS=2 AFTER_LIMITS= (extra [limits] lines for the
# after build, e.g. AFTER_LIMITS='max_archive_per_user = 0' to see what archiving costs)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
BASE_REV=${1:-b7a023b}
CHAT_USERS=${CHAT_USERS:-2000}
CHAT_RATE=${CHAT_RATE:-20000}
CHAT_SECS=${CHAT_SECS:-20}
ROUNDS=${ROUNDS:-2}
AFTER_LIMITS=${AFTER_LIMITS:-}
JSONL=$REPO/benches/chat_ab.jsonl
OUT=$REPO/benches/CHAT_AB.md

log() { printf '[chat_ab %s] %s\n' "$(date +%T)" "$*" >&2; }

NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -gt 65536 ] && NOFILE=65536
ulimit -n "$NOFILE"

WORK=$(mktemp -d /dev/shm/chat-ab.XXXXXX 2>/dev/null || mktemp -d /tmp/chat-ab.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    git -C "$REPO" worktree remove --force "$WORK/base-src" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building presenced at $BASE_REV and at the working tree, and xmpp_load (release)"
git -C "$REPO" worktree add -q --detach "$WORK/base-src" "$BASE_REV"
(cd "$WORK/base-src" && CARGO_TARGET_DIR=$REPO/target/chat-ab-base cargo build --release -q -p examples --bin presenced)
(cd "$REPO" && cargo build --release -q -p examples --bin presenced -p benches --bin xmpp_load)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
declare -A BIN=([before]=$REPO/target/chat-ab-base/release/presenced [after]=$TARGET/release/presenced)
LOAD=$TARGET/release/xmpp_load

bench_cert "$WORK"

for build in before after; do
    d=$WORK/$build
    mkdir -p "$d"
    port=$(free_port)
    echo "$port" >"$d/port"
    # The after build knows [http] and the new [limits] keys; every load client comes from 127.0.0.1, so the
    # per-address cap is off for it (Prosody and ejabberd have none either).
    extra=""
    # A base that already had the runtime (issue 12 and later) takes the same keys.
    if [ "$build" = after ] || git -C "$REPO" show "$BASE_REV:examples/src/config.rs" 2>/dev/null \
        | grep -q max_connections_per_ip; then
        extra=$(printf '\n[http]\nbind = "127.0.0.1:%s"\n' "$(free_port)")
        limits='max_connections_per_ip = 0'
        [ "$build" = after ] && limits=$(printf '%s\n%s' "$limits" "$AFTER_LIMITS")
    else
        limits=''
    fi
    # A build with the direct-TLS listener (XEP-0368) would open it on 0.0.0.0:5223 by default: keep it off.
    xmpp_extra=''
    if [ "$build" = after ] || git -C "$REPO" show "$BASE_REV:examples/src/config.rs" 2>/dev/null \
        | grep -q c2s_tls_bind; then
        xmpp_extra='c2s_tls_bind = "off"'
    fi
    cat >"$d/presenced.toml" <<EOF
domain = "localhost"
data_dir = "$d/data"

[xmpp]
c2s_bind = "127.0.0.1:$port"
$xmpp_extra
tls_cert = "$WORK/cert.pem"
tls_key = "$WORK/key.pem"

[sip]
bind = "127.0.0.1:$(free_port)"
$extra
[limits]
max_contacts = 0
max_watchers = 0
$limits
EOF
    log "$build: provisioning $CHAT_USERS users"
    "$LOAD" provision --data-dir "$d/data" --users "$CHAT_USERS" --roster 0 --roster-users 0 >/dev/null
done

start() { # build
    local d=$WORK/$1
    "${BIN[$1]}" --config "$d/presenced.toml" serve >>"$d/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$(cat "$d/port")),0.2)" 2>/dev/null && return
        sleep 0.1
    done
    log "$1 did not start"; exit 1
}
stop() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
}
run() { # build workload users [args]
    local b=$1 w=$2 n=$3
    shift 3
    "$LOAD" run --addr "127.0.0.1:$(cat "$WORK/$b/port")" --ca "$WORK/cert.pem" --scram-cache "$WORK/keys" \
        --server-pid "$SERVER" --label "$b" --workload "$w" --users "$n" "$@"
}

: >"$JSONL"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for b in $order; do
        start "$b"
        run "$b" login "$CHAT_USERS" >/dev/null
        stop
        start "$b"
        log "round $round, $b: chat, $CHAT_USERS clients, $CHAT_RATE msg/s for $CHAT_SECS s"
        run "$b" chat "$CHAT_USERS" --rate "$CHAT_RATE" --duration "$CHAT_SECS" >>"$JSONL"
        stop
        tail -1 "$JSONL" | grep -q '"login_errors":0.000' || { log "$b: logins failed: $(tail -1 "$JSONL" | cut -c1-300)"; exit 1; }
    done
done

python3 - "$JSONL" "$BASE_REV" "$(git -C "$REPO" rev-parse --short HEAD)" >"$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["server"], []).append(r)
def med(b, k):
    return statistics.median(r[k] for r in by[b])
def cpu_us(b):
    return statistics.median(r["phase_server_cpu_s"] / max(r["delivered"], 1) * 1e6 for r in by[b])
print(f"# Chat workload A/B: a change against its base\n")
print(f"`benches/chat_ab.sh`: presenced at `{sys.argv[2]}` (before) and `{sys.argv[3]}` plus the working tree (after),")
n = len(by.get("before", []))
print(f"{n} rounds each in ABBA order on fresh servers; medians. Raw lines: `benches/chat_ab.jsonl`.\n")
print("| measure | before | after | after / before |")
print("|---|---:|---:|---:|")
for label, key in [("messages/s delivered", "delivered_per_s"), ("messages/s sent", "sent_per_s"),
                   ("latency p50, ms", "p50_ms"), ("latency p99, ms", "p99_ms"),
                   ("server CPU in the chat phase, s", "phase_server_cpu_s"), ("RSS at end, KiB", "rss_end_kib")]:
    a, b = med("before", key), med("after", key)
    print(f"| {label} | {a:,.2f} | {b:,.2f} | {b / a if a else float('nan'):.2f} |")
a, b = cpu_us("before"), cpu_us("after")
print(f"| server CPU per delivered message, µs | {a:.1f} | {b:.1f} | {b / a:.2f} |")
PY
log "wrote $OUT"
