#!/usr/bin/env bash
# benches/compare.sh: presenced, Prosody and ejabberd side by side under the same XMPP workloads (issue 8).
#
# One command, as root (Prosody and ejabberd run as their own users through runuser):
#     benches/compare.sh
# Installs prosody and ejabberd from Debian's packages if missing (without letting the packages start their
# system services), builds presenced and xmpp_load --release, then for each server in turn: starts it on
# 127.0.0.1 with TLS (one self-signed ECDSA P-256 certificate for all three), SCRAM-SHA-1, no archiving and
# logging at warning level; provisions the same users and rosters; runs the workloads; stops it. Writes
# benches/RESULTS.md (and the raw JSON lines next to it in benches/results.jsonl). Then runs the SIP half,
# benches/sip/compare.sh (presenced vs Kamailio, benches/sip/RESULTS.md; SIP=0 skips it).
#
# Sizes can be changed through the environment (defaults are the issue's):
#   LOGIN_USERS=5000 CHAT_USERS=2000 CHAT_RATE=20000 CHAT_RATE2=2000 CHAT_SECS=20 FAN_USERS=500 FAN_ROSTER=200
#   IDLE_USERS=10000 SERVERS="presenced prosody ejabberd" OUT=benches/RESULTS.md
#   SHARDS=0 (presenced's engine shards, [runtime] shards; 0 = one per core, the product's default; benches/shards.sh compares counts)
# Every process this script starts is stopped by it, by pid, on exit (also on error or Ctrl-C).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
LOGIN_USERS=${LOGIN_USERS:-5000}
CHAT_USERS=${CHAT_USERS:-2000}
CHAT_RATE=${CHAT_RATE:-20000}
# A second, lower offered rate, nearer what the slower servers sustain ("or the max sustainable").
CHAT_RATE2=${CHAT_RATE2:-2000}
CHAT_RATES="$CHAT_RATE $CHAT_RATE2"
CHAT_SECS=${CHAT_SECS:-20}
FAN_USERS=${FAN_USERS:-500}
FAN_ROSTER=${FAN_ROSTER:-200}
IDLE_USERS=${IDLE_USERS:-10000}
IDLE_SECS=${IDLE_SECS:-5}
SERVERS=${SERVERS:-"presenced prosody ejabberd"}
OUT=${OUT:-$REPO/benches/RESULTS.md}
SHARDS=${SHARDS:-0}
JSONL=$(dirname "$OUT")/results.jsonl

log() { printf '[compare %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (Prosody and ejabberd are started as their own users with runuser)"
MAX_USERS=$(printf '%s\n' "$LOGIN_USERS" "$CHAT_USERS" "$FAN_USERS" "$IDLE_USERS" | sort -n | tail -1)

# Each client is one socket in the tool and one in the server.
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -gt 65536 ] && NOFILE=65536
ulimit -n "$NOFILE"
[ "$NOFILE" -gt $((MAX_USERS + 500)) ] || die "ulimit -Hn is $NOFILE: too low for $MAX_USERS clients"

START_TS=$(date +%s)
PIDS=()   # everything started here, stopped in reverse order on exit
WORK=""
POLICY_RC=""
cleanup() {
    local rc=$?
    [ -n "$CHILD" ] && stop_pid "$CHILD"
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    [ -n "$POLICY_RC" ] && rm -f "$POLICY_RC"
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$rc"
}
CHILD=""  # the foreground tool run, if any
# Runs a command in the background and waits for it, so that a signal to this script is handled at once.
child() {
    "$@" &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process by pid: TERM, up to 20 s, then KILL.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# The first descendant of $1 whose command name is $2 and whose command line contains $3 (waits up to 20 s).
descendant() {
    local root=$1 name=$2 pattern=${3:-} _ queue p c
    for _ in $(seq 200); do
        queue=("$root")
        while [ ${#queue[@]} -gt 0 ]; do
            p=${queue[0]}
            queue=("${queue[@]:1}")
            for c in $(pgrep -P "$p" || true); do
                if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = "$name" ] &&
                    tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -qF -- "$pattern"; then
                    echo "$c"
                    return 0
                fi
                queue+=("$c")
            done
        done
        sleep 0.1
    done
    return 1
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

# --- install --------------------------------------------------------------------------------------------------
need=()
command -v prosody >/dev/null || need+=(prosody)
command -v ejabberdctl >/dev/null || need+=(ejabberd)
command -v openssl >/dev/null || need+=(openssl)
# ejabberd's import_prosody (used to provision it) reads Prosody's Lua files with luerl.
dpkg-query -W -f '${Status}' erlang-luerl 2>/dev/null | grep -q "ok installed" || need+=(erlang-luerl)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Keep the packages from starting their system-wide services (on 0.0.0.0) during installation.
        POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ -n "$POLICY_RC" ] && rm -f "$POLICY_RC" && POLICY_RC=""
fi

# --- build ----------------------------------------------------------------------------------------------------
log "building presenced and xmpp_load (release)"
(cd "$REPO" && cargo build --release -q -p examples --bin presenced -p benches --bin xmpp_load)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PRESENCED=$TARGET/release/presenced
LOAD=$TARGET/release/xmpp_load
[ -x "$PRESENCED" ] && [ -x "$LOAD" ] || die "binaries not found under $TARGET/release"

# --- shared files ---------------------------------------------------------------------------------------------
# tmpfs when there is one: every server's store then costs no fsyncs, and provisioning stays fast.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    WORK=$(mktemp -d /dev/shm/presence-bench.XXXXXX)
else
    WORK=$(mktemp -d /tmp/presence-bench.XXXXXX)
fi
chmod 755 "$WORK"
bench_cert "$WORK"
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
chmod 644 "$WORK"/*.pem
: >"$JSONL.tmp"

SPID=""  # the server process measured (its RSS and CPU)
TOP=""   # the process we started for it (stopped by pid)
PORT=""

# --- presenced ------------------------------------------------------------------------------------------------
presenced_setup() {
    local d=$WORK/presenced
    mkdir -p "$d"
    PORT=$(free_port)
    cat >"$d/presenced.toml" <<EOF
$(presenced_listeners "$d/data" "$PORT" "$WORK")

# Every load client connects from 127.0.0.1: the per-address connection cap (meant for one host or NAT) is off,
# as Prosody and ejabberd have none. The per-connection inbound rate stays at its default.
[limits]
max_contacts = 0
max_watchers = 0
max_connections_per_ip = 0
# No archiving, as for Prosody and ejabberd here (presenced archives every chat message by default).
max_archive_per_user = 0

[runtime]
shards = $SHARDS
EOF
    log "presenced: provisioning $MAX_USERS users, $FAN_ROSTER-contact rosters for u0..u$((FAN_USERS - 1)) (store)"
    "$LOAD" provision --data-dir "$d/data" --users "$MAX_USERS" --roster "$FAN_ROSTER" --roster-users "$FAN_USERS"
}
presenced_start() {
    "$PRESENCED" --config "$WORK/presenced/presenced.toml" serve >>"$WORK/presenced/server.log" 2>&1 &
    TOP=$!
    PIDS+=("$TOP")
    SPID=$TOP
    wait_port "$PORT" presenced "$TOP"
}
presenced_provision() { :; }

# --- Prosody --------------------------------------------------------------------------------------------------
prosody_setup() {
    local d=$WORK/prosody
    mkdir -p "$d/data"
    PORT=$(free_port)
    cat >"$d/prosody.cfg.lua" <<EOF
-- Generated by benches/compare.sh.
pidfile = "$d/prosody.pid"
data_path = "$d/data"
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
c2s_direct_tls_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
network_backend = "epoll"
-- The same listen backlog as presenced (tokio's 1024) and ejabberd below; 128 overflows under a login storm.
network_settings = { tcp_backlog = 1024 }
modules_enabled = { "roster", "saslauth", "tls", "disco", "register", "limits", "posix" }
modules_disabled = { "s2s", "offline" }
c2s_require_encryption = true
authentication = "internal_hashed"
-- The same PBKDF2 iteration count as presenced and ejabberd store (Prosody's default is 10000).
default_iteration_count = 4096
storage = "internal"
allow_registration = true
registration_allowlist = { "127.0.0.1" }
-- The default c2s limit (10 kB/s per connection) would throttle the load: raised for the comparison.
limits = { c2s = { rate = "1000mb/s", burst = "10s" } }
log = { warn = "$d/prosody.log" }
ssl = { certificate = "$WORK/cert.pem", key = "$WORK/key.pem" }
VirtualHost "localhost"
EOF
    log "prosody: provisioning $MAX_USERS users, $FAN_ROSTER-contact rosters for u0..u$((FAN_USERS - 1)) (storage files)"
    "$LOAD" prosody-provision --data-path "$d/data" --users "$MAX_USERS" --roster "$FAN_ROSTER" \
        --roster-users "$FAN_USERS" --scram-cache "$WORK/prosody.keys"
    chown -R prosody: "$d"
}
prosody_start() {
    # runuser's PAM session resets the soft fd limit to 1024: prlimit raises it again for the server.
    runuser -u prosody -- prlimit --nofile="$NOFILE:$NOFILE" prosody --config "$WORK/prosody/prosody.cfg.lua" -F >>"$WORK/prosody/stdout.log" 2>&1 &
    TOP=$!
    PIDS+=("$TOP")
    SPID=$(descendant "$TOP" lua5.4 || descendant "$TOP" lua5.3 || descendant "$TOP" lua5.2 || descendant "$TOP" lua5.1 || descendant "$TOP" prosody) ||
        die "no prosody process under runuser $TOP"
    # The interpreter is the server: stop it by pid first, runuser follows.
    PIDS+=("$SPID")
    wait_port "$PORT" prosody "$TOP"
}
prosody_provision() { :; }

# --- ejabberd -------------------------------------------------------------------------------------------------
ejabberd_setup() {
    local d=$WORK/ejabberd
    mkdir -p "$d/spool" "$d/logs" "$d/home"
    : >"$d/inetrc"
    PORT=$(free_port)
    cat >"$d/ejabberd.yml" <<EOF
# Generated by benches/compare.sh.
hosts: [localhost]
loglevel: warning
certfiles: ["$WORK/combined.pem"]
define_macro: {}
listen:
  - port: $PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    shaper: none
    access: all
    backlog: 1024
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
s2s_access: none
registration_timeout: infinity
acl: {}
access_rules:
  register:
    allow: all
shaper: {}
shaper_rules: {}
modules:
  mod_roster: {}
  mod_disco: {}
  mod_register:
    access: register
    ip_access: all
EOF
    # No epmd: a fixed distribution port on loopback (ejabberdctl passes -start_epmd false with ERL_DIST_PORT).
    cat >"$d/ejabberdctl.cfg" <<EOF
ERLANG_NODE=bench$$@localhost
ERL_DIST_PORT=$(free_port)
ERL_OPTIONS="-kernel inet_dist_use_interface {127,0,0,1}"
ERL_MAX_PORTS=65536
EOF
    # The same accounts (SCRAM-SHA-1, 4096 iterations) and rosters as Prosody's, imported below with
    # `ejabberdctl import_prosody`: one command instead of thousands of registrations and subscriptions.
    log "ejabberd: provisioning $MAX_USERS users, $FAN_ROSTER-contact rosters for u0..u$((FAN_USERS - 1)) (Prosody files to import)"
    "$LOAD" prosody-provision --data-path "$d/import" --users "$MAX_USERS" --roster "$FAN_ROSTER" \
        --roster-users "$FAN_USERS" --scram-cache "$WORK/ejabberd.keys"
    chown -R ejabberd: "$d"
}
ejctl() {
    local d=$WORK/ejabberd
    runuser -u ejabberd -- env -C "$d" HOME="$d/home" ERL_EPMD_ADDRESS=127.0.0.1 /usr/sbin/ejabberdctl \
        --config-dir "$d" --ctl-config "$d/ejabberdctl.cfg" --config "$d/ejabberd.yml" --spool "$d/spool" \
        --logs "$d/logs" "$@"
}
ejabberd_start() {
    local d=$WORK/ejabberd
    ERL_EPMD_ADDRESS=127.0.0.1 runuser -u ejabberd -- prlimit --nofile="$NOFILE:$NOFILE" \
        env -C "$d" HOME="$d/home" ERL_EPMD_ADDRESS=127.0.0.1 /usr/sbin/ejabberdctl --config-dir "$d" --ctl-config "$d/ejabberdctl.cfg" --config "$d/ejabberd.yml" \
        --spool "$d/spool" --logs "$d/logs" foreground >>"$d/stdout.log" 2>&1 &
    TOP=$!
    PIDS+=("$TOP")
    SPID=$(descendant "$TOP" beam.smp "-s ejabberd") || die "no ejabberd beam.smp under $TOP"
    PIDS+=("$SPID")
    wait_port "$PORT" ejabberd "$TOP"
}
ejabberd_provision() {
    log "ejabberd: import_prosody"
    child ejctl import_prosody "$WORK/ejabberd/import"
}

# The same users and rosters over XMPP: in-band registration, then subscribe/subscribed between ring neighbours.
xmpp_provision() {
    log "$S: registering $MAX_USERS users (XEP-0077)"
    child "$LOAD" register --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --users "$MAX_USERS" --concurrency 50
    log "$S: $FAN_ROSTER-contact mutual rosters for u0..u$((FAN_USERS - 1)) (subscribe/subscribed)"
    child "$LOAD" roster --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/$S.keys" \
        --users "$FAN_USERS" --roster "$FAN_ROSTER"
}

stop_server() {
    # The measured process first (it shuts down cleanly on TERM), then whatever wrapped it.
    stop_pid "$SPID"
    forget_pid "$SPID"
    stop_pid "$TOP"
    forget_pid "$TOP"
    SPID="" TOP=""
}

restart() {
    stop_server
    sleep 1
    "${S}_start"
}

load() { # workload users [extra args...]
    local w=$1 n=$2
    shift 2
    child "$LOAD" run --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/$S.keys" \
        --server-pid "$SPID" --label "$S" --workload "$w" --users "$n" "$@"
}

for S in $SERVERS; do
    log "=== $S"
    "${S}_setup"
    "${S}_start"
    "${S}_provision"
    if [ "$S" = presenced ]; then
        # Unmeasured: log every account in once (fills the tool's SCRAM key cache, RFC 5802 §5.1, and checks
        # them). The Prosody files (Prosody, ejabberd) were written with known salts: their cache is full.
        log "$S: warm-up login of $MAX_USERS users"
        load login "$MAX_USERS" >/dev/null
        sleep 2
    fi
    # Every measured workload on a freshly started server, so that a backlog one leaves behind (an overloaded
    # server still working through queued messages) cannot slow the next one down.
    restart
    log "$S: login storm, $LOGIN_USERS clients"
    load login "$LOGIN_USERS" >>"$JSONL.tmp"
    for rate in $CHAT_RATES; do
        restart
        log "$S: chat, $CHAT_USERS clients, $rate msg/s offered for $CHAT_SECS s"
        load chat "$CHAT_USERS" --rate "$rate" --duration "$CHAT_SECS" >>"$JSONL.tmp"
    done
    restart
    log "$S: presence fan-out, $FAN_USERS users x $FAN_ROSTER contacts"
    load fanout "$FAN_USERS" --roster "$FAN_ROSTER" --rate 0 >>"$JSONL.tmp"
    # Idle memory: on a fresh server too, so the RSS is not inflated by the runs before.
    restart
    log "$S: idle, $IDLE_USERS clients"
    load idle "$IDLE_USERS" --duration "$IDLE_SECS" >>"$JSONL.tmp"
    stop_server
    for f in "$WORK/$S"/*.log "$WORK/$S"/logs/*.log; do
        [ -s "$f" ] && log "$S: $(wc -l <"$f") lines in $(basename "$f"), last: $(tail -1 "$f" | cut -c1-200)"
    done
    sleep 1
done

mv "$JSONL.tmp" "$JSONL"
ELAPSED=$(($(date +%s) - START_TS))
log "all runs done in $ELAPSED s; writing $OUT"

export LOGIN_USERS CHAT_USERS CHAT_RATE CHAT_RATE2 CHAT_SECS FAN_USERS FAN_ROSTER IDLE_USERS ELAPSED
PRESENCED_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown) \
    PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo unknown) \
    EJABBERD_VERSION=$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo unknown) \
    ERLANG_VERSION=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo unknown) \
    LUA_VERSION=$(dpkg-query -W -f '${Version}' lua5.4 2>/dev/null || echo unknown) \
    python3 "$REPO/benches/results_table.py" "$JSONL" >"$OUT"
log "wrote $OUT"

# The SIP half of the comparison (presenced vs Kamailio) writes benches/sip/RESULTS.md; SIP=0 skips it.
if [ "${SIP:-1}" != 0 ]; then
    log "SIP comparison: benches/sip/compare.sh"
    bash "$REPO/benches/sip/compare.sh"
    printf '\n## SIP\n\nThe SIP presence comparison with Kamailio (PUBLISH/s handled, NOTIFYs/s delivered, p99 latency, memory) of this run is in [sip/RESULTS.md](sip/RESULTS.md).\n' >>"$OUT"
fi
