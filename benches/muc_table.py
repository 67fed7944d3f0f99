"""Turns benches/muc.sh's JSON lines (one per xmpp_load run) into benches/MUC.md on stdout.

Usage: python3 muc_table.py muc.jsonl  (versions and sizes come from the environment muc.sh sets)
"""

from __future__ import annotations

import datetime
import json
import os
import sys

from results_table import machine

SERVERS = ["presenced", "prosody", "ejabberd"]
NAMES = {"presenced": "presenced", "prosody": "Prosody", "ejabberd": "ejabberd"}


def env(k: str, default: str = "?") -> str:
    return os.environ.get(k, default)


def rates(k: str) -> str:
    return " and ".join(env(k).split())


def num(r: dict, k: str):
    v = r.get(k)
    return v if isinstance(v, (int, float)) else None


def fmt(v, spec: str = ",.0f", none: str = "–") -> str:
    return none if v is None else format(v, spec)


def failures(r: dict) -> str:
    if "error" in r:
        return r["error"]
    n = int(r.get("failed") or 0) + int(r.get("login_errors") or 0)
    first = r.get("phase_first_error") or r.get("first_error") or ""
    return str(n) + (f" ({first[:120]})" if n and first else "")


def main() -> None:
    runs: dict[tuple[str, int, float], dict] = {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                runs[(r["server"], int(r.get("occupants") or 0), float(r.get("rate_per_room") or 0))] = r
    cases = sorted({(k[1], k[2]) for k in runs})
    servers = [s for s in SERVERS if any(k[0] == s for k in runs)]

    out = []
    p = out.append
    p("# Group chat (XEP-0045): presenced vs Prosody vs ejabberd (issue 15)")
    p("")
    p(
        f"Written by `benches/muc.sh` on {datetime.date.today().isoformat()} "
        f"(whole run {env('ELAPSED')} s); raw JSON lines in [muc.jsonl](muc.jsonl). Method and settings: "
        "\"Group chat\" in [README.md](README.md)."
    )
    p("")
    p(f"Machine: {machine()}. The load tool runs on the same cores as the server.")
    p("")
    p(
        f"Versions: presenced {env('PRESENCED_REV')} (release build), Prosody {env('PROSODY_VERSION')} "
        f"(Debian), ejabberd {env('EJABBERD_VERSION')} (Debian, Erlang {env('ERLANG_VERSION')})."
    )
    p("")
    p(
        f"Sizes: {env('ROOMS_50')} rooms of 50 occupants at {rates('RATES_50')} messages/s per room; "
        f"{env('ROOMS_500')} room(s) of 500 at {rates('RATES_500')} messages/s per room; {env('MUC_SECS')} s of "
        "messages each; every run on a freshly started server. A delivery is one occupant receiving one "
        "groupchat message (the sender's own reflection included), so a room of O at R messages/s offers "
        "R × O deliveries/s."
    )
    p("")
    p(
        "| server | occupants per room | rooms | messages/s per room | offered deliveries/s | deliveries/s | received / expected | p50 ms "
        "| p99 ms | server CPU µs per delivery | server CPU, % of one core | memory per idle occupant, KiB "
        "| join time s (all in, every presence read) | failures |"
    )
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, rate_key in cases:
        for s in servers:
            r = runs.get((s, size, rate_key))
            if r is None:
                continue
            rooms, rate = num(r, "rooms"), num(r, "rate_per_room")
            if "error" in r:
                p(
                    f"| {NAMES[s]} | {size} | {fmt(rooms)} | {fmt(rate, 'g')} | "
                    f"{fmt(rooms * rate * size if rooms is not None and rate is not None else None)} "
                    f"| – | – | – | – | – | – | – | – | {failures(r)} |"
                )
                continue
            offered = rooms * rate * size if rooms is not None and rate is not None else None
            exp, got = num(r, "expected"), num(r, "received")
            pct = f"{got / exp * 100:.1f} % of {exp:,.0f}" if exp and got is not None else "–"
            cpu, phase = num(r, "phase_server_cpu_s"), num(r, "phase_s")
            share = cpu / phase * 100 if cpu is not None and phase else None
            p(
                f"| {NAMES[s]} | {size} | {fmt(rooms)} | {fmt(rate, 'g')} | {fmt(offered)} | {fmt(num(r, 'delivered_per_s'))} "
                f"| {pct} | {fmt(num(r, 'p50_ms'), '.2f')} | {fmt(num(r, 'p99_ms'), '.2f')} "
                f"| {fmt(num(r, 'server_cpu_us_per_delivery'), '.1f')} | {fmt(share)} "
                f"| {fmt(num(r, 'rss_per_occupant_kib'), '.1f')} | {fmt(num(r, 'join_s'), '.1f')} | {failures(r)} |"
            )
    p("")
    p(
        "- deliveries/s: groupchat messages received by occupants ÷ (last receipt − first send, at least the "
        "sending time); latency from the send timestamp in the body to its receipt."
    )
    p(
        "- server CPU: utime + stime of the server process from the first send until every expected delivery "
        "arrived (or 10 s after the last send), ÷ deliveries received. Where a server falls behind, that CPU also "
        "went into messages still queued at the end, so its CPU per delivery is read best at the lower rate."
    )
    p(
        "- memory per idle occupant: server RSS after every occupant joined and saw all join presences (smallest of 2 s of samples) "
        "minus RSS after the logins, before the first join (likewise), ÷ occupants."
    )
    p(
        "- failures: login errors, joins that failed or were not seen by everybody within 180 s, error stanzas "
        "and dropped connections; deliveries that did not arrive show in received / expected."
    )
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
