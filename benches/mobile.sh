#!/usr/bin/env bash
# benches/mobile.sh: the mobile workloads of issue 14 against presenced, Prosody and ejabberd, side by side:
#   - resume:  clients enable stream management with resumption (XEP-0198), drop their TCP connections without
#              </stream>, a partner sends each of them RESUME_MSGS messages, then each reconnects (TLS, SASL) and
#              resumes, reading until its messages are in;
#   - relogin: the same without stream management: a plain login (bind, roster, initial presence) that gets the
#              messages from offline storage (the contrast);
#   - mam:     MAM_USERS clients each get MAM_MSGS archived chat messages, then page through their archives
#              (XEP-0313 with RSM, MAM_PAGE per page) all at once, MAM_ROUNDS times each.
# Server CPU is measured only over the reconnects and over the catch-up (/proc/PID/stat of the server process).
#
# One command, as root (Prosody and ejabberd run as their own users through runuser):
#     benches/mobile.sh
# Installs prosody and ejabberd from Debian's packages if missing (without letting the packages start their
# system services), builds presenced and xmpp_load --release, and for each server in turn: starts it on 127.0.0.1
# with TLS (one self-signed ECDSA P-256 certificate for all three), SCRAM-SHA-1, stream management with
# resumption, offline storage and archiving of every chat message; provisions the same users and rosters; runs
# each workload on a freshly started server; stops it. Writes benches/MOBILE.md and the raw JSON lines in
# benches/mobile.jsonl.
#
# Sizes (environment): RESUME_USERS=400 RESUME_MSGS=10 MAM_USERS=20 MAM_MSGS=1000 MAM_PAGE=250 MAM_ROUNDS=5 ROSTER=20
#   EJABBERD_MAM_USERS=5 SERVERS="presenced prosody ejabberd" OUT=benches/MOBILE.md
# Every process this script starts is stopped by it, by pid, on exit (also on error or Ctrl-C).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/benches/lib.sh"
RESUME_USERS=${RESUME_USERS:-400}
RESUME_MSGS=${RESUME_MSGS:-10}
MAM_USERS=${MAM_USERS:-20}
MAM_MSGS=${MAM_MSGS:-1000}
MAM_PAGE=${MAM_PAGE:-250}
# ejabberd's archive (mod_mam in mnesia, its default database) stores about 100 messages/s here: filling 20 archives of
# 1,000 took over 2 minutes, so it gets fewer catching-up clients (the figure is per 1,000 messages fetched).
EJABBERD_MAM_USERS=${EJABBERD_MAM_USERS:-5}
# Catch-ups per client, one after the other: enough work that 10 ms CPU ticks do not blur the figure.
MAM_ROUNDS=${MAM_ROUNDS:-5}
# Mutual contacts of every user (ring neighbours), so that a re-login's initial presence has somewhere to go.
ROSTER=${ROSTER:-20}
SERVERS=${SERVERS:-"presenced prosody ejabberd"}
OUT=${OUT:-$REPO/benches/MOBILE.md}
JSONL=$(dirname "$OUT")/mobile.jsonl
# resume/relogin use one more client (the partner that sends while the others are away); mam one sender per
# catching-up client.
MAX_USERS=$(printf '%s\n' "$((RESUME_USERS + 1))" "$((2 * MAM_USERS))" | sort -n | tail -1)

log() { printf '[mobile %s] %s\n' "$(date +%T)" "$*" >&2; }
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
    WORK=$(mktemp -d /dev/shm/presence-mobile.XXXXXX)
else
    WORK=$(mktemp -d /tmp/presence-mobile.XXXXXX)
fi
chmod 755 "$WORK"
bench_cert "$WORK"
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
chmod 644 "$WORK"/*.pem
: >"$JSONL.tmp"

SPID=""  # the server process measured (its RSS and CPU)
TOP=""   # the process we started for it (stopped by pid)
PORT=""

SPID=""  # the server process measured (its CPU)
TOP=""   # the process we started for it (stopped by pid)
PORT=""

# --- presenced ------------------------------------------------------------------------------------------------
presenced_setup() {
    local d=$WORK/presenced
    mkdir -p "$d"
    PORT=$(free_port)
    # Stream management (sm_resume_timeout 300 s), offline storage and the archive (every chat message with a
    # body, up to max_archive_per_user = 10,000; pages of at most 250) are on by default.
    cat >"$d/presenced.toml" <<EOF
$(presenced_listeners "$d/data" "$PORT" "$WORK")

# Every load client connects from 127.0.0.1: the per-address connection cap is off, as Prosody and ejabberd have
# none.
[limits]
max_connections_per_ip = 0
EOF
    log "presenced: provisioning $MAX_USERS users with $ROSTER-contact rosters (store and key cache)"
    "$LOAD" provision --data-dir "$d/data" --users "$MAX_USERS" --roster "$ROSTER" \
        --scram-cache "$WORK/presenced.keys"
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
-- Generated by benches/mobile.sh.
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
network_settings = { tcp_backlog = 1024 }
-- smacks (XEP-0198), mam (XEP-0313) and offline are Prosody 0.12's own modules.
modules_enabled = { "roster", "saslauth", "tls", "disco", "register", "limits", "posix", "smacks", "mam", "offline" }
modules_disabled = { "s2s" }
c2s_require_encryption = true
authentication = "internal_hashed"
default_iteration_count = 4096
-- Prosody's default storage, for the archive too (one file per user and day, on tmpfs).
storage = "internal"
allow_registration = true
registration_allowlist = { "127.0.0.1" }
limits = { c2s = { rate = "1000mb/s", burst = "10s" } }
-- A dropped session stays resumable for 10 minutes (the default), with room for what arrives meanwhile.
smacks_hibernation_time = 600
smacks_max_queue_size = 1000
-- Archive every chat message; pages of up to 250 results (the default cap is 50); keep everything.
default_archive_policy = true
max_archive_query_results = 250
archive_expires_after = "never"
log = { warn = "$d/prosody.log" }
ssl = { certificate = "$WORK/cert.pem", key = "$WORK/key.pem" }
VirtualHost "localhost"
EOF
    log "prosody: provisioning $MAX_USERS users with $ROSTER-contact rosters (storage files)"
    "$LOAD" prosody-provision --data-path "$d/data" --users "$MAX_USERS" --roster "$ROSTER" \
        --scram-cache "$WORK/prosody.keys"
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
    cat >"$d/ejabberd.yml" <<EOF
# Generated by benches/mobile.sh.
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
  mod_offline: {}
  mod_stream_mgmt:
    resume_timeout: 600
    max_ack_queue: 5000
  mod_mam:
    db_type: mnesia
    default: always
EOF
    # No epmd: a fixed distribution port on loopback (ejabberdctl passes -start_epmd false with ERL_DIST_PORT).
    cat >"$d/ejabberdctl.cfg" <<EOF
ERLANG_NODE=mobile$$@localhost
ERL_DIST_PORT=$(free_port)
ERL_OPTIONS="-kernel inet_dist_use_interface {127,0,0,1}"
ERL_MAX_PORTS=65536
EOF
    log "ejabberd: provisioning $MAX_USERS users with $ROSTER-contact rosters (Prosody files to import)"
    "$LOAD" prosody-provision --data-path "$d/import" --users "$MAX_USERS" --roster "$ROSTER" \
        --scram-cache "$WORK/ejabberd.keys"
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

# One measured run; a failed one is recorded as such (its stderr is in the log) and the script goes on.
load() { # workload users [extra args...]
    local w=$1 n=$2
    shift 2
    child "$LOAD" run --addr "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --scram-cache "$WORK/$S.keys" \
        --server-pid "$SPID" --label "$S" --workload "$w" --users "$n" "$@" >>"$JSONL.tmp" || {
        log "$S: the $w run failed"
        printf '{"server":"%s","workload":"%s","error":"the run failed"}\n' "$S" "$w" >>"$JSONL.tmp"
    }
}

for S in $SERVERS; do
    log "=== $S"
    "${S}_setup"
    "${S}_start"
    "${S}_provision"
    # Every measured workload on a freshly started server. mam first, so that each archive holds exactly
    # MAM_MSGS messages (the data of one run stays for the next).
    restart
    mu=$MAM_USERS
    [ "$S" = ejabberd ] && mu=$EJABBERD_MAM_USERS
    log "$S: mam, $mu clients catching up on $MAM_MSGS archived messages each, $MAM_ROUNDS times, pages of $MAM_PAGE"
    load mam "$((2 * mu))" --messages "$MAM_MSGS" --page "$MAM_PAGE" --rounds "$MAM_ROUNDS"
    restart
    log "$S: resume, $RESUME_USERS clients away while $RESUME_MSGS messages each arrive"
    load resume "$((RESUME_USERS + 1))" --messages "$RESUME_MSGS"
    restart
    log "$S: relogin (no stream management), $RESUME_USERS clients, $RESUME_MSGS offline messages each"
    load relogin "$((RESUME_USERS + 1))" --messages "$RESUME_MSGS"
    stop_server
    for f in "$WORK/$S"/*.log "$WORK/$S"/logs/*.log; do
        [ -s "$f" ] && log "$S: $(wc -l <"$f") lines in $(basename "$f"), last: $(tail -1 "$f" | cut -c1-200)"
    done
    sleep 1
done

mv "$JSONL.tmp" "$JSONL"
ELAPSED=$(($(date +%s) - START_TS))
log "all runs done in $ELAPSED s; writing $OUT"
export RESUME_USERS RESUME_MSGS MAM_USERS EJABBERD_MAM_USERS MAM_MSGS MAM_PAGE MAM_ROUNDS ROSTER ELAPSED
PRESENCED_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown) \
    PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo unknown) \
    EJABBERD_VERSION=$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo unknown) \
    ERLANG_VERSION=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo unknown) \
    python3 "$REPO/benches/mobile_table.py" "$JSONL" >"$OUT"
log "wrote $OUT"
