#!/usr/bin/env python3
"""Turns benches/sip/compare.sh's raw measurements (benches/sip/results.jsonl) into
benches/sip/RESULTS.md on stdout (standard library only).

Usage: python3 results_table.py results.jsonl > RESULTS.md

The JSON lines are one {"kind": "info", ...} record (date, machine, versions, workload and notes
text) and one {"kind": "step", ...} record per load step and server, as sipbench.py's step()
measured it. Everything in RESULTS.md comes from them, so the table can be checked against, and
regenerated from, the committed data.
"""

from __future__ import annotations

import json
import sys


def load(path: str) -> tuple[dict, list[dict]]:
    info, steps = None, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            kind = r.pop("kind")
            if kind == "info":
                info = r
            elif kind == "step":
                steps.append(r)
    if info is None:
        sys.exit(f"{path}: no info record")
    steps.sort(key=lambda s: (s["offered"], s["label"], s["server"]))
    return info, steps


def cpu_per_publish(s: dict) -> float | None:
    """Server CPU milliseconds per PUBLISH handled (with its NOTIFYs): robust to a busy machine."""
    if not s.get("publish_per_s") or s.get("server_cpu_pct") is None:
        return None
    return 10.0 * s["server_cpu_pct"] / s["publish_per_s"]


def fmt(v, nd=0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def report(info: dict, steps: list[dict]) -> str:
    servers = info["servers"]
    by = {(s["server"], s["offered"]): s for s in steps}
    rates = sorted({s["offered"] for s in steps})
    L = []
    L.append("# SIP presence load: presenced vs Kamailio\n")
    L.append(f"Written by `benches/sip/compare.sh` on {info['date']}. "
             "Measured, not asserted: rerun the script to reproduce.\n")
    L.append("## Machine and versions\n")
    for k in ("machine", "cpu", "kernel", "load_before", "presenced", "kamailio", "sipp"):
        L.append(f"- {k.replace('_', ' ')}: {info[k]}")
    L.append("")
    L.append("## Workload\n")
    L.append(info["workload"] + "\n")
    L.append("## Results per offered rate\n")
    L.append("Columns: offered PUBLISH/s; PUBLISH/s answered 200 (over the step window); "
             "PUBLISH response time p50/p99; NOTIFYs/s delivered to the watchers within the window; "
             "share of the expected NOTIFYs (answered PUBLISHes × fan-out) delivered by the end of the "
             "step; PUBLISH→NOTIFY latency p50/p99; failed publisher calls (a PUBLISH without its "
             "200: error response or timeout); server CPU (% of one core, all processes/threads); "
             "server memory at the end of the step (PSS summed over the server's processes); CPU of "
             "the load tool (both sipp processes, % of one core); CPU used by everything else on the "
             "machine meanwhile (other users' work: the machine is shared); UDP datagrams dropped at "
             "the server's socket / at sipp's sockets (receive buffer full). CPU is measured over the "
             "middle of the step (from 1 s after its start to 1 s before its end).\n")
    L.append("| server | offered PUBLISH/s | PUBLISH/s 200 | PUBLISH p50 / p99 ms | NOTIFY/s delivered | delivered | PUBLISH→NOTIFY p50 / p99 ms | failed calls | server CPU | server CPU ms per PUBLISH | server PSS MiB | sipp CPU | others' CPU | UDP drops server / sipp |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rates:
        for srv in servers:
            s = by.get((srv, r))
            if not s:
                continue
            L.append(
                f"| {srv} | {r:,} | {fmt(s.get('publish_per_s'))} | "
                f"{fmt(s.get('publish_p50_ms'), 2)} / {fmt(s.get('publish_p99_ms'), 2)} | "
                f"{fmt(s.get('notify_per_s'))} | {fmt(s.get('delivered_pct'), 1)} % | "
                f"{fmt(s.get('notify_p50_ms'), 2)} / {fmt(s.get('notify_p99_ms'), 2)} | "
                f"{s.get('failed_calls', '–')} | {fmt(s.get('server_cpu_pct'))} % | {fmt(cpu_per_publish(s), 2)} | "
                f"{fmt(s.get('server_pss_mib'), 1)} | {fmt(s.get('sipp_cpu_pct'))} % | "
                f"{fmt(s.get('others_cpu_pct'))} % | {fmt(s.get('udp_drops_server'))} / {fmt(s.get('udp_drops_sipp'))} |")
    L.append("")
    wired = [s for s in steps if s.get("wire_notifies")]
    if wired:
        L.append("## On the wire\n")
        L.append("A capture of the server's SIP port on loopback during the step (`CAPTURE_RATE`, tcpdump): the "
                 "time from each timed PUBLISH reaching the server to each NOTIFY for it leaving the server, "
                 "which is the server's own part of PUBLISH→NOTIFY (the column above adds both sipp's delays "
                 "in reading and sending), and how late the publisher sipp sent its PUBLISHes after the time "
                 "written in them.\n")
        L.append("| server | offered PUBLISH/s | server PUBLISH→NOTIFY p50 / p99 / max ms | publisher lag p99 ms | NOTIFYs | capture drops |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for s in wired:
            L.append(f"| {s['server']} | {s['offered']:,} | {fmt(s.get('wire_server_notify_p50_ms'), 2)} / "
                     f"{fmt(s.get('wire_server_notify_p99_ms'), 2)} / {fmt(s.get('wire_server_notify_max_ms'), 2)} | "
                     f"{fmt(s.get('wire_publisher_lag_p99_ms'), 2)} | {fmt(s.get('wire_notifies'))} | "
                     f"{fmt(s.get('wire_capture_drops'))} |")
        L.append("")
    # Summary: the best step per server that kept up (no failed calls, >= 99 % delivered).
    L.append("## Summary\n")
    L.append("Best sustained step per server: the highest PUBLISH/s among the steps with no failed "
             "publisher call and at least 99 % of the expected NOTIFYs delivered.\n")
    L.append("| server | PUBLISH/s handled | NOTIFYs/s delivered | PUBLISH p99 ms | PUBLISH→NOTIFY p99 ms | server CPU | server PSS MiB | sipp CPU |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    best = {}
    for srv in servers:
        ok = [s for s in steps if s["server"] == srv and s.get("failed_calls", 1) == 0
              and s.get("delivered_pct", 0) >= 99.0]
        if ok:
            b = max(ok, key=lambda s: s["publish_per_s"])
            best[srv] = b
            L.append(f"| {srv} | {fmt(b['publish_per_s'])} | {fmt(b['notify_per_s'])} | "
                     f"{fmt(b['publish_p99_ms'], 2)} | {fmt(b['notify_p99_ms'], 2)} | "
                     f"{fmt(b.get('server_cpu_pct'))} % | {fmt(b.get('server_pss_mib'), 1)} | "
                     f"{fmt(b.get('sipp_cpu_pct'))} % |")
        else:
            L.append(f"| {srv} | no step kept up | | | | | | |")
    if len(best) == 2:
        a, b = (best[s] for s in servers)
        L.append("")
        L.append(f"Ratio {servers[0]} ÷ {servers[1]}: PUBLISH/s {a['publish_per_s'] / b['publish_per_s']:.2f}, "
                 f"NOTIFYs/s {a['notify_per_s'] / max(b['notify_per_s'], 1e-9):.2f}, "
                 f"PUBLISH p99 {a['publish_p99_ms'] / max(b['publish_p99_ms'], 1e-9):.2f} (lower is better), "
                 f"CPU per PUBLISH {(a['server_cpu_pct'] / a['publish_per_s']) / max(b['server_cpu_pct'] / b['publish_per_s'], 1e-9):.2f} (lower is better).")
        # The best steps compare each server at its own capacity, where per-message costs are amortised best;
        # the same offered rate, where both kept up, is the other fair view, so both are printed.
        same = []
        for rate in sorted({s["offered"] for s in steps}):
            pair = [next((s for s in steps if s["server"] == srv and s["offered"] == rate
                          and s.get("failed_calls", 1) == 0 and s.get("delivered_pct", 0) >= 99.0
                          and s["offered"] * 0.9 <= s["publish_per_s"]), None) for srv in servers]
            if all(pair) and all(cpu_per_publish(s) for s in pair):
                same.append(f"{fmt(rate)}/s {cpu_per_publish(pair[0]) / cpu_per_publish(pair[1]):.2f}")
        if same:
            L.append("")
            L.append(f"CPU per PUBLISH {servers[0]} ÷ {servers[1]} at the same offered rate, where both kept up "
                     f"(at least 90 % of it answered): " + ", ".join(same) + ".")
    L.append("")
    if info.get("notes"):
        L.append("## Notes\n")
        L.append(info["notes"])
    return "\n".join(L) + "\n"



if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.stdout.write(report(*load(sys.argv[1])))
