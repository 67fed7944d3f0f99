"""SIP side of operations: graceful shutdown of subscriptions, the per-source rate limit, store faults.

(a) a sipp watcher holds a presence subscription; SIGTERM makes the server send a final NOTIFY with
    ``Subscription-State: terminated;reason=probation;retry-after=30`` and exit with status 0
    (scenario ``watch_until_shutdown.xml``), over UDP and over TCP;
(b) with a small ``[limits] sip_rate``, a burst of UDP OPTIONS from one source gets ``503`` with Retry-After
    (raw socket), while another source address is still served and a trusted peer is exempt;
(c) a MESSAGE to an offline user while the store fails (``PRESENCED_FAULT_FILE``) gets ``500`` with
    Retry-After (scenario ``message_send_store_failure.xml``); once the fault clears the same MESSAGE gets
    200, and the recipient, signing in over XMPP, finds exactly one copy.

The figures come from ``GET /metrics``, parsed line by line (not grepped).
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import USERS, SipServer, free_port, write_config
from sipp import SippResult, expect_ok
from xmpp import clients, connect, run

EXIT_BOUND = 10.0  # seconds a SIGTERMed server may take before the test calls it hung (not a speed target)
RAW_TIMEOUT = 3.0


# -- helpers -----------------------------------------------------------------------------------


def make_server(binary: Path, root: Path, *, tables: str = "", sip: tuple[str, ...] = (),
                env: dict[str, str] | None = None) -> SipServer:
    """A configured SIP-ready server whose ``http_port`` is the one in its config (for /metrics)."""
    root.mkdir(parents=True, exist_ok=True)
    srv = SipServer(binary=binary, root=root, port=free_port(), sip_port=free_port(udp_too=True),
                    env=dict(env or {}))
    write_config(srv.config, srv.data_dir, srv.port, srv.sip_port, sip=sip, tables=tables,
                 http_port=srv.http_port)
    for local, password in USERS.items():
        srv.add_user(local, password)
    return srv


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
_LABELS = re.compile(rf"\s*(?:{_LABEL}\s*,\s*)*(?:{_LABEL})?\s*,?\s*")
_ONE_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics(server: SipServer) -> dict[tuple[str, frozenset], float]:
    """GET /metrics, parsed: (sample name, labels) -> value. Fails on a line that is not the text format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=RAW_TIMEOUT) as r:
        assert r.status == 200
        text = r.read().decode()
    out: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        assert m, f"malformed metrics line {line!r}"
        labels_text = m.group(2) or ""
        assert _LABELS.fullmatch(labels_text), f"bad label set in metrics line {line!r}"
        key = (m.group(1), frozenset(_ONE_LABEL.findall(labels_text)))
        assert key not in out, f"series repeated in /metrics: {line!r}"
        out[key] = float(m.group(3))
    return out


def metric(m: dict, name: str, **labels: str) -> float:
    return m.get((name, frozenset(labels.items())), 0.0)


def metric_total(m: dict, name: str) -> float:
    return sum(v for (n, _), v in m.items() if n == name)


def sigterm_and_wait(server: SipServer) -> int:
    assert server.proc is not None, "server not running"
    proc, server.proc = server.proc, None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=EXIT_BOUND)
        pytest.fail(f"presenced did not exit within {EXIT_BOUND:.0f} s of SIGTERM:\n{server._stderr()}")


def options(source_port: int, n: int) -> tuple[bytes, str]:
    """An OPTIONS from 127.0.0.1:source_port with a unique Call-ID; (bytes, call-id)."""
    call_id = f"rate-{n}-{uuid.uuid4().hex}"
    msg = (
        f"OPTIONS sip:localhost SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{source_port};branch=z9hG4bK-rate-{n}-{uuid.uuid4().hex[:8]};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:ratetest@localhost>;tag=r{n}\r\n"
        f"To: <sip:localhost>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()
    return msg, call_id


def udp_burst(server: SipServer, source_ip: str, count: int) -> dict[str, str]:
    """Sends ``count`` OPTIONS back to back from one UDP socket on ``source_ip``; returns each Call-ID's
    first response (the raw text; missing if none came within RAW_TIMEOUT of the last answer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source_ip, 0))
        port = s.getsockname()[1]
        sent = {}
        for n in range(1, count + 1):
            data, call_id = options(port, n)
            s.sendto(data, ("127.0.0.1", server.sip_port))
            sent[call_id] = n
        answers: dict[str, str] = {}
        s.settimeout(RAW_TIMEOUT)
        while len(answers) < count:
            try:
                text = s.recv(65535).decode(errors="replace")
            except socket.timeout:
                break
            m = re.search(r"(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)", text)
            assert m and m.group(1) in sent, f"a response to no request of this burst:\n{text}"
            answers.setdefault(m.group(1), text)
    return answers


def status(text: str) -> int:
    m = re.match(r"SIP/2\.0 (\d{3})", text)
    assert m, f"not a SIP response: {text!r}"
    return int(m.group(1))


def header(text: str, name: str) -> str | None:
    m = re.search(rf"(?im)^{re.escape(name)}[ \t]*:[ \t]*([^\r\n]*)", text)
    return m.group(1).strip() if m else None


# -- (a) SIGTERM ends subscriptions with probation ------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sigterm_terminates_subscriptions_with_probation_and_exits_0(server, sipp, transport):
    watcher = sipp("watch_until_shutdown", "bob", transport=transport, flag="subscribed").start()
    watcher.wait_flag("subscribed")
    code = sigterm_and_wait(server)
    run_ = watcher.wait()
    assert code == 0, f"presenced exited with status {code} after SIGTERM:\n{server._stderr()}"
    expect_ok(run_)
    got = run_.received("NOTIFY")
    assert len(got) >= 2, run_
    final = got[-1]
    state = final.header("subscription-state") or ""
    params = dict(p.strip().split("=", 1) if "=" in p else (p.strip(), "") for p in state.split(";")[1:])
    assert state.split(";")[0].strip() == "terminated", final
    assert params.get("reason") == "probation", f"final NOTIFY without reason=probation:\n{final}"
    assert params.get("retry-after") == "30", f"final NOTIFY without retry-after=30:\n{final}"
    first = got[0]
    assert final.header("call-id") == first.header("call-id"), "the final NOTIFY is not in the subscription's dialog"
    assert int(final.header("cseq").split()[0]) > int(first.header("cseq").split()[0]), final
    assert (final.header("event") or "").split(";")[0].strip() == "presence", final
    # The watcher answered it (the server may already be gone by then; the answer is sipp's part).
    assert [m for m in run_.sent() if m.is_response and m.method == "NOTIFY"][-1].status == 200


# -- (b) the per-source rate limit ----------------------------------------------------------------


SIP_RATE, SIP_BURST = 1000, 4000  # bytes/s and bucket size per source address
BURST_REQUESTS = 60  # ~230 bytes each: ~14 KB at once, well over the bucket


@pytest.fixture
def rate_limited_server(binary: Path, tmp_path: Path):
    srv = make_server(binary, tmp_path / "server", sip=('trusted_peers = ["127.0.0.3"]',),
                      tables=f"[limits]\nsip_rate = {SIP_RATE}\nsip_burst = {SIP_BURST}\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_udp_burst_over_sip_rate_gets_503_with_retry_after(rate_limited_server):
    """60 OPTIONS at once from 127.0.0.1 (about 3.5x the bucket): the first ones get 200, the rest
    `503` with a Retry-After; each refusal is counted in presenced_rate_limited_total{protocol="sip"}.
    Right after, another address (127.0.0.2) is still served, and the trusted peer 127.0.0.3 is exempt
    from the limit for a burst of the same size."""
    server = rate_limited_server
    before = metrics(server)
    answers = udp_burst(server, "127.0.0.1", BURST_REQUESTS)
    after = metrics(server)
    codes = [status(a) for a in answers.values()]
    ok = codes.count(200)
    refused = [a for a in answers.values() if status(a) == 503]
    print(f"\nSIP burst of {BURST_REQUESTS} from one source: {ok} x 200, {len(refused)} x 503, "
          f"{BURST_REQUESTS - len(answers)} unanswered")
    assert set(codes) <= {200, 503}, codes
    assert ok >= 1, "nothing was served before the limit"
    assert refused, f"no 503 for a burst well over sip_burst={SIP_BURST}: {codes}"
    for a in refused:
        retry = header(a, "Retry-After")
        assert retry is not None and re.fullmatch(r"\d+(\s*\(.*\))?(\s*;.*)?", retry), f"503 without Retry-After:\n{a}"
        assert int(retry.split()[0].split(";")[0]) > 0, a
    limited = (metric(after, "presenced_rate_limited_total", protocol="sip")
               - metric(before, "presenced_rate_limited_total", protocol="sip"))
    assert limited >= len(refused), (limited, len(refused))

    other = udp_burst(server, "127.0.0.2", 1)
    assert [status(a) for a in other.values()] == [200], f"another source address was refused: {other}"

    trusted = udp_burst(server, "127.0.0.3", BURST_REQUESTS)
    trusted_codes = [status(a) for a in trusted.values()]
    assert trusted_codes == [200] * BURST_REQUESTS, (
        f"the trusted peer was limited: {len(trusted)} answers, codes {sorted(set(trusted_codes))}")


# -- (c) a MESSAGE while the store fails ----------------------------------------------------------


@pytest.fixture
def faulty_server(binary: Path, tmp_path: Path):
    switch = tmp_path / "store-fault"
    srv = make_server(binary, tmp_path / "server", tables="[policy]\noffline_storage = true\n",
                      env={"PRESENCED_FAULT_FILE": str(switch)})
    srv.start()
    try:
        yield srv, switch
    finally:
        switch.unlink(missing_ok=True)
        srv.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_message_while_store_fails_gets_500_retry_after_then_200(faulty_server, sipp_factory, transport):
    """bob's MESSAGE to carol (offline, offline storage on) while every store commit and load fails gets
    500 with Retry-After, not a final refusal; after the fault clears the same MESSAGE gets 200, and carol,
    signing in over XMPP, receives it exactly once.

    The switch file fails account lookups too, so the 500 is given at the first store access, the sender's
    digest check (the server logs "store lookup failed ... method=MESSAGE"); a failed commit of the held
    message itself cannot be reached from outside while the switch is on."""
    server, switch = faulty_server
    sipp_factory.port = server.sip_port
    switch.touch()
    failing: SippResult = sipp_factory("message_send_store_failure", "bob", transport=transport,
                                       keys={"target": "carol"}).run()
    expect_ok(failing)
    (resp,) = [r for r in failing.responses("MESSAGE") if r.status >= 200][-1:]
    assert resp.status == 500, failing
    assert int((resp.header("retry-after") or "0").split()[0]) > 0, resp

    switch.unlink()
    ok = sipp_factory("message_send", "bob", transport=transport, keys={"target": "carol"}).run()
    expect_ok(ok)

    async def scenario() -> None:
        async with clients(connect(server, "carol")) as (carol,):
            # Offline messages come with the initial presence; the ping closes the window for copies.
            got = [await carol.next_message("bob's stored SIP MESSAGE")]
            await carol.ping_server()
            await asyncio.sleep(0.5)
            while not carol.messages.empty():
                m = carol.messages.get_nowait()
                if m["body"]:
                    got.append(m)
            bodies = [m["body"].strip() for m in got]
            assert bodies == [f"Hello carol, this is bob over {transport.upper()}"], bodies
            assert got[0]["from"].bare == "bob@localhost", got[0]

    run(scenario)
