"""Turns benches/compare.sh's JSON lines (one per xmpp_load run) into benches/RESULTS.md on stdout.

Usage: python3 results_table.py results.jsonl  (versions and sizes come from the environment compare.sh sets)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys

SERVERS = ["presenced", "prosody", "ejabberd"]
NAMES = {"presenced": "presenced", "prosody": "Prosody", "ejabberd": "ejabberd"}


def env(k: str, default: str = "?") -> str:
    return os.environ.get(k, default)


def machine() -> str:
    cores = os.cpu_count()
    model = "?"
    mem_kib = 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{cores} cores ({model}), {mem_kib / 1024 / 1024:.1f} GiB memory, Linux {platform.release()}; "
        f"load average at the end of the run {load:.1f} (other work shares this machine)"
    )


def fmt(v, prec=0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and prec == 0 and abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.{prec}f}"


def ratio(ours, theirs) -> str:
    if ours is None or theirs in (None, 0):
        return "–"
    r = ours / theirs
    return f"{r:.2f}" if r >= 0.1 or r == 0 else f"{r:.2g}"


def main() -> None:
    runs: dict[tuple[str, str], dict] = {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                w = r["workload"]
                if w == "chat":
                    w = f"chat@{r['offered_per_s']:.0f}"
                runs[(r["server"], w)] = r

    def get(server: str, workload: str, key: str):
        return runs.get((server, workload), {}).get(key)

    def pct(server, workload, cpu_key, wall_key):
        cpu, wall = get(server, workload, cpu_key), get(server, workload, wall_key)
        if cpu is None or not wall:
            return None
        return 100 * cpu / wall

    def per_delivery(server, workload, who):
        # µs of CPU per delivered message (presence for fan-out): the figure that does not depend on how much load
        # the tool could offer. Lines written before xmpp_load reported it are filled from the phase's CPU seconds.
        v = get(server, workload, f"{who}_cpu_us_per_delivery")
        if v is not None:
            return v
        cpu, d = get(server, workload, f"phase_{who}_cpu_s"), get(server, workload, "delivered")
        return None if cpu is None or not d else 1e6 * cpu / d

    def login_cpu_ms(server):
        # Server CPU over the storm ÷ logins that succeeded: the TLS handshake, SASL, bind, roster and presence.
        cpu, ok = get(server, "login", "login_server_cpu_s"), get(server, "login", "logins_ok")
        return None if cpu is None or not ok else 1e3 * cpu / ok

    def completeness(server, workload):
        d = get(server, workload, "delivered")
        e = get(server, workload, "expected") or get(server, workload, "sent")
        return None if d is None or not e else 100 * d / e

    rows = [
        # (label, workload, value function, precision, better)
        (f"(1) login storm: logins/s ({env('LOGIN_USERS')} clients)", "login",
         lambda s: get(s, "login", "logins_per_s"), 0, "higher"),
        ("(1) login errors", "login", lambda s: get(s, "login", "login_errors"), 0, "lower"),
        ("(1) server CPU during the storm, % of one core", "login",
         lambda s: pct(s, "login", "login_server_cpu_s", "login_s"), 0, "–"),
        ("(1) load tool CPU during the storm, % of one core", "login",
         lambda s: pct(s, "login", "login_tool_cpu_s", "login_s"), 0, "–"),
        ("(1) server CPU per login, ms", "login", login_cpu_ms, 3, "lower"),
    ]
    for n, rate in (("2", env("CHAT_RATE")), ("2b", env("CHAT_RATE2"))):
        c = f"chat@{rate}"
        rows += [
            (f"({n}) chat: messages/s delivered ({env('CHAT_USERS')} clients, {rate}/s offered, "
             f"{env('CHAT_SECS')} s)", c, lambda s, c=c: get(s, c, "delivered_per_s"), 0, "higher"),
            (f"({n}) chat: messages/s actually sent", c, lambda s, c=c: get(s, c, "sent_per_s"), 0, "–"),
            (f"({n}) chat: delivered, % of sent", c, lambda s, c=c: completeness(s, c), 1, "higher"),
            (f"({n}) chat: latency p50, ms", c, lambda s, c=c: get(s, c, "p50_ms"), 2, "lower"),
            (f"({n}) chat: latency p99, ms", c, lambda s, c=c: get(s, c, "p99_ms"), 2, "lower"),
            (f"({n}) server CPU while chatting, % of one core", c,
             lambda s, c=c: pct(s, c, "phase_server_cpu_s", "phase_s"), 0, "–"),
            (f"({n}) load tool CPU while chatting, % of one core", c,
             lambda s, c=c: pct(s, c, "phase_tool_cpu_s", "phase_s"), 0, "–"),
            (f"({n}) server CPU per delivered message, µs", c,
             lambda s, c=c: per_delivery(s, c, "server"), 1, "lower"),
            (f"({n}) load tool CPU per delivered message, µs", c,
             lambda s, c=c: per_delivery(s, c, "tool"), 1, "–"),
        ]
    rows += [
        (f"(3) fan-out: presence deliveries/s ({env('FAN_USERS')} users x {env('FAN_ROSTER')} contacts, "
         "all change at once)", "fanout", lambda s: get(s, "fanout", "delivered_per_s"), 0, "higher"),
        ("(3) fan-out: delivered, % of expected", "fanout", lambda s: completeness(s, "fanout"), 1, "higher"),
        ("(3) fan-out: latency p50, ms", "fanout", lambda s: get(s, "fanout", "p50_ms"), 1, "lower"),
        ("(3) fan-out: latency p99, ms", "fanout", lambda s: get(s, "fanout", "p99_ms"), 1, "lower"),
        ("(3) load tool CPU during the fan-out, % of one core", "fanout",
         lambda s: pct(s, "fanout", "phase_tool_cpu_s", "phase_s"), 0, "–"),
        ("(3) server CPU per presence delivered, µs", "fanout",
         lambda s: per_delivery(s, "fanout", "server"), 1, "lower"),
        ("(3) load tool CPU per presence delivered, µs", "fanout",
         lambda s: per_delivery(s, "fanout", "tool"), 1, "–"),
        (f"(4) idle: server RSS per client, KiB ({env('IDLE_USERS')} clients, RSS ÷ clients)", "idle",
         lambda s: get(s, "idle", "rss_per_client_kib"), 1, "lower"),
        ("(4) idle: RSS growth per client, KiB (RSS with clients − RSS before, ÷ clients)", "idle",
         lambda s: get(s, "idle", "rss_growth_per_client_kib"), 1, "lower"),
        ("(4) idle: server RSS with all clients, MiB", "idle",
         lambda s: (get(s, "idle", "rss_kib") or 0) / 1024 or None, 0, "lower"),
        ("(4) idle: logins/s while connecting them", "idle", lambda s: get(s, "idle", "logins_per_s"), 0, "higher"),
        ("(4) idle: login errors", "idle", lambda s: get(s, "idle", "login_errors"), 0, "lower"),
    ]

    out = []
    w = out.append
    w("# XMPP: presenced vs Prosody vs ejabberd\n")
    w(f"Written by `benches/compare.sh` on {datetime.date.today().isoformat()}; all runs took "
      f"{int(env('ELAPSED', '0')) // 60} min {int(env('ELAPSED', '0')) % 60} s. Raw data: `benches/results.jsonl` "
      "(one line per `xmpp_load run`).\n")
    w(f"- Machine: {machine()}.")
    w(f"- presenced: git {env('PRESENCED_REV')}, release build. Prosody {env('PROSODY_VERSION')} (Lua "
      f"{env('LUA_VERSION')}), ejabberd {env('EJABBERD_VERSION')} (Erlang/OTP {env('ERLANG_VERSION')}), both "
      "from Debian's packages.")
    w("- The load tool (`xmpp_load`) runs on the same two cores as the server; its own CPU is in the table.\n")
    w("| metric | presenced | Prosody | ejabberd | ours ÷ Prosody | ours ÷ ejabberd | better |")
    w("|---|---|---|---|---|---|---|")
    for label, _wl, fn, prec, better in rows:
        vals = {s: fn(s) for s in SERVERS}
        w(f"| {label} | " + " | ".join(fmt(vals[s], prec) for s in SERVERS)
          + f" | {ratio(vals['presenced'], vals['prosody'])} | {ratio(vals['presenced'], vals['ejabberd'])} "
          f"| {better} |")
    w("")

    def goal(name, ok):
        return f"- {name}: {'**met**' if ok else '**not met**'}"

    w("## Against the goals of issue 8\n")
    # "20,000 messages/s offered or the max sustainable": the better of the two offered rates, per server.
    def best_chat(s):
        v = [get(s, f"chat@{r}", "delivered_per_s") for r in (env("CHAT_RATE"), env("CHAT_RATE2"))]
        v = [x for x in v if x is not None]
        return max(v) if v else None

    p_chat, pr_chat, ej_chat = (best_chat(s) for s in SERVERS)
    p_login, pr_login, ej_login = (get(s, "login", "logins_per_s") for s in SERVERS)
    p_idle, pr_idle, ej_idle = (get(s, "idle", "rss_per_client_kib") for s in SERVERS)
    if None not in (p_chat, pr_chat, ej_chat):
        w(goal(f"messages/s ≥ 2× ejabberd and ≥ 3× Prosody (now {p_chat / ej_chat:.2f}× and "
               f"{p_chat / pr_chat:.2f}×)", p_chat >= 2 * ej_chat and p_chat >= 3 * pr_chat))
    if None not in (p_login, pr_login, ej_login):
        w(goal(f"login storm ≥ 2× both (now {p_login / pr_login:.2f}× Prosody, {p_login / ej_login:.2f}× "
               "ejabberd)", p_login >= 2 * pr_login and p_login >= 2 * ej_login))
    if None not in (p_idle, pr_idle, ej_idle):
        w(goal(f"idle memory per session ≤ ½ of the smaller (now {p_idle:.1f} KiB vs "
               f"{min(pr_idle, ej_idle):.1f} KiB: {p_idle / min(pr_idle, ej_idle):.2f}×)",
               p_idle <= 0.5 * min(pr_idle, ej_idle)))
    w("")
    w("## Against the goals of issue 17\n")
    hi = f"chat@{env('CHAT_RATE')}"
    p_cpu, pr_cpu, ej_cpu = (per_delivery(s, hi, "server") for s in SERVERS)
    if None not in (p_cpu, pr_cpu, ej_cpu):
        w(goal(f"server CPU per message ≤ ½ of ejabberd's and ≤ ⅓ of Prosody's at {env('CHAT_RATE')}/s offered "
               f"(now {p_cpu / ej_cpu:.2f}× and {p_cpu / pr_cpu:.2f}×)", p_cpu <= 0.5 * ej_cpu and p_cpu <= pr_cpu / 3))
    p_lcpu = login_cpu_ms("presenced")
    if p_lcpu is not None:
        w(goal(f"server CPU per TLS login ≤ 0.4 ms (now {p_lcpu:.3f} ms)", p_lcpu <= 0.4))
    p_fan = get("presenced", "fanout", "delivered_per_s")
    if p_fan is not None:
        w(goal(f"presence fan-out ≥ 1,000,000 deliveries/s (now {p_fan:,.0f}/s)", p_fan >= 1_000_000))
    p_growth = get("presenced", "idle", "rss_growth_per_client_kib")
    if p_growth is not None:
        w(goal(f"RSS growth per idle TLS client ≤ 10 KiB (now {p_growth:.1f} KiB)", p_growth <= 10))
    w("")
    w("## How these were measured\n")
    w("- Every workload ran against a freshly started server; the same accounts (u0..u{N-1}@localhost) and rosters "
      f"(u0..u{int(env('FAN_USERS', '1')) - 1} with {env('FAN_ROSTER')} mutual contacts each, ring neighbours) on all "
      "three; STARTTLS with one self-signed ECDSA P-256 certificate, SASL SCRAM-SHA-1 against stored verifiers "
      "(4096 iterations), bind, roster get, initial presence; no archiving; logging at warning. Prosody's "
      "`limits.c2s.rate` raised to 1000 MB/s; listen backlogs 1024 everywhere. Details: `benches/README.md`.")
    w("- The client caches its SCRAM keys (RFC 5802 §5.1), so logins/s is the server's cost, not the tool's PBKDF2.")
    w("- TLS 1.3 cipher suite: presenced picks AES-128-GCM (its own preference); Prosody and ejabberd keep "
      "OpenSSL's default order, which, like the client's, puts AES-256-GCM first.")
    w("- Server CPU per delivered message (µs) is the server's CPU time over the measured phase ÷ messages "
      "delivered: unlike delivered/s it does not depend on how much load the tool, on the same cores, could offer.")
    w("- Latencies include the tool's own queueing: both run on the same two cores, so when the machine is "
      "saturated (server + tool CPU ≈ 200 %) the figures are lower bounds for the server alone.")
    w("- Chat users u0..u499 have the 200-contact rosters too, so the chat and idle logins include their "
      "presence broadcasts and probes; the login storm as well.")
    w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
