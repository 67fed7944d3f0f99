#!/usr/bin/env bash
# benches/muc.sh: the group chat (XEP-0045) workload of issue 15 against presenced, Prosody and ejabberd, side by
# side: ROOMS rooms of OCCUPANTS occupants each at conference.localhost (sizes 50 and 500), every client logs in
# and joins its room (the first one creates it, as an instant room), then RATE groupchat messages per second per
# room for MUC_SECS seconds, sent by the occupants in turn; every occupant times every receipt. Reported per server
# and size: deliveries/s, p50/p99 latency, server CPU per delivery (message phase only), server RSS growth per idle
# occupant (after all joined vs before the first join), failures. See "Group chat" in benches/README.md.
#
# One command, as root (Prosody and ejabberd run as their own users through runuser):
#     benches/muc.sh
# Installs prosody and ejabberd from Debian's packages if missing (without letting the packages start their
# system services), builds presenced and xmpp_load --release, and for each server in turn: writes its config (TLS
# with one self-signed ECDSA P-256 certificate for all three, SCRAM-SHA-1, a MUC service at conference.localhost
# with the same generous limits), provisions the same users, runs each size on a freshly started server, stops
# it. Writes benches/MUC.md and the raw JSON lines in benches/muc.jsonl. A server that does not start (presenced
# before it has a [muc] section) or a run that fails is recorded as such; the other rows are still written.
#
# Sizes (environment): ROOMS_50=20 RATES_50="1 40" ROOMS_500=1 RATES_500="2 80" MUC_SECS=10
#   SERVERS="presenced prosody ejabberd" OUT=benches/MUC.md
#   PRESENCED_MUC='lines for presenced's [muc] section' (default: none, i.e. its defaults)
# Every process this script starts is stopped by it, by pid, on exit (also on error or Ctrl-C).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
# Each size runs at each of its rates (messages/s per room), every run on a freshly started server. The defaults
# offer 1,000 deliveries/s (every server keeps up: latency and CPU per delivery compare like with like) and
# 40,000 deliveries/s (more than Prosody and ejabberd deliver on this machine: their ceiling).
# Size 50: ROOMS_50 rooms of 50; a rate R offers ROOMS_50 × R × 50 deliveries/s.
ROOMS_50=${ROOMS_50:-20}
RATES_50=${RATES_50:-"1 40"}
# Size 500: joining is quadratic (every join presence goes to every occupant: 250,000 per room), so one room.
ROOMS_500=${ROOMS_500:-1}
RATES_500=${RATES_500:-"2 80"}
MUC_SECS=${MUC_SECS:-10}
SERVICE=conference.localhost
SERVERS=${SERVERS:-"presenced prosody ejabberd"}
OUT=${OUT:-$REPO/benches/MUC.md}
JSONL=$(dirname "$OUT")/muc.jsonl
PRESENCED_MUC=${PRESENCED_MUC:-}
MAX_USERS=$(printf '%s\n' "$((ROOMS_50 * 50))" "$((ROOMS_500 * 500))" | sort -n | tail -1)

log() { printf '[muc %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (Prosody and ejabberd are started as their own users with runuser)"

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

# Returns 1 (after logging why) if the server exits or does not listen within 60 s.
wait_port() {
    local port=$1 what=$2 pid=$3
    for _ in $(seq 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$what exited before listening on 127.0.0.1:$port"
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "$what did not listen on 127.0.0.1:$port within 60 s"
    return 1
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
    WORK=$(mktemp -d /dev/shm/presence-muc.XXXXXX)
else
    WORK=$(mktemp -d /tmp/presence-muc.XXXXXX)
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
    # The MUC service is at conference.localhost by default; PRESENCED_MUC adds settings to [muc] (say, limits
    # once they exist). A presenced without MUC rejects the section and does not start: that is recorded.
    cat >"$d/presenced.toml" <<EOC
$(presenced_listeners "$d/data" "$PORT" "$WORK")

# Every load client connects from 127.0.0.1: the per-address connection cap is off, as Prosody and ejabberd have
# none.
[limits]
max_connections_per_ip = 0

[muc]
$PRESENCED_MUC
EOC
    log "presenced: provisioning $MAX_USERS users (store and key cache)"
    "$LOAD" provision --data-dir "$d/data" --users "$MAX_USERS" --scram-cache "$WORK/presenced.keys"
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
    cat >"$d/prosody.cfg.lua" <<EOC
-- Generated by benches/muc.sh.
pidfile = "$d/prosody.pid"
data_path = "$d/data"
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
network_backend = "epoll"
network_settings = { tcp_backlog = 1024 }
modules_enabled = { "roster", "saslauth", "tls", "disco", "limits", "posix" }
modules_disabled = { "s2s", "offline" }
c2s_require_encryption = true
authentication = "internal_hashed"
default_iteration_count = 4096
storage = "internal"
-- The c2s read limit (default 10 kB/s per connection) would throttle the senders: as in compare.sh.
limits = { c2s = { rate = "1000mb/s", burst = "10s" } }
log = { warn = "$d/prosody.log" }
ssl = { certificate = "$WORK/cert.pem", key = "$WORK/key.pem" }
VirtualHost "localhost"

-- Prosody 0.12's own MUC. It has no occupant limit and no message rate limit of its own (those are the
-- community modules mod_muc_max_occupants / mod_muc_limits, not loaded). Rooms start locked (status 201) until
-- their creator configures them: the tool submits an instant-room form, as for ejabberd.
Component "$SERVICE" "muc"
    -- 100 live rooms by default; more than any size here, so that no room is evicted.
    muc_room_cache_size = 1000
    -- The default: 20 messages of history kept per room, as ejabberd's history_size (joins ask for none).
    muc_room_default_history_length = 20
    muc_room_locking = true
    restrict_room_creation = false
EOC
    log "prosody: provisioning $MAX_USERS users (storage files)"
    "$LOAD" prosody-provision --data-path "$d/data" --users "$MAX_USERS" --scram-cache "$WORK/prosody.keys"
    chown -R prosody: "$d"
}
prosody_start() {
    # runuser's PAM session resets the soft fd limit to 1024: prlimit raises it again for the server.
    runuser -u prosody -- prlimit --nofile="$NOFILE:$NOFILE" prosody --config "$WORK/prosody/prosody.cfg.lua" -F >>"$WORK/prosody/stdout.log" 2>&1 &
    TOP=$!
    PIDS+=("$TOP")
    SPID=$(descendant "$TOP" lua5.4 || descendant "$TOP" lua5.3 || descendant "$TOP" lua5.2 || descendant "$TOP" lua5.1 || descendant "$TOP" prosody) ||
        die "no prosody process under runuser $TOP"
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
    cat >"$d/ejabberd.yml" <<EOC
# Generated by benches/muc.sh.
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
acl: {}
access_rules: {}
shaper: {}
shaper_rules: {}
modules:
  mod_roster: {}
  mod_disco: {}
  mod_muc:
    host: "$SERVICE"
    access: all
    access_create: all
    # Occupants per room: the service-wide cap (default 200) and every new room's (default 200).
    max_users: 1000
    default_room_options:
      max_users: 1000
      persistent: false
      mam: false
    # Rooms one user may be in (the default, 10; each client joins one).
    max_user_conferences: 10
    # Above this many occupants ejabberd limits presence broadcasts (default 1000): stays above 500.
    max_users_presence: 1000
    # No per-user message or presence rate limits (the defaults, stated): 0 s between messages, no shapers.
    min_message_interval: 0
    min_presence_interval: 0
    user_message_shaper: none
    user_presence_shaper: none
    # The default: 20 messages of history kept per room, as Prosody (joins ask for none).
    history_size: 20
EOC
    # No epmd: a fixed distribution port on loopback (ejabberdctl passes -start_epmd false with ERL_DIST_PORT).
    cat >"$d/ejabberdctl.cfg" <<EOC
ERLANG_NODE=muc$$@localhost
ERL_DIST_PORT=$(free_port)
ERL_OPTIONS="-kernel inet_dist_use_interface {127,0,0,1}"
ERL_MAX_PORTS=65536
EOC
    log "ejabberd: provisioning $MAX_USERS users (Prosody files to import)"
    "$LOAD" prosody-provision --data-path "$d/import" --users "$MAX_USERS" --scram-cache "$WORK/ejabberd.keys"
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

stop_server() {
    # The measured process first (it shuts down cleanly on TERM), then whatever wrapped it.
    local p
    for p in $SPID $TOP; do
        stop_pid "$p"
        forget_pid "$p"
    done
    SPID="" TOP=""
}

# A failed run (or a server that did not start) is recorded as such; the script goes on.
record_error() { # size rooms rate message
    printf '{"server":"%s","workload":"muc","occupants":%s,"rooms":%s,"rate_per_room":%s,"error":"%s"}\n' \
        "$S" "$1" "$2" "$3" "$4" >>"$JSONL.tmp"
}

# One measured run of size OCC on a freshly started server.
run_size() { # occupants rooms rate
    local occ=$1 rooms=$2 rate=$3
    stop_server
    sleep 1
    if ! "${S}_start"; then
        record_error "$occ" "$rooms" "$rate" "$S did not start (see its log)"
        stop_server
        return 0
    fi
    log "$S: muc, $rooms rooms × $occ occupants, $rate messages/s per room for $MUC_SECS s"
    child "$LOAD" run --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/$S.keys" \
        --server-pid "$SPID" --label "$S" --workload muc --users "$((rooms * occ))" --rooms "$rooms" \
        --occupants "$occ" --muc-service "$SERVICE" --rate "$rate" --secs "$MUC_SECS" >>"$JSONL.tmp" || {
        log "$S: the muc run ($occ occupants) failed"
        record_error "$occ" "$rooms" "$rate" "the run failed"
    }
}

for S in $SERVERS; do
    log "=== $S"
    "${S}_setup"
    started=1
    "${S}_start" || started=0
    [ "$started" = 1 ] && "${S}_provision"
    for rate in $RATES_50; do
        if [ "$started" = 1 ]; then run_size 50 "$ROOMS_50" "$rate"; else
            record_error 50 "$ROOMS_50" "$rate" "$S did not start (see its log)"; fi
    done
    for rate in $RATES_500; do
        if [ "$started" = 1 ]; then run_size 500 "$ROOMS_500" "$rate"; else
            record_error 500 "$ROOMS_500" "$rate" "$S did not start (see its log)"; fi
    done
    stop_server
    for f in "$WORK/$S"/*.log "$WORK/$S"/logs/*.log; do
        [ -s "$f" ] && log "$S: $(wc -l <"$f") lines in $(basename "$f"), last: $(tail -1 "$f" | cut -c1-300)"
    done
    sleep 1
done

mv "$JSONL.tmp" "$JSONL"
ELAPSED=$(($(date +%s) - START_TS))
log "all runs done in $ELAPSED s; writing $OUT"
export ROOMS_50 RATES_50 ROOMS_500 RATES_500 MUC_SECS ELAPSED
PRESENCED_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown) \
    PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo unknown) \
    EJABBERD_VERSION=$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo unknown) \
    ERLANG_VERSION=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo unknown) \
    python3 "$REPO/benches/muc_table.py" "$JSONL" >"$OUT"
log "wrote $OUT"
