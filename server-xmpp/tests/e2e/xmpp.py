"""XMPP helpers for the end-to-end tests: a slixmpp client wrapper and a raw-socket stream.

Every wait is bounded by ``WAIT`` (or less) through ``asyncio.wait_for``; every test body runs
through :func:`run`, which also bounds the whole scenario, so no test can hang.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import xml.etree.ElementTree as ET
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, TypeVar

from slixmpp import ClientXMPP, JID
from slixmpp.stanza import Message, Presence

DOMAIN = "localhost"
WAIT = 15.0  # seconds, the most any single wait may take
SCENARIO_TIMEOUT = 90.0  # seconds, the most a whole test body may take

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_DELAY = "urn:xmpp:delay"

#: Every stream error condition of RFC 6120 §4.9.3.
STREAM_ERROR_CONDITIONS = frozenset(
    """bad-format bad-namespace-prefix conflict connection-timeout host-gone host-unknown
    improper-addressing internal-server-error invalid-from invalid-namespace invalid-xml
    not-authorized not-well-formed policy-violation remote-connection-failed reset
    resource-constraint restricted-xml see-other-host system-shutdown undefined-condition
    unsupported-encoding unsupported-feature unsupported-stanza-type unsupported-version""".split()
)

#: slixmpp's Presence['type'] for available presence: 'available' or the <show/> value.
AVAILABLE_TYPES = frozenset({"available", "away", "chat", "dnd", "xa"})

T = TypeVar("T")

log = logging.getLogger("e2e")


def run(scenario: Callable[[], Awaitable[T]], timeout: float = SCENARIO_TIMEOUT) -> T:
    """Runs one async test body on a fresh event loop, bounded by ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


async def wait(aw: Awaitable[T], what: str, timeout: float = WAIT) -> T:
    """``asyncio.wait_for`` whose timeout says what was being waited for."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT, every: float = 0.2
) -> None:
    """Polls the async predicate ``check`` until it is true, at most ``timeout`` seconds."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(every)

    await wait(loop(), what, timeout)


# ------------------------------------------------------------------------------------------------
# slixmpp clients
# ------------------------------------------------------------------------------------------------


class Client:
    """A slixmpp ``ClientXMPP`` with queues of everything it received, filled from connect on.

    The queues are attached before ``connect`` so nothing that arrives right after the session
    starts (offline messages, presence probes' answers, roster pushes) can be missed.
    """

    def __init__(self, xmpp: ClientXMPP):
        self.xmpp = xmpp
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.presences: asyncio.Queue[Presence] = asyncio.Queue()
        self.subscribes: asyncio.Queue[Presence] = asyncio.Queue()
        self.session_started = asyncio.Event()
        self.auth_failed = asyncio.Event()
        self.all_auth_failed = asyncio.Event()
        self.disconnected = asyncio.Event()
        xmpp.add_event_handler("message", self.messages.put_nowait)
        xmpp.add_event_handler("presence", self.presences.put_nowait)
        xmpp.add_event_handler("presence_subscribe", self.subscribes.put_nowait)
        xmpp.add_event_handler("session_start", lambda _: self.session_started.set())
        xmpp.add_event_handler("failed_auth", lambda _: self.auth_failed.set())
        xmpp.add_event_handler("failed_all_auth", lambda _: self.all_auth_failed.set())
        xmpp.add_event_handler("disconnected", lambda _: self.disconnected.set())

    @property
    def jid(self) -> JID:
        """The JID the server bound (full JID with resource after session start)."""
        return self.xmpp.boundjid

    @property
    def mechanism(self) -> str | None:
        """The SASL mechanism slixmpp chose (and used, once authenticated)."""
        mech = self.xmpp["feature_mechanisms"].mech
        return mech.name if mech is not None else None

    def send_message(self, to: str, body: str, mtype: str = "chat") -> None:
        self.xmpp.send_message(mto=to, mbody=body, mtype=mtype)

    async def next_message(self, what: str = "a message", with_body: bool = True) -> Message:
        """The next received message (skipping body-less ones, e.g. chat states, by default).

        A bounced ``type='error'`` message fails the test at once, with the stanza: it may echo the
        original body, and it is never what a test waits for.
        """
        while True:
            msg = await wait(self.messages.get(), f"{what} at {self.jid}")
            assert msg["type"] != "error", f"{self.jid} got an error message: {msg}"
            if not with_body or msg["body"]:
                return msg

    async def presence_from(self, bare: str, show: str | None = None) -> Presence:
        """Waits for an available presence from ``bare`` (any resource), with ``<show/>`` equal
        to ``show`` if given; other presence stanzas are skipped."""
        what = f"available presence{f' ({show})' if show else ''} from {bare} at {self.jid}"

        async def get() -> Presence:
            while True:
                pres = await self.presences.get()
                # slixmpp reports an available presence's <show/> as its 'type'.
                if pres["type"] not in AVAILABLE_TYPES or pres["from"].bare != bare:
                    continue
                if show is None or pres["show"] == show:
                    return pres

        return await wait(get(), what)

    async def roster_items(self) -> dict[str, dict]:
        """Fetches the whole roster from the server (not slixmpp's cache): bare JID -> item values.

        The get carries no ``ver`` attribute, so a server doing roster versioning (RFC 6121 §2.6)
        must still return every item rather than an empty result.
        """
        get = self.xmpp.Iq()
        get["type"] = "get"
        get.enable("roster")
        iq = await wait(get.send(timeout=WAIT), f"roster result for {self.jid}")
        assert iq["type"] == "result", iq
        items = iq["roster"]["items"]
        return {str(j): dict(v) for j, v in items.items()}

    async def ping_server(self) -> None:
        """A XEP-0199 ping to the server, answered: a barrier for everything sent before it."""
        iq = await wait(
            self.xmpp["xep_0199"].send_ping(JID(DOMAIN), timeout=WAIT), f"ping result for {self.jid}"
        )
        assert iq["type"] == "result", iq

    async def disconnect(self) -> None:
        """Closes the stream (bounded) and stops any reconnection attempt."""
        xmpp = self.xmpp
        try:
            xmpp.cancel_connection_attempt()
            if xmpp.transport is not None:
                fut = xmpp.disconnect(wait=2.0)
                await asyncio.wait_for(asyncio.shield(fut), 5.0)
        except Exception as e:  # teardown must not mask the test's own outcome
            log.warning("disconnect of %s: %r", self.jid, e)
        finally:
            try:
                xmpp.abort()
            except Exception:
                pass


def make_client(
    server,
    local: str,
    resource: str = "e2e",
    *,
    password: str | None = None,
    mechanism: str | None = None,
    direct_tls: bool = False,
) -> Client:
    """A not yet connected client for ``local@localhost/resource``.

    TLS: STARTTLS only (no direct TLS, no plaintext), trusting exactly the server's generated
    certificate as CA, with hostname verification for ``localhost``. With ``direct_tls`` it is
    XEP-0368 direct TLS only instead, to the server's ``tls_port``.
    """
    password = server.users[local] if password is None else password
    xmpp = ClientXMPP(f"{local}@{DOMAIN}/{resource}", password, sasl_mech=mechanism)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server.cert))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    xmpp.ssl_context = ctx
    xmpp.enable_direct_tls = direct_tls
    xmpp.enable_starttls = not direct_tls
    xmpp.enable_plaintext = False
    xmpp.use_ipv6 = False
    xmpp.whitespace_keepalive = False
    # The tests approve subscriptions themselves (see test_roster_subscription_both_ways).
    xmpp.auto_authorize = None
    xmpp.auto_subscribe = False
    for plugin in ("xep_0030", "xep_0092", "xep_0199", "xep_0203"):
        xmpp.register_plugin(plugin)
    return Client(xmpp)


async def start(client: Client, server) -> None:
    """Connects ``client`` to ``server``'s port (its direct-TLS port for a direct-TLS client); returns
    once the TCP connection is started."""
    if client.xmpp.enable_direct_tls:
        assert server.tls_port, "this server has no direct-TLS port"
        client.xmpp.connect("127.0.0.1", server.tls_port)
    else:
        client.xmpp.connect("127.0.0.1", server.port)


async def connect(
    server,
    local: str,
    resource: str = "e2e",
    *,
    priority: int | None = 0,
    fetch_roster: bool = True,
    mechanism: str | None = None,
    direct_tls: bool = False,
) -> Client:
    """Connects, waits for ``session_start``, then (by default) fetches the roster and sends
    initial presence with ``priority`` (``priority=None``: no initial presence)."""
    client = make_client(server, local, resource, mechanism=mechanism, direct_tls=direct_tls)
    await start(client, server)
    try:
        await wait(client.session_started.wait(), f"session_start of {local}@{DOMAIN}/{resource}")
        if fetch_roster:
            await client.roster_items()
        if priority is not None:
            client.xmpp.send_presence(ppriority=priority)
    except BaseException:
        await client.disconnect()
        raise
    return client


@asynccontextmanager
async def clients(*made: Awaitable[Client]) -> AsyncIterator[list[Client]]:
    """Connects every client (sequentially) and disconnects them all on the way out."""
    done: list[Client] = []
    try:
        for aw in made:
            done.append(await aw)
        yield done
    finally:
        for c in done:
            await c.disconnect()
        for aw in made[len(done):]:
            # Not awaited because an earlier one failed: close the coroutine quietly.
            close = getattr(aw, "close", None)
            if close:
                close()


async def make_mutual(a: Client, b: Client) -> None:
    """a and b subscribe to each other (auto-authorized by default) and wait until both rosters say 'both'."""
    a_bare, b_bare = a.jid.bare, b.jid.bare
    a.xmpp.send_presence(pto=b_bare, ptype="subscribe")
    b.xmpp.send_presence(pto=a_bare, ptype="subscribe")

    async def both_ways() -> bool:
        items = (await a.roster_items()).get(b_bare, {}), (await b.roster_items()).get(a_bare, {})
        return all(i.get("subscription") == "both" for i in items)

    await wait_until(both_ways, f"{a_bare} and {b_bare} to reach subscription='both'")


def drain(q: asyncio.Queue) -> list:
    """Everything in ``q`` now, taken."""
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def events(client: Client, event: str) -> asyncio.Queue:
    """A queue of what slixmpp's ``event`` hands the client from now on."""
    q: asyncio.Queue = asyncio.Queue()
    client.xmpp.add_event_handler(event, q.put_nowait)
    return q


# ------------------------------------------------------------------------------------------------
# group chat (XEP-0045) with slixmpp's plugin
# ------------------------------------------------------------------------------------------------


def with_muc(client: Client) -> Client:
    """Registers the XEP-0045 plugin (and XEP-0004's, for the room forms) on ``client``."""
    for plugin in ("xep_0004", "xep_0045"):
        client.xmpp.register_plugin(plugin)
    return client


def muc(client: Client):
    return client.xmpp.plugin["xep_0045"]


@asynccontextmanager
async def muc_clients(*made: Awaitable[Client]) -> AsyncIterator[list[Client]]:
    """``clients``, each with ``with_muc``."""
    async with clients(*made) as done:
        for c in done:
            with_muc(c)
        yield done


# ------------------------------------------------------------------------------------------------
# raw streams (no slixmpp): what a misbehaving or naive client would send
# ------------------------------------------------------------------------------------------------


def stream_header(to: str = DOMAIN) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream to='{to}' xmlns='jabber:client' "
        f"xmlns:stream='{NS_STREAM}' version='1.0'>"
    ).encode()


class StreamSplitter:
    """Cuts what a server sends into the top-level elements of its stream (the children of
    <stream:stream>) as bytes arrive; each is detached from the root so a long stream does not
    grow the tree."""

    def __init__(self) -> None:
        self._parser = ET.XMLPullParser(("start", "end"))
        self._depth = 0
        self._root: ET.Element | None = None
        self.closed = False  # saw </stream:stream>

    def feed(self, data: bytes) -> list[ET.Element]:
        """The top-level elements completed by ``data``."""
        done: list[ET.Element] = []
        self._parser.feed(data)
        for event, elem in self._parser.read_events():
            if event == "start":
                if self._depth == 0:
                    self._root = elem
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 1:
                    done.append(elem)
                    if self._root is not None:
                        self._root.remove(elem)
                elif self._depth == 0:
                    self.closed = True
        return done


class RawStream:
    """A plain TCP XML stream: sends raw bytes, parses what the server sends element by element."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.splitter = StreamSplitter()
        self.elements: asyncio.Queue[ET.Element] = asyncio.Queue()
        self.eof = False  # the TCP connection was closed
        self.received = b""

    @classmethod
    async def open(cls, port: int) -> "RawStream":
        reader, writer = await wait(
            asyncio.open_connection("127.0.0.1", port), f"TCP connection to port {port}"
        )
        return cls(reader, writer)

    @classmethod
    async def open_tls(cls, server, alpn: list[str] | None = None) -> "RawStream":
        """A direct-TLS (XEP-0368) stream to ``server.tls_port``, verifying the server's certificate
        for ``localhost`` and offering ``alpn`` (none when None)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server.cert))
        if alpn is not None:
            ctx.set_alpn_protocols(alpn)
        reader, writer = await wait(
            asyncio.open_connection("127.0.0.1", server.tls_port, ssl=ctx, server_hostname=DOMAIN),
            f"TLS connection to port {server.tls_port}",
        )
        return cls(reader, writer)

    @property
    def alpn(self) -> str | None:
        """The ALPN protocol the TLS handshake settled on."""
        tls = self.writer.get_extra_info("ssl_object")
        return tls.selected_alpn_protocol() if tls is not None else None

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _read_more(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            self.eof = True
            return
        self.received += data
        for elem in self.splitter.feed(data):
            self.elements.put_nowait(elem)

    @property
    def closed_by_server(self) -> bool:
        """Whether the server sent </stream:stream>."""
        return self.splitter.closed

    async def next_element(self, what: str, timeout: float = WAIT) -> ET.Element:
        """The next top-level element (child of <stream:stream>) the server sent."""

        async def get() -> ET.Element:
            while self.elements.empty():
                if self.eof:
                    raise AssertionError(
                        f"connection closed while waiting for {what}; received: {self.received!r}"
                    )
                await self._read_more()
            return self.elements.get_nowait()

        return await wait(get(), f"{what}; received so far: {self.received!r}", timeout)

    async def wait_closed(self, what: str, timeout: float = WAIT) -> None:
        """Reads (and parses) until the server closes the TCP connection."""

        async def drain() -> None:
            while not self.eof:
                try:
                    await self._read_more()
                except ET.ParseError:
                    pass  # what follows an error does not matter, only that it closes
                except (ConnectionResetError, BrokenPipeError):
                    self.eof = True

        await wait(drain(), what, timeout)

    async def features(self) -> ET.Element:
        """Sends the stream header and returns the server's <stream:features>."""
        await self.send(stream_header())
        el = await self.next_element("<stream:features>")
        assert el.tag == f"{{{NS_STREAM}}}features", f"expected stream features, got {el.tag}"
        return el

    async def close(self) -> None:
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5.0)
        except Exception:
            pass


def plain_auth(local: str, password: str) -> bytes:
    """A SASL PLAIN <auth/> (RFC 4616: authzid NUL authcid NUL password)."""
    payload = base64.b64encode(f"\0{local}\0{password}".encode()).decode()
    return f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>".encode()


def local_name(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def stream_error_condition(el: ET.Element) -> str | None:
    """The defined condition of a <stream:error>, or None if ``el`` is not one."""
    if el.tag != f"{{{NS_STREAM}}}error":
        return None
    for child in el:
        if child.tag.startswith(f"{{{NS_STREAMS_ERR}}}") and local_name(child) != "text":
            return local_name(child)
    return "<no condition>"
