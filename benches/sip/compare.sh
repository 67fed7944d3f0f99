#!/usr/bin/env bash
# SIP presence load, presenced vs Kamailio, in one command: installs what is missing (Debian's
# kamailio, kamailio-presence-modules, kamailio-sqlite-modules, sip-tester, sqlite3), builds
# presenced --release, provisions the same users on both servers, runs the same sipp workload against
# each in turn on 127.0.0.1 and writes the measurements to benches/sip/results.jsonl and the table
# made from them (results_table.py) to benches/sip/RESULTS.md. See benches/sip/README.md.
#
# Workload: WATCHER_USERS users keep PRESENTITIES*FANOUT subscription dialogs (each presentity has
# FANOUT watchers, each watcher user watches PRESENTITIES*FANOUT/WATCHER_USERS presentities); then,
# for each offered rate in RATES, PRESENTITIES publishers modify their presence (authenticated
# PUBLISH with SIP-If-Match, a new note every time) for STEP_SECONDS in all, and the watchers answer
# and log every NOTIFY.
#
# Every process this script starts is stopped by this script, by its pid.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

PRESENTITIES="${PRESENTITIES:-100}"
WATCHER_USERS="${WATCHER_USERS:-100}"
FANOUT="${FANOUT:-10}"
RATES="${RATES:-250 500 1000 2000 3000}"
STEP_SECONDS="${STEP_SECONDS:-15}"
DRAIN_MAX="${DRAIN_MAX:-15}"
PERF_RATE="${PERF_RATE:-}"   # profile both servers with perf during the step at this rate
PERF_ARGS="${PERF_ARGS:--e cpu-clock -F 499}" # perf record's options (e.g. add --call-graph dwarf for call chains)
CAPTURE_RATE="${CAPTURE_RATE:-}" # capture the server's SIP port at this rate: PUBLISH→NOTIFY on the wire (tcpdump)
SIPP_BUFFER="${SIPP_BUFFER:-4194304}" # sipp's socket buffers (its default, 64 KiB, drops NOTIFY bursts)
KAMAILIO_CHILDREN="${KAMAILIO_CHILDREN:-2}" # the best of 2, 4 and 8 in a trial on 2 cores
KAMAILIO_SHM_MB="${KAMAILIO_SHM_MB:-512}"
KAMAILIO_MEMORY="${KAMAILIO_MEMORY:-tlsf}" # memory manager (-x/-X): tlsf; Debian's default qm spent 36 % in qm_malloc
BASE_PORT="${BASE_PORT:-25000}"
SERVERS="${SERVERS:-presenced kamailio}"
OUT="${OUT:-$HERE/RESULTS.md}"
JSONL="${JSONL:-$(dirname "$OUT")/results.jsonl}" # the raw measurements RESULTS.md is made from
RUN_DIR="${RUN_DIR:-$(mktemp -d /tmp/sipbench.XXXXXX)}"
PASSWORD="bench-secret"
DOMAIN="localhost"

PRESENCED_SIP=$((BASE_PORT + 60))
PRESENCED_XMPP=$((BASE_PORT + 222))
KAMAILIO_SIP=$((BASE_PORT + 70))
WATCH_PORT=$((BASE_PORT + 101))
PUB_PORT=$((BASE_PORT + 102))
WATCH_CP=$((BASE_PORT + 201))
PUB_CP=$((BASE_PORT + 202))

SUBS=$((PRESENTITIES * FANOUT))
if (( SUBS % WATCHER_USERS != 0 )); then
    echo "PRESENTITIES*FANOUT ($SUBS) must be a multiple of WATCHER_USERS ($WATCHER_USERS)" >&2
    exit 2
fi
PER_WATCHER=$((SUBS / WATCHER_USERS))
TICK=$(getconf CLK_TCK)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# -- processes we started: stopped on every exit ---------------------------------------------
PIDS=()
stop_pid() { # pid [grace seconds]
    local pid="$1" grace="${2:-10}" i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid" 5; done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- install and build -----------------------------------------------------------------------
need=()
PKGS=(kamailio kamailio-presence-modules kamailio-sqlite-modules sip-tester sqlite3)
[[ -n "$CAPTURE_RATE" ]] && PKGS+=(tcpdump)
for pkg in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian package may have started its own service on 0.0.0.0:5060; ours uses other ports, so it
# is left as it is (it is not ours to stop).

if [[ -z "${PRESENCED_BIN:-}" ]]; then
    log "building presenced (release)"
    (cd "$REPO" && cargo build --release --quiet --bin presenced)
    PRESENCED_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/presenced"
fi
[[ -x "$PRESENCED_BIN" ]] || { echo "no presenced binary at $PRESENCED_BIN" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p "$RUN_DIR/steps"
log "run directory $RUN_DIR"

# -- users and sipp injection files ----------------------------------------------------------
{
    echo SEQUENTIAL
    for ((p = 0; p < PRESENTITIES; p++)); do
        echo "pres$p;[authentication username=pres$p password=$PASSWORD]"
    done
} > "$RUN_DIR/publishers.csv"
{
    echo SEQUENTIAL
    for ((w = 0; w < WATCHER_USERS; w++)); do
        for ((k = 0; k < PER_WATCHER; k++)); do
            p=$(((w * PER_WATCHER + k) % PRESENTITIES))
            echo "watch$w;[authentication username=watch$w password=$PASSWORD];pres$p"
        done
    done
} > "$RUN_DIR/watchers.csv"
users() {
    for ((p = 0; p < PRESENTITIES; p++)); do echo "pres$p"; done
    for ((w = 0; w < WATCHER_USERS; w++)); do echo "watch$w"; done
}

# -- measurements from /proc -----------------------------------------------------------------
declare -A SPID SPORT WPID WPORT WCP WLOG
SPORT[presenced]=$PRESENCED_SIP
SPORT[kamailio]=$KAMAILIO_SIP
WPORT[presenced]=$WATCH_PORT
WPORT[kamailio]=$((WATCH_PORT + 2))
WCP[presenced]=$WATCH_CP
WCP[kamailio]=$((WATCH_CP + 2))
server_pids() { # a server's main pid and its children (Kamailio forks its workers)
    echo "${SPID[$1]}"
    pgrep -P "${SPID[$1]}" 2>/dev/null || true
}
cpu_ticks() { # utime+stime of the given pids (all threads), in clock ticks
    local total=0 pid f
    for pid in "$@"; do
        f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + ${f% *} + ${f#* }))
    done
    echo "$total"
}
pss_kib() { # proportional set size summed over the given pids
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
now() { date +%s.%N; }
machine_ticks() { # busy ticks of the whole machine (every process, ours or not)
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
udp_drops() { # datagrams dropped so far at a server's, its watchers' and the publishers' sockets
    local port
    for port in "${SPORT[$1]}" "${WPORT[$1]}" "$PUB_PORT"; do
        awk -v p="$(printf ':%04X' "$port")" '$2 ~ p"$" && $2 ~ /^0100007F/ {d += $NF} END {print d + 0}' \
            /proc/net/udp
    done | paste -sd' '
}
drain() { # waits until the watcher log has had no new NOTIFY for 1 s (at most DRAIN_MAX s)
    local logf="$1" last=-1 cur i
    for ((i = 0; i < DRAIN_MAX * 4; i++)); do
        cur=$(python3 "$HERE/sipbench.py" count-notify "$logf")
        if ((cur == last)); then
            sleep 0.75 # with the 0.25 s below: quiet for 1 s
            cur=$(python3 "$HERE/sipbench.py" count-notify "$logf")
            ((cur == last)) && return 0
        fi
        last=$cur
        sleep 0.25
    done
}

# -- the servers -----------------------------------------------------------------------------
start_presenced() {
    local dir="$RUN_DIR/presenced"
    mkdir -p "$dir/data"
    cat > "$dir/presenced.toml" <<EOF
domain = "$DOMAIN"
data_dir = "$dir/data"

[xmpp]
c2s_bind = "127.0.0.1:$PRESENCED_XMPP"
c2s_tls_bind = "off"

[sip]
bind = "127.0.0.1:$PRESENCED_SIP"
tls_bind = "off"

[http]
bind = "127.0.0.1:$((PRESENCED_SIP + 1))"

# No federation in the benchmark (and nothing on all interfaces).
[s2s]
bind = "off"

# sipp multiplexes every simulated phone over one source address, which the per-address rate limit (256 KiB/s by
# default, meant for one phone or one NAT) would throttle; Kamailio runs without pike here too.
[limits]
sip_rate = 0
max_connections_per_ip = 0
EOF
    log "presenced: adding $((PRESENTITIES + WATCHER_USERS)) users"
    local u
    for u in $(users); do
        printf '%s\n' "$PASSWORD" | "$PRESENCED_BIN" --config "$dir/presenced.toml" user add \
            "$u@$DOMAIN" --password-stdin > /dev/null
    done
    "$PRESENCED_BIN" --config "$dir/presenced.toml" serve > "$dir/server.log" 2>&1 &
    SPID[presenced]=$!
    PIDS+=("$!")
}

start_kamailio() {
    local dir="$RUN_DIR/kamailio" f
    mkdir -p "$dir"
    for f in standard auth_db presence; do
        sqlite3 "$dir/kamailio.sqlite" < "/usr/share/kamailio/db_sqlite/$f-create.sql"
    done
    log "kamailio: adding $((PRESENTITIES + WATCHER_USERS)) users"
    {
        echo "BEGIN;"
        for u in $(users); do
            echo "INSERT INTO subscriber (username, domain, password) VALUES ('$u', '$DOMAIN', '$PASSWORD');"
        done
        echo "COMMIT;"
    } | sqlite3 "$dir/kamailio.sqlite"
    sed -e "s|@PORT@|$KAMAILIO_SIP|g" -e "s|@DB@|$dir/kamailio.sqlite|g" \
        -e "s|@CHILDREN@|$KAMAILIO_CHILDREN|g" -e "s|@RUNDIR@|$dir|g" \
        "$HERE/kamailio.cfg.in" > "$dir/kamailio.cfg"
    kamailio -c -f "$dir/kamailio.cfg" > "$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
    # -DD: no daemon, so $! is the main process; its workers are its children.
    kamailio -DD -E -f "$dir/kamailio.cfg" -m "$KAMAILIO_SHM_MB" -M 32 -x "$KAMAILIO_MEMORY" -X "$KAMAILIO_MEMORY" -Y "$dir" -w "$dir" \
        > "$dir/server.log" 2>&1 &
    SPID[kamailio]=$!
    PIDS+=("$!")
}

# -- a server and its watchers ------------------------------------------------------------------
setup_server() {
    local srv="$1" dir="$RUN_DIR/$1" i n=0 wlog=""
    log "== $srv"
    "start_$srv"
    python3 "$HERE/sipbench.py" options "${SPORT[$srv]}" 30
    mkdir -p "$dir/watch"
    # The watchers: one sipp, one call per subscription dialog, kept until we stop it.
    (cd "$dir/watch" && exec sipp "127.0.0.1:${SPORT[$srv]}" -sf "$HERE/scenarios/watcher.xml" \
        -inf "$RUN_DIR/watchers.csv" -m "$SUBS" -l "$SUBS" -r 500 -rp 1000 -i 127.0.0.1 \
        -p "${WPORT[$srv]}" -cp "${WCP[$srv]}" -key domain "$DOMAIN" -buff_size "$SIPP_BUFFER" \
        -nd -nostdin -trace_logs -trace_err > stdout.txt 2>&1) &
    WPID[$srv]=$!
    PIDS+=("$!")
    for ((i = 0; i < 600; i++)); do
        [[ -n "$wlog" ]] || wlog=$(ls "$dir"/watch/watcher_*_logs.log 2>/dev/null | head -1 || true)
        n=$(python3 "$HERE/sipbench.py" count-notify "${wlog:-/nonexistent}")
        ((n >= SUBS)) && break
        sleep 0.1
    done
    WLOG[$srv]=$wlog
    log "$srv: $n of $SUBS subscriptions have their first NOTIFY"
    ((n >= SUBS)) || log "$srv: not every subscription got its NOTIFY; going on"
}

# -- one load step against one server -----------------------------------------------------------
run_step() { # server label(warmup:RATE | step:RATE | step:RATE:PASS)
    local srv="$1" label="$2" rate secs pause pub_dir pub_pid t0 t1 c0 c1 w0 w1 m0 m1 meta failed d0 d1
    local dir="$RUN_DIR/$srv" wlog="${WLOG[$srv]}"
    rate=${label#*:}; rate=${rate%%:*}
    secs=$STEP_SECONDS
    [[ $label == warmup:* ]] && secs=3
    pause=$((PRESENTITIES * 1000 / rate))
    pub_dir="$dir/pub-${label//:/-}"
    mkdir -p "$pub_dir"
    d0=$(udp_drops "$srv")
    local cap_pid="" pcap="$RUN_DIR/$srv-$rate.pcap"
    if [[ -n "$CAPTURE_RATE" && "$rate" == "$CAPTURE_RATE" && $label != warmup:* ]]; then
        # Everything to and from the server's SIP port while the step runs, to split the server's part of
        # PUBLISH→NOTIFY from the load tools' (sipbench.py wire).
        tcpdump -i lo -s 0 -B 131072 -w "$pcap" "udp port ${SPORT[$srv]}" > "$pcap.log" 2>&1 &
        cap_pid=$!
        PIDS+=("$cap_pid")
        sleep 1
    fi
    (cd "$pub_dir" && exec sipp "127.0.0.1:${SPORT[$srv]}" \
        -sf "$HERE/scenarios/publisher.xml" -inf "$RUN_DIR/publishers.csv" \
        -m "$PRESENTITIES" -l "$PRESENTITIES" -r "$PRESENTITIES" -rp 100 -d "$pause" \
        -set deadline "$(($(date +%s) + secs))" -i 127.0.0.1 -p "$PUB_PORT" -cp "$PUB_CP" \
        -key domain "$DOMAIN" -buff_size "$SIPP_BUFFER" -nd -nostdin -trace_logs -trace_err \
        -timeout $((secs + 60)) > stdout.txt 2>&1) &
    pub_pid=$!
    PIDS+=("$pub_pid")
    if [[ $label != warmup:* ]]; then
        # CPU is sampled over the steady middle of the step: from 1 s in to 1 s before its end.
        sleep 1
        # shellcheck disable=SC2046
        c0=$(cpu_ticks $(server_pids "$srv")); w0=$(cpu_ticks "${WPID[$srv]}" "$pub_pid"); m0=$(machine_ticks); t0=$(now)
        if [[ -n "$PERF_RATE" && "$rate" == "$PERF_RATE" ]] && command -v perf > /dev/null; then
            # A CPU profile of the server over the same window (PERF_RATE=N to ask for it).
            # shellcheck disable=SC2046
            # shellcheck disable=SC2086
            perf record -q $PERF_ARGS -o "$RUN_DIR/$srv-$rate.perf.data" \
                -p "$(server_pids "$srv" | paste -sd,)" -- sleep $((secs - 2)) > /dev/null 2>&1 &
            PIDS+=("$!")
        fi
        sleep $((secs - 2))
        # shellcheck disable=SC2046
        c1=$(cpu_ticks $(server_pids "$srv")); w1=$(cpu_ticks "${WPID[$srv]}" "$pub_pid"); m1=$(machine_ticks); t1=$(now)
    fi
    wait "$pub_pid" || true
    unset 'PIDS[-1]'
    drain "$wlog"
    d1=$(udp_drops "$srv")
    if [[ -n "$cap_pid" ]]; then
        kill -INT "$cap_pid"
        wait "$cap_pid" || true
    fi
    [[ $label == warmup:* ]] && { log "$srv: warm-up done"; return 0; }
    failed=$(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); print $3}' "$pub_dir/stdout.txt" | tail -1)
    # shellcheck disable=SC2046
    meta=$(python3 - "$srv" "$rate" "$t0" "$t1" "$c0" "$c1" "$w0" "$w1" "$m0" "$m1" "$TICK" \
        "${failed:-0}" "$(pss_kib $(server_pids "$srv"))" "$d0" "$d1" "$label" <<'PY'
import json, sys
srv, rate, t0, t1, c0, c1, w0, w1, m0, m1, tick, failed, pss, d0, d1, label = sys.argv[1:]
wall = float(t1) - float(t0)
tick = int(tick)
server = (int(c1) - int(c0)) / tick
sipp = (int(w1) - int(w0)) / tick
busy = (int(m1) - int(m0)) / tick
d0 = [int(x) for x in d0.split()]
d1 = [int(x) for x in d1.split()]
print(json.dumps({
    "server": srv, "offered": int(rate), "label": label, "cpu_window_s": round(wall, 2),
    "server_cpu_pct": 100.0 * server / wall,
    "sipp_cpu_pct": 100.0 * sipp / wall,
    "others_cpu_pct": max(0.0, 100.0 * (busy - server - sipp) / wall),
    "failed_calls": int(failed or 0), "server_pss_mib": int(pss) / 1024.0,
    "udp_drops_server": d1[0] - d0[0], "udp_drops_sipp": (d1[1] - d0[1]) + (d1[2] - d0[2]),
}))
PY
)
    local out="$RUN_DIR/steps/$(printf '%06d' "$rate")-${label//:/-}-$srv.json"
    python3 "$HERE/sipbench.py" step "$out" "$(ls "$pub_dir"/publisher_*_logs.log)" "$wlog" "$FANOUT" "$meta"
    if [[ -n "$cap_pid" ]]; then
        python3 "$HERE/sipbench.py" wire "$out" "$pcap" "${SPORT[$srv]}" \
            "$(awk '/dropped by kernel/ {print $1}' "$pcap.log")"
        # A capture that matched no NOTIFY leaves the figures null: said so rather than failing the run.
        python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); f=lambda k: "–" if s.get(k) is None else "%.2f" % s[k]; print("  %s on the wire: server PUBLISH->NOTIFY p50 %s p99 %s ms, publisher lag p99 %s ms, %s NOTIFYs, capture drops %s" % (s["server"], f("wire_server_notify_p50_ms"), f("wire_server_notify_p99_ms"), f("wire_publisher_lag_p99_ms"), s.get("wire_notifies"), s.get("wire_capture_drops")))' "$out" >&2
        [[ -n "${KEEP_PCAP:-}" ]] || rm -f "$pcap"
    fi
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("  {server} offered {offered}: {publish_per_s:.0f} PUBLISH/s, {notify_per_s:.0f} NOTIFY/s, delivered {delivered_pct:.1f} %, failed {failed_calls}, cpu {server_cpu_pct:.0f} %, sipp {sipp_cpu_pct:.0f} %, others {others_cpu_pct:.0f} %".format(**s))' \
        "$out" >&2
}

# Both servers run side by side (idle while the other is loaded), and the steps alternate between
# them, so that whatever else the machine is doing falls on both alike.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
read -r -a SRV <<< "$SERVERS"
for srv in "${SRV[@]}"; do setup_server "$srv"; done
for srv in "${SRV[@]}"; do run_step "$srv" "warmup:100"; done
for rate in $RATES; do
    order=("${SRV[@]}")
    # ABBA: the second server goes first at every other rate.
    if (( ${#SRV[@]} == 2 )) && [[ $(( $(wc -w <<< "${RATES%%"$rate"*}") % 2 )) == 1 ]]; then
        order=("${SRV[1]}" "${SRV[0]}")
    fi
    for srv in "${order[@]}"; do run_step "$srv" "step:$rate"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cleanup

# -- the report --------------------------------------------------------------------------------
python3 - "$RUN_DIR/info.json" <<PY
import json, subprocess, sys
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:
        return f"? ({e})"
mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", \$2/1048576}' /proc/meminfo")
info = {
    "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    "machine": f"{sh('nproc')} cores, {mem}",
    "cpu": sh("awk -F': ' '/model name/ {print \$2; exit}' /proc/cpuinfo"),
    "kernel": sh("uname -sr"),
    "load_before": "$LOAD_BEFORE at the start, $LOAD_AFTER at the end (1/5/15-minute load averages; the machine is shared with other work, see the others' CPU column)",
    "presenced": sh("cd '$REPO' && echo \"git \$(git rev-parse --short HEAD)\$(git diff --quiet HEAD -- . ':!benches' || echo ' (modified)')\"") + ", release build",
    "kamailio": sh("kamailio -v | head -1") + " (Debian " + sh("dpkg-query -W -f='\${Version}' kamailio") + f"), $KAMAILIO_CHILDREN UDP workers, -m $KAMAILIO_SHM_MB MB shared memory, memory manager $KAMAILIO_MEMORY",
    "sipp": sh("sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1") + " (Debian " + sh("dpkg-query -W -f='\${Version}' sip-tester") + ")",
    "servers": "$SERVERS".split(),
    "workload": (
        "All on 127.0.0.1 over UDP. $PRESENTITIES presentities (pres0…) and $WATCHER_USERS watcher users "
        "(watch0…), the same accounts and password on both servers. Each watcher user keeps $PER_WATCHER "
        "subscription dialogs (Event: presence, Expires: 3600) to distinct presentities: $SUBS dialogs, "
        "a fan-out of $FANOUT watchers per presentity. Every SUBSCRIBE and PUBLISH is authenticated with "
        "HTTP digest (MD5, qop=auth, 401 challenge then credentials; the nonce is then reused). "
        "Each step: $PRESENTITIES publisher calls, one per presentity, publish an initial document, then "
        "modify it (SIP-If-Match, new PIDF body) once every PRESENTITIES/rate seconds for $STEP_SECONDS s, "
        "then remove it (Expires: 0). Each modification is basic=open with a <note> holding its send "
        "time, so every PUBLISH changes the presentity's presence and should yield one NOTIFY per "
        "watcher; the watcher sipp answers every NOTIFY 200 and logs it with its arrival time "
        "(PUBLISH→NOTIFY latency = arrival − send time in the note). The publishers are closed-loop "
        "(the next PUBLISH of a presentity waits for the previous 200 plus the pause), so a server that "
        "cannot keep up shows as fewer PUBLISH/s than offered. Both servers run side by side, each with "
        "its own subscribed watchers (idle while the other is loaded); after a 3 s warm-up at 100 "
        "PUBLISH/s each, the steps alternate between the servers (ABBA order over the rates) so that "
        "other work on the machine falls on both alike. sipp's socket buffers are raised to "
        "$SIPP_BUFFER bytes (its 64 KiB default drops NOTIFY bursts)."
    ),
    "notes": (
        "Equivalent settings: both servers authenticate every PUBLISH and SUBSCRIBE with digest against "
        "the same users (presenced: its own account store; Kamailio: auth_db on an SQLite subscriber "
        "table, www_authenticate + a check that the authenticated user is the From user, as presenced "
        "does). Presence state lives in memory on both (Kamailio presence subs_db_mode 0, publ_cache 2; "
        "the presence tables exist but are not used). Every watcher is authorized on both (presenced's "
        "default automatic authorization; Kamailio presence_xml force_active 1). presenced is "
        "authenticated endpoint PUBLISH, not the trusted-peer line-state path. Logging: presenced "
        "default, Kamailio debug=1. Kamailio's memory is the sum of PSS over its processes (its shared "
        "memory segment is counted once); presenced is one process. CPU figures are % of one core "
        "(200 % = both cores); the load tool (two sipp processes) runs on the same two cores as the "
        "server, so at high rates they compete. The machine is shared: the others' CPU column shows how "
        "much of it other work took during each step, and it varies from step to step, so a single "
        "step's PUBLISH/s is noisy; CPU ms per PUBLISH is the steadier figure for comparing the two "
        "servers' efficiency."
    ),
}
json.dump(info, open(sys.argv[1], "w"), indent=1)
PY
# The raw measurements are kept next to the table, which is made from them alone: rerunning
# results_table.py on the committed results.jsonl reproduces RESULTS.md.
python3 "$HERE/sipbench.py" jsonl "$RUN_DIR" "$JSONL"
python3 "$HERE/results_table.py" "$JSONL" > "$OUT"
log "wrote $OUT from $JSONL (sipp logs in $RUN_DIR)"
