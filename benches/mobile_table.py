"""Turns benches/mobile.sh's JSON lines (one per xmpp_load run) into benches/MOBILE.md on stdout.

Usage: python3 mobile_table.py mobile.jsonl  (versions and sizes come from the environment mobile.sh sets)
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


def main() -> None:
    runs: dict[tuple[str, str], dict] = {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                runs[(r["server"], r["workload"])] = r

    def get(s: str, w: str, k: str):
        v = runs.get((s, w), {}).get(k)
        return v if isinstance(v, (int, float)) else None

    def fmt(v, spec: str = ".2f", none: str = "–") -> str:
        return none if v is None else format(v, spec)

    def failures(s: str, w: str) -> str:
        r = runs.get((s, w))
        if r is None:
            return "not run"
        if "error" in r:
            return r["error"]
        n = int(r.get("failed") or 0) + int(r.get("login_errors") or 0)
        first = r.get("phase_first_error") or r.get("first_error") or ""
        return str(n) + (f" ({first[:120]})" if n and first else "")

    servers = [s for s in SERVERS if any(k[0] == s for k in runs)]
    out = []
    p = out.append
    p("# Mobile: stream resumption and archive catch-up (issue 14)")
    p("")
    p(
        f"Written by `benches/mobile.sh` on {datetime.date.today().isoformat()} "
        f"(whole run {env('ELAPSED')} s); raw JSON lines in [mobile.jsonl](mobile.jsonl)."
    )
    p("")
    p(f"Machine: {machine()}.")
    p("")
    p(
        f"Versions: presenced {env('PRESENCED_REV')} (release build), Prosody {env('PROSODY_VERSION')} "
        f"(Debian), ejabberd {env('EJABBERD_VERSION')} (Debian, Erlang {env('ERLANG_VERSION')})."
    )
    p("")
    p(
        f"Sizes: resume/relogin {env('RESUME_USERS')} clients away while {env('RESUME_MSGS')} messages each "
        f"arrive; mam {env('MAM_USERS')} clients (ejabberd {env('EJABBERD_MAM_USERS')}) with {env('MAM_MSGS')} archived messages each, pages of "
        f"`<max>{env('MAM_PAGE')}</max>`, {env('MAM_ROUNDS')} catch-ups per client one after the other; every user has {env('ROSTER')} mutual contacts."
    )
    p("")
    p("| server | resume: server CPU ms / resume | resume wall s | resume failures | relogin: server CPU ms / re-login | relogin wall s | relogin failures | catch-up: server CPU ms / 1,000 messages | catch-up clients × rounds | catch-up wall s (all rounds) | messages fetched | pages (largest) | catch-up failures |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in servers:
        p(
            f"| {NAMES[s]} "
            f"| {fmt(get(s, 'resume', 'server_cpu_ms_per_reconnect'))} "
            f"| {fmt(get(s, 'resume', 'phase_s'))} "
            f"| {failures(s, 'resume')} "
            f"| {fmt(get(s, 'relogin', 'server_cpu_ms_per_reconnect'))} "
            f"| {fmt(get(s, 'relogin', 'phase_s'))} "
            f"| {failures(s, 'relogin')} "
            f"| {fmt(get(s, 'mam', 'server_cpu_ms_per_1000'), '.1f')} "
            f"| {fmt(get(s, 'mam', 'catching_up'), '.0f')} × {fmt(get(s, 'mam', 'rounds'), '.0f')} "
            f"| {fmt(get(s, 'mam', 'phase_s'))} "
            f"| {fmt(get(s, 'mam', 'received'), '.0f')} "
            f"| {fmt(get(s, 'mam', 'pages'), '.0f')} ({fmt(get(s, 'mam', 'largest_page'), '.0f')}) "
            f"| {failures(s, 'mam')} |"
        )
    p("")
    # Ratios against the better (lower) of the two anchors, the goal being 5x.
    lines = []
    for w, k, what in [
        ("resume", "server_cpu_ms_per_reconnect", "resumption"),
        ("mam", "server_cpu_ms_per_1000", "catch-up of 1,000 messages"),
    ]:
        ours = get("presenced", w, k)
        anchors = [(get(s, w, k), NAMES[s]) for s in ("prosody", "ejabberd")]
        anchors = [(v, n) for v, n in anchors if v is not None and v > 0]
        if ours and anchors:
            best, name = min(anchors)
            lines.append(
                f"- {what}: presenced {ours:.2f} ms vs {best:.2f} ms for {name} (the better anchor): "
                f"{best / ours:.1f}× cheaper in server CPU (goal: 5×)."
            )
    if lines:
        p("Ratios (server CPU of the better anchor ÷ presenced's):")
        p("")
        out.extend(lines)
        p("")
    p("What is measured:")
    p("")
    p(
        "- **resume**: every client logged in (STARTTLS, SCRAM-SHA-1, bind, roster, initial presence), enabled "
        "stream management with `<enable resume='true'/>`, read until its stream was quiet for 0.5 s (counting "
        "stanzas for `h`), then closed its socket without `</stream>`. One second later a partner client sent "
        "each of them the messages (to the bare JID) and waited for a roster round trip; one second after that "
        "the clock started: every client connected again (TCP, STARTTLS, TLS handshake without session "
        "resumption, SCRAM-SHA-1) and sent `<resume previd h/>` instead of binding, and read until all its "
        "messages were in. Server CPU (utime+stime of the server process, 10 ms ticks) from just before the "
        "reconnects to the last client done, divided by the clients that got all their messages. TLS and SASL "
        "are in the figure: they are what a reconnect costs."
    )
    p(
        "- **relogin**: the same without `<enable/>`: each client logs in again (bind, roster get, initial "
        "presence to its contacts, probes) and gets its messages from offline storage."
    )
    p(
        f"- **mam** (run first on its server, so each archive holds exactly these messages): the second half of the "
        f"users each sent {env('MAM_MSGS')} chat messages to one of the first half (online, reading them), which the "
        "server archived (for both parties). After a 2 s pause the clock started and every catching-up client paged "
        "through its archive at once: `<query xmlns='urn:xmpp:mam:2'>` with "
        f"`<set><max>{env('MAM_PAGE')}</max></set>`, then `<after>` the page's `<last/>`, until `complete='true'`, "
        f"an empty page or {env('MAM_MSGS')} results; {env('MAM_ROUNDS')} times per client, one after the other. "
        "Server CPU over the whole catch-up phase, per 1,000 messages fetched."
    )
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
