"""Federation throughput and latency over one s2s connection (run by benches/s2s.sh, which builds the binary).

Starts presenced for a.localhost, and as the peer either a second presenced (b.localhost) or Prosody 0.12
(p.localhost), with static routes both ways, exactly as the e2e tests do (their Server, write_config and Prosody
helpers are reused). PAIRS slixmpp senders on a.localhost send chat messages to PAIRS receivers on the peer; all
of them cross the one outbound stream a.localhost keeps to the peer domain. Every body carries its send time
(one process, one monotonic clock), so the receiver's arrival time gives the latency.

Two phases per peer:
  - paced: RATE messages/s in total for SECS seconds (latency below saturation);
  - burst: BURST messages per sender sent at once; stanzas/s = messages / (last arrival - first send).
Prints one JSON line per phase. The clients are Python (slixmpp) on the same cores as the servers, so the burst
figure is a lower bound of what the s2s path carries.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server-xmpp" / "tests" / "e2e"))

from conftest import Server, free_port, write_config  # noqa: E402
from test_s2s_prosody import PASSWORD, Prosody, connect  # noqa: E402

PAIRS = int(os.environ.get("PAIRS", "4"))
RATE = int(os.environ.get("RATE", "500"))
SECS = float(os.environ.get("SECS", "10"))
BURST = int(os.environ.get("BURST", "5000"))
BIN = Path(os.environ.get("PRESENCED_BIN", REPO / "target" / "release" / "presenced"))


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def presenced(root: Path, domain: str, s2s_port: int, routes: dict[str, int]) -> Server:
    root.mkdir(parents=True)
    srv = Server(binary=BIN, root=root, port=free_port())
    s2s = (f'bind = "127.0.0.1:{s2s_port}"', 'connect_timeout = "5s"', "outbound_queue = 100000", "[s2s.routes]",
           *(f'"{d}" = "127.0.0.1:{p}"' for d, p in routes.items()))
    # The per-connection read rate (64 KiB/s by default) and slow-consumer bounds would measure the c2s limits,
    # not the s2s path: lifted, as for the other load benches.
    limits = "[limits]\nc2s_rate = 0\nmax_outbound_queue = 1000000\nmax_outbound_bytes = 1073741824"
    write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                 domain=domain, s2s=s2s, tables=limits)
    for i in range(PAIRS):
        srv.cli("user", "add", f"u{i}@{domain}", "--password-stdin", stdin=PASSWORD + "\n")
    return srv


async def measure(peer: str, senders, receivers) -> list[dict]:
    arrivals: asyncio.Queue = asyncio.Queue()

    def on_message(msg):
        if msg["body"].startswith("t="):
            arrivals.put_nowait((time.monotonic_ns(), int(msg["body"][2:].split(";")[0])))

    for r in receivers:
        r.xmpp.add_event_handler("message", on_message)

    async def collect(n: int, timeout: float) -> list[tuple[int, int]]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            try:
                got.append(await asyncio.wait_for(arrivals.get(), max(0.01, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                break
        return got

    # Warm-up: the s2s streams are opened and authenticated before anything is timed.
    for i, s in enumerate(senders):
        s.send_message(receivers[i].jid.bare, f"t={time.monotonic_ns()};warm")
    await collect(len(senders), 30)

    out = []
    # Paced.
    total = int(RATE * SECS)
    start = time.monotonic()
    for k in range(total):
        due = start + k / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        i = k % len(senders)
        senders[i].send_message(receivers[i].jid.bare, f"t={time.monotonic_ns()};{k}")
    got = await collect(total, 60)
    lat = [(a - s) / 1e6 for a, s in got]
    out.append({"peer": peer, "phase": "paced", "offered_per_s": RATE, "sent": total, "received": len(got),
                "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2)})
    # Burst.
    total = BURST * len(senders)
    t0 = time.monotonic_ns()
    for k in range(BURST):
        for i, s in enumerate(senders):
            s.send_message(receivers[i].jid.bare, f"t={time.monotonic_ns()};b{k}")
        if k % 200 == 0:
            await asyncio.sleep(0)  # let the loop write and read
    got = await collect(total, 120)
    last = max((a for a, _ in got), default=t0)
    lat = [(a - s) / 1e6 for a, s in got]
    out.append({"peer": peer, "phase": "burst", "sent": total, "received": len(got),
                "stanzas_per_s": round(len(got) / ((last - t0) / 1e9), 1) if got else 0,
                "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2)})
    return out


async def run_pair(a: Server, peer_domain: str, peer_port: int, peer_cafile) -> list[dict]:
    senders = [await connect(f"u{i}@a.localhost", a.port, a.cert) for i in range(PAIRS)]
    receivers = [await connect(f"u{i}@{peer_domain}", peer_port, peer_cafile) for i in range(PAIRS)]
    try:
        return await measure(peer_domain, senders, receivers)
    finally:
        for c in senders + receivers:
            await c.disconnect()


def main() -> None:
    which = sys.argv[1:] or ["presenced", "prosody"]
    root = Path(tempfile.mkdtemp(prefix="s2s-bench-"))
    try:
        for peer in which:
            run_peer(peer, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_peer(peer: str, root: Path) -> None:
    a_s2s, b_s2s = free_port(), free_port()
    if peer == "presenced":
        a = presenced(root / f"{peer}-a", "a.localhost", a_s2s, {"b.localhost": b_s2s})
        b = presenced(root / f"{peer}-b", "b.localhost", b_s2s, {"a.localhost": a_s2s})
        servers = [a, b]
        try:
            for s in servers:
                s.start()
            rows = asyncio.run(run_pair(a, "b.localhost", b.port, b.cert))
        finally:
            for s in servers:
                s.stop()
    else:
        p = Prosody(a_s2s, log_level="warn")
        a = presenced(root / f"{peer}-a", "a.localhost", a_s2s, {"p.localhost": p.s2s_port})
        try:
            for i in range(PAIRS):
                p.register(f"u{i}")
            a.start()
            p.start()
            rows = asyncio.run(run_pair(a, "p.localhost", p.c2s_port, None))
        finally:
            p.stop()
            a.stop()
            p.remove()
    for row in rows:
        row.update(pairs=PAIRS, binary=str(BIN.name), at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
