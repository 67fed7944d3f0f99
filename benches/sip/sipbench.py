#!/usr/bin/env python3
"""Helpers for benches/sip/compare.sh (standard library only).

  sipbench.py options PORT [TIMEOUT]   wait until 127.0.0.1:PORT answers a SIP OPTIONS over UDP
  sipbench.py count-notify LOG         number of NOTIFYs a watcher sipp logged so far
  sipbench.py step OUT.json ...        measure one load step from the sipp logs (see step())
  sipbench.py wire OUT.json PCAP PORT  add to a step what the wire saw (see wire())
  sipbench.py jsonl RUN_DIR OUT.jsonl  write the run's raw measurements (RUN_DIR/info.json and
                                       RUN_DIR/steps/*.json) as JSON lines, for results_table.py

Log formats (from scenarios/*.xml, -trace_logs):
  publisher: "P <s> <us> <rs> <rus>"          one line per modifying PUBLISH answered 200: send and
                                               answer times
  watcher:   "N <call> <rs> <rus> <note>"     one line per NOTIFY received; note is
                                               "note>t <s> <us><" for a timed publication
sipp prints its gettimeofday variables as doubles ("1795447923.000000").
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import struct
import sys
import time
import uuid


def options(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        branch = "z9hG4bK-" + uuid.uuid4().hex[:12]
        msg = (
            f"OPTIONS sip:localhost SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:ready@localhost>;tag=r\r\nTo: <sip:localhost>\r\n"
            f"Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        try:
            s.sendto(msg, ("127.0.0.1", port))
            if s.recv(65535).startswith(b"SIP/2.0 "):
                return
        except OSError:
            time.sleep(0.2)
        finally:
            s.close()
    sys.exit(f"no SIP answer on 127.0.0.1:{port} within {timeout:.0f} s")


def _t(s: str, us: str) -> float:
    return float(s) + float(us) / 1e6


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


NOTE = re.compile(r"note>t (\S+) (\S+)<")


def count_notify(path: str) -> int:
    try:
        with open(path, errors="replace") as f:
            return sum(1 for line in f if line.startswith("N "))
    except OSError:
        return 0


def step(out: str, pub_log: str, watch_log: str, fanout: int, meta_json: str) -> None:
    """One step: PUBLISH rate and latency from the publisher log; the NOTIFYs for this step's
    publications (note timestamps within the step) from the watcher log."""
    meta = json.loads(meta_json)
    sends, lat = [], []
    with open(pub_log, errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) == 5 and p[0] == "P":
                t0, t1 = _t(p[1], p[2]), _t(p[3], p[4])
                sends.append(t0)
                lat.append((t1 - t0) * 1000.0)
    res = dict(meta)
    res["publish_ok"] = len(sends)
    if not sends:
        res.update(publish_per_s=0.0, notify_per_s=0.0, delivered_pct=0.0)
        json.dump(res, open(out, "w"), indent=1)
        return
    start = min(sends)
    end = max(s + l / 1000.0 for s, l in zip(sends, lat))
    window = max(end - start, 1e-3)
    seen: set[tuple[str, str]] = set()
    nlat, in_window = [], 0
    with open(watch_log, errors="replace") as f:
        for line in f:
            p = line.split(None, 4)
            if len(p) < 5 or p[0] != "N":
                continue
            m = NOTE.search(p[4])
            if not m:
                continue
            sent = _t(m.group(1), m.group(2))
            if sent < start - 0.001 or sent > end + 0.001:
                continue
            key = (p[1], m.group(0))
            if key in seen:  # a repeat of the same state in the same dialog
                continue
            seen.add(key)
            arrived = _t(p[2], p[3])
            nlat.append((arrived - sent) * 1000.0)
            if arrived <= end:
                in_window += 1
    expected = len(sends) * fanout
    res.update(
        window_s=round(window, 3),
        publish_per_s=len(sends) / window,
        publish_p50_ms=pct(lat, 50),
        publish_p99_ms=pct(lat, 99),
        notify_delivered=len(nlat),
        notify_expected=expected,
        delivered_pct=100.0 * len(nlat) / expected if expected else 0.0,
        notify_per_s=in_window / window,
        notify_p50_ms=pct(nlat, 50),
        notify_p99_ms=pct(nlat, 99),
        notify_max_ms=max(nlat) if nlat else None,
    )
    json.dump(res, open(out, "w"), indent=1)


WIRE_NOTE = re.compile(rb"note[^>]*>t ([^\s<]+) ([^\s<]+)<")
CALL_ID = re.compile(rb"\r\n(?:Call-ID|i):\s*([^\r]+)", re.IGNORECASE)
# The presentity: a PUBLISH's To, a NOTIFY's From (sipp's clock gives several PUBLISHes the same note).
TO_USER = re.compile(rb"\r\n(?:To|t):[^\r]*?sip:([^@;>\r]+)@", re.IGNORECASE)
FROM_USER = re.compile(rb"\r\n(?:From|f):[^\r]*?sip:([^@;>\r]+)@", re.IGNORECASE)


def _udp(path: str):
    """(time, source port, destination port, payload) of each IPv4 UDP packet of a pcap file."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        nano = struct.unpack("<I", head[:4])[0] == 0xA1B23C4D
        link = struct.unpack("<I", head[20:24])[0]
        skip = {1: 14, 113: 16, 0: 4, 12: 0}.get(link, 14)  # Ethernet (lo), Linux cooked, BSD loop, raw
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            data = f.read(incl)
            ip = data[skip:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
            yield sec + frac / (1e9 if nano else 1e6), sport, dport, ip[ihl + 8:]


def wire(out: str, pcap: str, port: int, drops: str) -> None:
    """Adds to step OUT what a capture of the server's SIP port on loopback saw: the time from each timed
    PUBLISH reaching the server to each NOTIFY for it leaving the server (the server's part of
    PUBLISH→NOTIFY, without either sipp's), and how late the publisher sipp sent its PUBLISHes."""
    published: dict[bytes, float] = {}
    publisher_lag, server = [], []
    seen: set[tuple[bytes, bytes]] = set()
    for t, sport, dport, payload in _udp(pcap):
        m = WIRE_NOTE.search(payload)
        if not m:
            continue
        if dport == port and payload.startswith(b"PUBLISH "):
            user = TO_USER.search(payload)
        elif sport == port and payload.startswith(b"NOTIFY "):
            user = FROM_USER.search(payload)
        else:
            continue
        note = (user.group(1) if user else b"") + b" " + m.group(1) + b" " + m.group(2)
        if payload.startswith(b"PUBLISH ") and note not in published:
            published[note] = t
            publisher_lag.append((t - _t(m.group(1).decode(), m.group(2).decode())) * 1000.0)
        elif payload.startswith(b"NOTIFY ") and note in published:
            call = CALL_ID.search(payload)
            key = (call.group(1) if call else b"", note)
            if key in seen:  # a retransmission
                continue
            seen.add(key)
            server.append((t - published[note]) * 1000.0)
    res = json.load(open(out))
    res.update(
        wire_publications=len(published),
        wire_notifies=len(server),
        wire_capture_drops=int(drops or 0),
        wire_publisher_lag_p99_ms=pct(publisher_lag, 99),
        wire_server_notify_p50_ms=pct(server, 50),
        wire_server_notify_p99_ms=pct(server, 99),
        wire_server_notify_max_ms=max(server) if server else None,
    )
    json.dump(res, open(out, "w"), indent=1)


def jsonl(run_dir: str, out: str) -> None:
    """Writes the raw measurements of a run as JSON lines: the run's info, then one line per step
    (what results_table.py turns into RESULTS.md)."""
    info = json.load(open(os.path.join(run_dir, "info.json")))
    steps = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run_dir, "steps", "*.json")))]
    with open(out, "w") as f:
        f.write(json.dumps({"kind": "info", **info}, ensure_ascii=False) + "\n")
        for s in steps:
            f.write(json.dumps({"kind": "step", **s}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "options":
        options(int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 20.0)
    elif cmd == "count-notify":
        print(count_notify(sys.argv[2]))
    elif cmd == "step":
        step(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif cmd == "wire":
        wire(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else "0")
    elif cmd == "jsonl":
        jsonl(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
