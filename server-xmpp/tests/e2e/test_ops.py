"""Operating presenced: /metrics, the admin socket, graceful shutdown and store faults, seen by real clients.

Each test starts its own server. XMPP is driven with slixmpp; where slixmpp cannot do what a test needs (stop
between SASL and resource binding) a small blocking XMPP-over-TLS socket, :class:`TlsXmpp`, does it. The
Prometheus text from ``GET /metrics`` is parsed by :func:`parse_metrics` (not grepped), and every figure is
compared with a scrape taken before the action, so a counter that never moves fails the test.

Helpers here (:func:`scrape`, :class:`Metrics`, :class:`TlsXmpp`) are shared with ``test_overload.py``.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import USERS, Server, free_port, write_config
from xmpp import (
    DOMAIN,
    NS_SASL,
    NS_STREAM,
    NS_STREAMS_ERR,
    WAIT,
    Client,
    StreamSplitter,
    clients,
    connect,
    make_client,
    run,
    start,
    stream_error_condition,
    stream_header,
    wait,
    wait_until,
)

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
FAULT_VAR = "PRESENCED_FAULT_FILE"
#: Seconds a SIGTERMed server may take to exit before the test calls it hung (a bound, not a speed target).
EXIT_BOUND = 10.0


def body() -> str:
    return f"e2e {uuid.uuid4()}"


# ------------------------------------------------------------------------------------------------
# the Prometheus text format
# ------------------------------------------------------------------------------------------------

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>.*)\})?"
    r"\s+(?P<value>\S+)"
    r"(?:\s+(?P<ts>-?\d+(?:\.\d+)?))?\s*$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")
_COUNTER_SUFFIXES = ("_total", "_created")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _parse_labels(text: str, line: str) -> frozenset[tuple[str, str]]:
    labels: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise AssertionError(f"bad label set in metrics line: {line!r}")
        if m.group(1) in labels:
            raise AssertionError(f"label {m.group(1)} twice in metrics line: {line!r}")
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return frozenset(labels.items())


def _parse_value(text: str, line: str) -> float:
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    try:
        return float(text)
    except ValueError:
        raise AssertionError(f"bad sample value in metrics line: {line!r}") from None


@dataclass
class Metrics:
    """One scrape: every sample by (name, labels), and each family's declared TYPE."""

    text: str
    samples: dict[tuple[str, frozenset], float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def family_of(self, sample: str) -> str | None:
        """The declared family a sample name belongs to (``x_total`` -> counter ``x``, ``h_bucket`` -> ``h``)."""
        if sample in self.types:
            return sample
        for suffix in _COUNTER_SUFFIXES + _HISTOGRAM_SUFFIXES:
            if sample.endswith(suffix) and sample[: -len(suffix)] in self.types:
                return sample[: -len(suffix)]
        return None

    def declared(self, name: str) -> bool:
        return self.family_of(name) is not None

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name{labels}`` exactly, 0 if absent: a labelled series (and, with this server's
        client library, a labelled family's # TYPE too) only appears once it is first used. Tests that need a
        series to exist check :meth:`declared` on the later scrape."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str) -> float:
        """The sum over every label set of ``name`` (0 if none)."""
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def series(self, name: str) -> dict[frozenset, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def parse_metrics(text: str) -> Metrics:
    """Parses the Prometheus text exposition format (0.0.4, and the OpenMetrics flavour: ``# EOF``, counter
    families declared without ``_total``). Fails on a malformed line, a sample of no declared family, a
    repeated series or a family typed twice."""
    m = Metrics(text=text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                name, kind = parts[2], parts[3].strip()
                assert name not in m.types, f"family {name} typed twice:\n{text}"
                assert kind in {"counter", "gauge", "histogram", "summary", "untyped", "unknown",
                                "info", "stateset", "gaugehistogram"}, line
                m.types[name] = kind
            continue
        s = _SAMPLE.match(line)
        assert s, f"malformed metrics line: {raw!r}"
        name = s.group("name")
        labels = _parse_labels(s.group("labels") or "", raw)
        key = (name, labels)
        assert key not in m.samples, f"series {name}{dict(labels)} appears twice:\n{text}"
        assert m.family_of(name) is not None, f"sample {name} belongs to no declared family:\n{text}"
        m.samples[key] = _parse_value(s.group("value"), raw)
    return m


def scrape(server: Server) -> Metrics:
    """GET /metrics from the server's HTTP listener, checked to be the Prometheus text format."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=WAIT) as resp:
        assert resp.status == 200, resp.status
        ctype = resp.headers.get("Content-Type", "")
        assert ctype.startswith("text/plain") or "openmetrics" in ctype, ctype
        return parse_metrics(resp.read().decode())


async def ascrape(server: Server) -> Metrics:
    return await asyncio.to_thread(scrape, server)


def check_histogram(m: Metrics, name: str) -> float:
    """A histogram family that is well-formed: buckets cumulative, a +Inf bucket equal to _count, a _sum.
    Returns its count."""
    assert m.types.get(name) == "histogram", f"{name} is not a histogram: {m.types.get(name)}"
    count = m.samples.get((f"{name}_count", frozenset()))
    total = m.samples.get((f"{name}_sum", frozenset()))
    assert count is not None and total is not None, f"{name}_count/_sum missing:\n{m.text}"
    buckets = sorted(
        ((_parse_value(dict(lbl)["le"], name), v) for lbl, v in m.series(f"{name}_bucket").items()),
        key=lambda b: b[0],
    )
    assert buckets and buckets[-1][0] == math.inf, f"{name} has no +Inf bucket:\n{m.text}"
    values = [v for _, v in buckets]
    assert values == sorted(values), f"{name} buckets are not cumulative: {buckets}"
    assert buckets[-1][1] == count, f"{name}: +Inf bucket {buckets[-1][1]} != _count {count}"
    assert total >= 0
    return count


# ------------------------------------------------------------------------------------------------
# a blocking XMPP-over-TLS socket (STARTTLS, SASL PLAIN, bind), for what slixmpp cannot do
# ------------------------------------------------------------------------------------------------


class TlsXmpp:
    """A blocking client-to-server stream on a plain socket: STARTTLS with the server's generated
    certificate verified for ``localhost``, SASL PLAIN, resource binding; then raw bytes.

    Not thread-safe: one thread uses it (reading and writing an SSL socket from two threads is not safe).
    """

    def __init__(self, server: Server, *, source_ip: str | None = None, timeout: float = WAIT,
                 rcvbuf: int | None = None):
        self.server = server
        self.timeout = timeout
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source_ip is not None:
            sock.bind((source_ip, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", server.port))
        self.sock: socket.socket = sock
        self.received = b""
        self.eof = False
        self._new_parser()

    def _new_parser(self) -> None:
        self.splitter = StreamSplitter()
        self.elements: list[ET.Element] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _feed(self, data: bytes) -> None:
        self.received += data
        self.elements.extend(self.splitter.feed(data))

    def next_element(self, what: str) -> ET.Element:
        deadline = time.monotonic() + self.timeout
        while not self.elements:
            if self.eof:
                raise AssertionError(f"connection closed waiting for {what}; got {self.received[-2000:]!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {self.received[-2000:]!r}")
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.eof = True
            else:
                self._feed(data)
        return self.elements.pop(0)

    def expect(self, tag: str, what: str) -> ET.Element:
        el = self.next_element(what)
        if el.tag != tag:
            raise AssertionError(
                f"expected {tag} ({what}), got {el.tag} "
                f"({stream_error_condition(el)}): {ET.tostring(el)!r}"
            )
        return el

    def open_stream(self) -> ET.Element:
        self._new_parser()
        self.send(stream_header())
        return self.expect(f"{{{NS_STREAM}}}features", "<stream:features>")

    def starttls(self) -> None:
        self.open_stream()
        self.send(f"<starttls xmlns='{NS_TLS}'/>".encode())
        self.expect(f"{{{NS_TLS}}}proceed", "<proceed/>")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.server.cert))
        ctx.check_hostname = True
        self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)

    def authenticate(self, local: str, password: str) -> None:
        """STARTTLS, SASL PLAIN; leaves the stream right after <success/> (no restart yet)."""
        self.starttls()
        self.open_stream()
        payload = base64.b64encode(f"\0{local}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>".encode())
        self.expect(f"{{{NS_SASL}}}success", f"SASL <success/> for {local}")

    def bind_request(self, resource: str, iq_id: str = "bind1") -> ET.Element:
        """Restarts the stream, sends the bind request and returns the server's answer (an <iq/>)."""
        features = self.open_stream()
        assert features.find(f"{{{NS_BIND}}}bind") is not None, ET.tostring(features)
        self.send(
            f"<iq type='set' id='{iq_id}'><bind xmlns='{NS_BIND}'><resource>{resource}</resource>"
            f"</bind></iq>".encode()
        )
        return self.next_element("the answer to the bind request")

    def login(self, local: str, password: str, resource: str) -> str:
        """The whole handshake; returns the bound full JID."""
        self.authenticate(local, password)
        answer = self.bind_request(resource)
        assert answer.tag == f"{{{NS_CLIENT}}}iq" and answer.get("type") == "result", ET.tostring(answer)
        jid = answer.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid")
        assert jid is not None and jid.text, ET.tostring(answer)
        return jid.text

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# servers
# ------------------------------------------------------------------------------------------------


def make_server(binary: Path, root: Path, *, tables: str = "", env: dict[str, str] | None = None,
                users: dict[str, str] | None = None) -> Server:
    """A configured server (not started) whose ``http_port`` is the one in its config, with ``users``
    (default: the suite's four) created through the CLI before it starts."""
    root.mkdir(parents=True, exist_ok=True)
    srv = Server(binary=binary, root=root, port=free_port(), env=dict(env or {}))
    write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                 tables=tables)
    for local, password in (users or USERS).items():
        srv.add_user(local, password)
    return srv


def sigterm_and_wait(server: Server) -> tuple[int, float]:
    """SIGTERM; returns (exit status, seconds until it exited). Kills it and fails after EXIT_BOUND s."""
    assert server.proc is not None, "server not running"
    proc, server.proc = server.proc, None
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=EXIT_BOUND)
        pytest.fail(f"presenced did not exit within {EXIT_BOUND:.0f} s of SIGTERM; its output:\n"
                    f"{server._stderr()}")
    return code, time.monotonic() - t0


def message_errors(client: Client) -> asyncio.Queue:
    """Message errors: slixmpp reports a bounce without a <body/> only as 'message_error'."""
    q: asyncio.Queue = asyncio.Queue()
    client.xmpp.add_event_handler("message_error", q.put_nowait)
    return q


def stream_errors(client: Client) -> asyncio.Queue:
    q: asyncio.Queue = asyncio.Queue()
    client.xmpp.add_event_handler("stream_error", q.put_nowait)
    return q


async def messages_after_barrier(client: Client, grace: float = 0.5) -> list:
    """Every message with a body ``client`` has received by the time a ping it sends is answered (plus
    ``grace`` seconds)."""
    await client.ping_server()
    await asyncio.sleep(grace)
    out = []
    while not client.messages.empty():
        msg = client.messages.get_nowait()
        if msg["body"]:
            out.append(msg)
    return out


# ------------------------------------------------------------------------------------------------
# 1. metrics
# ------------------------------------------------------------------------------------------------


def test_metrics_count_sessions_stanzas_deliveries_and_commits(server: Server) -> None:
    """Two slixmpp users sign in and exchange messages (and one goes to an offline user, so the store
    commits): /metrics shows 2 XMPP sessions, message stanzas in/out and deliveries up by at least what was
    sent, the offline gauge and the commit histogram's count up; sessions go back down after logout."""

    sent_ab, sent_ba = 5, 3

    async def scenario() -> None:
        before = await ascrape(server)
        assert before.value("presenced_sessions", protocol="xmpp") == 0
        check_histogram(before, "presenced_store_commit_seconds")

        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await alice.ping_server()
            await bob.ping_server()
            online = await ascrape(server)
            assert online.value("presenced_sessions", protocol="xmpp") == 2, online.series("presenced_sessions")

            texts_ab = [body() for _ in range(sent_ab)]
            texts_ba = [body() for _ in range(sent_ba)]
            for t in texts_ab:
                alice.send_message(BOB, t)
            for t in texts_ba:
                bob.send_message(ALICE, t)
            got_b = [(await bob.next_message(f"alice's message {i}"))["body"] for i in range(sent_ab)]
            got_a = [(await alice.next_message(f"bob's message {i}"))["body"] for i in range(sent_ba)]
            assert got_b == texts_ab and got_a == texts_ba

            # One more to carol, who is offline: it is stored (a commit), which the histogram counts.
            alice.send_message(CAROL, body())
            await alice.ping_server()

            async def stored() -> bool:
                m = await ascrape(server)
                return m.value("presenced_offline_messages") >= before.value("presenced_offline_messages") + 1

            await wait_until(stored, "presenced_offline_messages to count the message held for carol")
            after = await ascrape(server)

        msg_in = ("presenced_stanzas_in_total", {"kind": "message"})
        msg_out = ("presenced_stanzas_out_total", {"kind": "message"})
        rose = {
            name: after.value(name, **labels) - before.value(name, **labels)
            for name, labels in (msg_in, msg_out)
        }
        assert rose[msg_in[0]] >= sent_ab + sent_ba + 1, (rose, after.series(msg_in[0]))
        assert rose[msg_out[0]] >= sent_ab + sent_ba, (rose, after.series(msg_out[0]))
        deliveries = after.value("presenced_deliveries_total") - before.value("presenced_deliveries_total")
        assert deliveries >= sent_ab + sent_ba, deliveries
        commits = check_histogram(after, "presenced_store_commit_seconds")
        assert commits >= check_histogram(before, "presenced_store_commit_seconds") + 1, commits
        # Every message was handled in some engine step (several may share one batch).
        steps = check_histogram(after, "presenced_engine_step_seconds")
        assert steps >= check_histogram(before, "presenced_engine_step_seconds") + 1, steps
        # The families this scenario used are declared with their types.
        for family, kind in (("presenced_sessions", "gauge"), ("presenced_stanzas_in", "counter"),
                             ("presenced_stanzas_out", "counter"), ("presenced_deliveries", "counter"),
                             ("presenced_offline_messages", "gauge"),
                             ("presenced_engine_queue_depth", "gauge")):
            assert after.types.get(family) == kind, f"{family} is not a declared {kind}:\n{after.text}"

        async def logged_out() -> bool:
            return (await ascrape(server)).value("presenced_sessions", protocol="xmpp") == 0

        await wait_until(logged_out, "presenced_sessions{protocol='xmpp'} back to 0 after both logged out")

    run(scenario)


def test_metrics_parser_reads_labels_escapes_and_rejects_garbage() -> None:
    """The parser the metrics tests rely on: labels with escapes, counters declared without _total,
    histograms; and it refuses a line that is not the text format."""
    text = (
        "# HELP x_requests Requests.\n# TYPE x_requests counter\n"
        'x_requests_total{method="PUBLISH",note="a\\"b\\\\c"} 3\n'
        "# TYPE x_depth gauge\nx_depth 7.5\n"
        "# TYPE x_h histogram\nx_h_sum 0.5\nx_h_count 2\n"
        'x_h_bucket{le="0.1"} 1\nx_h_bucket{le="+Inf"} 2\n# EOF\n'
    )
    m = parse_metrics(text)
    assert m.value("x_requests_total", method="PUBLISH", note='a"b\\c') == 3
    assert m.value("x_requests_total", method="OTHER", note="") == 0
    assert m.declared("x_requests_total") and m.declared("x_h_bucket") and not m.declared("y_total")
    assert m.value("x_depth") == 7.5
    assert check_histogram(m, "x_h") == 2
    for bad in ("# TYPE x_depth gauge\nx_depth seven\n", "# TYPE y gauge\ny{le=0.1} 1\n",
                "undeclared 1\n", "# TYPE z gauge\nz 1\nz 2\n"):
        with pytest.raises(AssertionError):
            parse_metrics(bad)


# ------------------------------------------------------------------------------------------------
# 2. the admin socket
# ------------------------------------------------------------------------------------------------


def test_user_admin_while_running_and_directly_on_the_store(server: Server) -> None:
    """With the server running (it holds the database), `presenced user add` goes through its admin
    socket: the new account is listed and signs in with slixmpp; `user del` removes it and its next sign-in
    fails. After the server stops, `user list` opens the store itself."""
    sock = server.data_dir / "presenced.sock"
    assert sock.is_socket(), f"no admin socket at {sock} while the server runs"

    async def scenario() -> None:
        await asyncio.to_thread(server.add_user, "newbie", "newbie-secret-5")
        listed = await asyncio.to_thread(server.list_users)
        assert f"newbie@{DOMAIN}" in listed, listed
        assert {f"{u}@{DOMAIN}" for u in USERS} <= set(listed), listed

        async with clients(connect(server, "newbie")) as (newbie,):
            assert newbie.jid.bare == f"newbie@{DOMAIN}"
            await newbie.ping_server()
            errors: list[str] = []
            newbie.xmpp.add_event_handler("stream_error", lambda e: errors.append(e["condition"]))

            # Deleted while signed in: the live session ends with <not-authorized/> (RFC 6120 §4.9.3.12).
            done = await asyncio.to_thread(server.cli, "user", "del", f"newbie@{DOMAIN}")
            assert f"newbie@{DOMAIN}" in done.stdout, done.stdout
            await wait(newbie.disconnected.wait(), "the deleted account's session to end")
            assert errors == ["not-authorized"], errors
        listed = await asyncio.to_thread(server.list_users)
        assert f"newbie@{DOMAIN}" not in listed, listed

        again = make_client(server, "newbie")
        try:
            await start(again, server)
            await wait(
                asyncio.wait(
                    [asyncio.ensure_future(again.auth_failed.wait()),
                     asyncio.ensure_future(again.disconnected.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                ),
                "a failed sign-in of the deleted account",
            )
            await asyncio.sleep(0.5)
            assert not again.session_started.is_set(), "the deleted account signed in"
            assert not again.xmpp.authenticated
        finally:
            await again.disconnect()

    run(scenario)
    server.stop()
    assert not sock.exists(), "the admin socket outlived the server"
    listed = server.list_users()  # no server: the CLI opens the store itself
    assert sorted(listed) == sorted(f"{u}@{DOMAIN}" for u in USERS), listed


# ------------------------------------------------------------------------------------------------
# 3. graceful shutdown
# ------------------------------------------------------------------------------------------------


def test_sigterm_closes_streams_with_system_shutdown_keeps_offline_message_and_exits_0(
    server: Server,
) -> None:
    """alice is signed in; she writes to bob (offline), and right after the server has read that message
    the server gets SIGTERM: alice's stream ends with the <system-shutdown/> stream error, presenced exits
    with status 0 and stops listening, and after a restart bob receives the message."""
    text = body()
    outcome: dict = {}

    async def before_restart() -> None:
        alice = await connect(server, "alice")
        errors = stream_errors(alice)
        try:
            alice.send_message(BOB, text)
            # The server answered a later stanza of this session, so it has read the message and handed it
            # on; it may not be committed yet (that is the point): SIGTERM at once.
            await alice.ping_server()
            code, took = await asyncio.to_thread(sigterm_and_wait, server)
            outcome.update(code=code, took=took)
            err = await wait(errors.get(), "a stream error at alice after SIGTERM", timeout=5)
            outcome["condition"] = err["condition"]
            await wait(alice.disconnected.wait(), "alice's stream to be closed", timeout=5)
        finally:
            await alice.disconnect()

    run(before_restart)
    print(f"\nSIGTERM: exit status {outcome['code']} after {outcome['took']:.2f} s; "
          f"alice got stream error {outcome['condition']!r}")
    assert outcome["condition"] == "system-shutdown", outcome
    assert outcome["code"] == 0, f"exit status {outcome['code']}; output:\n{server._stderr()}"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", server.port)) != 0, "the XMPP port still accepts after exit"

    server.start()

    async def after_restart() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            got = [m["body"] for m in await messages_after_barrier(bob)]
            assert got == [text], f"bob got {got!r} after the restart, expected exactly [{text!r}]"

    run(after_restart)


# ------------------------------------------------------------------------------------------------
# 4. store faults
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def faulty(binary: Path, tmp_path: Path):
    """A running server started with PRESENCED_FAULT_FILE=<tmp>/store-fault (the file not yet there)."""
    switch = tmp_path / "store-fault"
    srv = make_server(binary, tmp_path / "srv", env={FAULT_VAR: str(switch)})
    srv.start()
    try:
        yield srv, switch
    finally:
        switch.unlink(missing_ok=True)
        srv.stop()


def stanza_error(el: ET.Element) -> tuple[str | None, set[str]]:
    """(type, conditions) of the <error/> child of a stanza."""
    err = el.find(f"{{{NS_CLIENT}}}error")
    if err is None:
        return None, set()
    return err.get("type"), {c.tag.rsplit("}", 1)[-1] for c in err if c.tag.startswith(f"{{{NS_STANZAS}}}")
                             and not c.tag.endswith("}text")}


def test_store_fault_bounces_with_wait_and_refuses_logins_until_it_clears(faulty) -> None:
    """While every commit and load fails: alice's message to offline bob comes back as an error of type
    `wait` with <internal-server-error/> and store_failures rises; bob's sign-in is refused with a temporary
    SASL failure (never not-authorized); a bind whose user data cannot be loaded gets an iq error
    internal-server-error of type wait. Once the fault clears, alice's resend is accepted silently and bob
    signs in and receives exactly the second message."""
    server, switch = faulty
    first, second = body(), body()

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            bounces = message_errors(alice)
            before = await ascrape(server)

            switch.touch()
            alice.xmpp.send_message(mto=BOB, mbody=first, mtype="chat")
            err = await wait(bounces.get(), "the error for the message that could not be stored")
            assert err["type"] == "error", err
            assert err["error"]["type"] == "wait", f"error type should be wait (retry later): {err}"
            assert err["error"]["condition"] == "internal-server-error", err
            during = await ascrape(server)
            failures = during.total("presenced_store_failures_total") - before.total(
                "presenced_store_failures_total")
            assert failures >= 1, during.series("presenced_store_failures_total")

            # A sign-in while the store cannot be read: refused, temporarily.
            bob = make_client(server, "bob")
            failed: list[str] = []
            bob.xmpp.add_event_handler("failed_auth", lambda st: failed.append(st["condition"]))
            errs = stream_errors(bob)
            try:
                await start(bob, server)
                await wait(
                    asyncio.wait(
                        [asyncio.ensure_future(bob.auth_failed.wait()),
                         asyncio.ensure_future(bob.disconnected.wait())],
                        return_when=asyncio.FIRST_COMPLETED,
                    ),
                    "bob's sign-in to be refused while the store fails",
                )
                await asyncio.sleep(1.0)
                assert not bob.session_started.is_set(), "bob signed in although his data cannot be loaded"
                stream_conds = []
                while not errs.empty():
                    stream_conds.append(errs.get_nowait()["condition"])
                assert failed, f"no SASL failure for bob; stream errors {stream_conds}"
                assert set(failed) == {"temporary-auth-failure"}, (
                    f"SASL failures {failed}: a store failure must be temporary, never not-authorized")
            finally:
                await bob.disconnect()

            # A bind that needs bob's data while the store fails (authenticated before the fault).
            switch.unlink()
            raw = TlsXmpp(server)
            try:
                await asyncio.to_thread(raw.authenticate, "bob", server.users["bob"])
                switch.touch()
                answer = await asyncio.to_thread(raw.bind_request, "raw")
            finally:
                raw.close()
            kind, conds = stanza_error(answer)
            assert answer.get("type") == "error" and answer.get("id") == "bind1", ET.tostring(answer)
            assert (kind, conds) == ("wait", {"internal-server-error"}), ET.tostring(answer)

            switch.unlink()
            alice.xmpp.send_message(mto=BOB, mbody=second, mtype="chat")
            await alice.ping_server()
            await asyncio.sleep(0.5)
            assert bounces.empty(), f"an error for the resend after the fault cleared: {bounces.get_nowait()}"

        async with clients(connect(server, "bob")) as (bob,):
            got = [m["body"] for m in await messages_after_barrier(bob)]
            assert got == [second], f"bob got {got!r}, expected exactly the second message [{second!r}]"

    run(scenario)
