"""Federation (RFC 6120 server-to-server, XEP-0220 dialback): two or three presenced with different domains on
loopback, each with static ``[s2s.routes]`` to the others, and a slixmpp user on each side.

Every stream in these tests is authenticated with server dialback (XEP-0220, keys per XEP-0185) over STARTTLS
with the servers' self-signed certificates (no ``ca_file``: no certificate is trusted); SASL EXTERNAL is tested in
test_s2s_external.py.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from slixmpp import JID, ClientXMPP

from conftest import Server, free_port, write_config
from xmpp import NS_STREAM, Client, RawStream, run, stream_error_condition, wait, wait_until

PASSWORD = "fed-secret-1"


class Domain:
    """One presenced serving ``name``, with its s2s port."""

    def __init__(self, binary: Path, root: Path, name: str):
        root.mkdir()
        self.name = name
        self.s2s_port = free_port()
        self.server = Server(binary=binary, root=root, port=free_port())

    def configure(self, routes: dict[str, "Domain"], deny: tuple[str, ...] = ()) -> None:
        s2s = [f'bind = "127.0.0.1:{self.s2s_port}"', "idle_timeout = \"60s\"", 'connect_timeout = "5s"']
        if deny:
            s2s.append("deny = [" + ", ".join(f'"{d}"' for d in deny) + "]")
        s2s.append("[s2s.routes]")
        s2s += [f'"{d.name}" = "127.0.0.1:{d.s2s_port}"' for d in routes.values()]
        srv = self.server
        write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                     domain=self.name, s2s=tuple(s2s))
        for local in ("alice", "bob", "carol"):
            jid = f"{local}@{self.name}"
            out = srv.cli("user", "add", jid, "--password-stdin", stdin=PASSWORD + "\n")
            assert jid in out.stdout, out.stdout

    def jid(self, local: str) -> str:
        return f"{local}@{self.name}"

    def client_tls(self) -> ssl.SSLContext:
        """What this domain's users trust: exactly its server's certificate."""
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.server.cert))

    async def connect(self, local: str) -> Client:
        """A slixmpp user of this domain with initial presence, trusting exactly this server's certificate."""
        xmpp = ClientXMPP(f"{local}@{self.name}/fed", PASSWORD)
        xmpp.ssl_context = self.client_tls()
        xmpp.enable_starttls = True
        xmpp.enable_direct_tls = False
        xmpp.enable_plaintext = False
        xmpp.use_ipv6 = False
        xmpp.whitespace_keepalive = False
        xmpp.auto_authorize = None
        xmpp.auto_subscribe = False
        for plugin in ("xep_0030", "xep_0199"):
            xmpp.register_plugin(plugin)
        client = Client(xmpp)
        xmpp.connect("127.0.0.1", self.server.port)
        try:
            await wait(client.session_started.wait(), f"session_start of {local}@{self.name}")
            await client.roster_items()
            xmpp.send_presence()
        except BaseException:
            await client.disconnect()
            raise
        return client


@pytest.fixture
def domains(binary: Path, tmp_path: Path):
    """a.localhost and b.localhost, routed to each other, and c.localhost, which a.localhost denies."""
    a = Domain(binary, tmp_path / "a", "a.localhost")
    b = Domain(binary, tmp_path / "b", "b.localhost")
    c = Domain(binary, tmp_path / "c", "c.localhost")
    a.configure({"b": b, "c": c}, deny=("c.localhost",))
    b.configure({"a": a})
    c.configure({"a": a})
    started = []
    try:
        for d in (a, b, c):
            d.server.start()
            started.append(d)
        yield a, b, c
    finally:
        for d in started:
            d.server.stop()


def message_errors(client: Client) -> asyncio.Queue:
    """Bounces: slixmpp reports an error message without a <body/> as 'message_error' only."""
    errors: asyncio.Queue = asyncio.Queue()
    client.xmpp.add_event_handler("message_error", errors.put_nowait)
    return errors


async def subscribe_both_ways(x: Client, y: Client) -> None:
    """x and y subscribe to each other across the federation until both rosters say 'both'.

    Each approves the other in advance (RFC 6121 §3.4), so this holds whether the peer's policy approves
    federated requests itself or asks its user.
    """
    x_bare, y_bare = x.jid.bare, y.jid.bare
    x.xmpp.send_presence(pto=y_bare, ptype="subscribed")
    y.xmpp.send_presence(pto=x_bare, ptype="subscribed")
    x.xmpp.send_presence(pto=y_bare, ptype="subscribe")
    y.xmpp.send_presence(pto=x_bare, ptype="subscribe")

    async def both() -> bool:
        items = (await x.roster_items()).get(y_bare, {}), (await y.roster_items()).get(x_bare, {})
        return all(i.get("subscription") == "both" for i in items)

    await wait_until(both, f"{x_bare} and {y_bare} to reach subscription='both'")


def test_federated_users_subscribe_see_presence_and_chat_both_ways(domains):
    a, b, _ = domains

    async def scenario():
        alice = await a.connect("alice")
        bob = await b.connect("bob")
        try:
            await subscribe_both_ways(alice, bob)
            # Each side's presence reaches the other (probes answered, broadcasts carried).
            alice.xmpp.send_presence(pshow="away", pstatus="at lunch")
            seen = await alice_seen(bob, a.jid("alice"), "away")
            assert seen["status"] == "at lunch"
            bob.xmpp.send_presence(pshow="dnd", pstatus="in a meeting")
            seen = await alice_seen(alice, b.jid("bob"), "dnd")
            assert seen["status"] == "in a meeting"
            # Messages both ways, to the bare address.
            alice.send_message(b.jid("bob"), "hello from a")
            msg = await bob.next_message("alice's message")
            assert msg["body"] == "hello from a"
            assert msg["from"].bare == a.jid("alice")
            bob.send_message(a.jid("alice"), "hello from b")
            msg = await alice.next_message("bob's message")
            assert msg["body"] == "hello from b"
            assert msg["from"].bare == b.jid("bob")
            # An IQ to a remote full address is carried and answered (bob's client answers pings).
            pong = await wait(
                alice.xmpp.plugin["xep_0199"].send_ping(bob.jid, timeout=10), "bob's answer to alice's ping"
            )
            assert pong["type"] == "result", pong
            assert pong["from"] == bob.jid
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run(scenario)


async def alice_seen(watcher: Client, bare: str, show: str):
    return await watcher.presence_from(bare, show=show)


def test_a_denied_domain_is_neither_reached_nor_accepted(domains):
    a, _, c = domains

    async def scenario():
        alice = await a.connect("alice")
        carol = await c.connect("carol")
        try:
            # a.localhost denies c.localhost: its route is not used, and the message bounces at once.
            alice_errors, carol_errors = message_errors(alice), message_errors(carol)
            alice.send_message(c.jid("carol"), "never delivered")
            err = await wait(alice_errors.get(), "the bounce of alice's message to a denied domain")
            assert err["error"]["condition"] == "remote-server-not-found", err
            # c.localhost reaches a.localhost, which refuses its dialback: carol's message bounces to her.
            carol.send_message(a.jid("alice"), "refused")
            err = await wait(carol_errors.get(), "the bounce of carol's message to a domain that denies hers")
            assert err["error"]["condition"] in ("remote-server-timeout", "remote-server-not-found"), err
            # Nothing reached alice.
            await ping(alice, a.name)
            assert all(m["body"] != "refused" for m in drain_messages(alice))
        finally:
            await alice.disconnect()
            await carol.disconnect()

    run(scenario)


async def ping(client: Client, domain: str) -> None:
    """A XEP-0199 ping to the client's own server, answered: a barrier for what was sent before it."""
    iq = await wait(client.xmpp.plugin["xep_0199"].send_ping(JID(domain), timeout=10), f"ping result for {client.jid}")
    assert iq["type"] == "result", iq


def drain_messages(client: Client) -> list:
    out = []
    while not client.messages.empty():
        out.append(client.messages.get_nowait())
    return out


def test_a_peer_killed_mid_conversation_bounces_the_next_message(domains):
    a, b, _ = domains

    async def scenario():
        alice = await a.connect("alice")
        bob = await b.connect("bob")
        try:
            alice.send_message(b.jid("bob"), "first")
            msg = await bob.next_message("alice's first message")
            assert msg["body"] == "first"
            await bob.disconnect()
            b.server.kill()
            # The stream to b.localhost is gone; the next message cannot be delivered and comes back.
            errors = message_errors(alice)
            alice.send_message(b.jid("bob"), "second")
            err = await wait(errors.get(), "the bounce of alice's message to the killed peer")
            assert err["error"]["condition"] == "remote-server-timeout", err
            # Alice's own server is unharmed.
            await ping(alice, a.name)
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run(scenario)


S2S_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
    f"xmlns:stream='{NS_STREAM}' from='{{frm}}' to='{{to}}' version='1.0'>"
)


def test_a_hostile_peer_gets_stream_errors_and_local_users_are_unharmed(domains):
    a, b, _ = domains

    async def scenario():
        alice = await a.connect("alice")
        bob = await a.connect("bob")
        try:
            # Garbage after the header: not-well-formed, and the connection closes.
            raw = await RawStream.open(a.s2s_port)
            await raw.send(S2S_HEADER.format(frm="evil.localhost", to=a.name).encode())
            features = await raw.next_element("s2s stream features")
            assert features.find(f"{{urn:ietf:params:xml:ns:xmpp-tls}}starttls") is not None
            await raw.send(b"<<<not xml at all&&&")
            err = await raw.next_element("the stream error for garbage")
            assert stream_error_condition(err) == "not-well-formed", err
            await raw.wait_closed("the server to close the garbage stream")
            await raw.close()
            # A stanza before any dialback: not-authorized (TLS is required first: policy-violation is fine
            # too), and nothing reaches the local user.
            raw = await RawStream.open(a.s2s_port)
            await raw.send(S2S_HEADER.format(frm=b.name, to=a.name).encode())
            await raw.next_element("s2s stream features")
            await raw.send(
                f"<message from='mallory@{b.name}/x' to='{a.jid('alice')}'><body>spoofed</body></message>".encode()
            )
            err = await raw.next_element("the stream error for an unauthenticated stanza")
            assert stream_error_condition(err) in ("not-authorized", "policy-violation"), err
            await raw.wait_closed("the server to close the unauthenticated stream")
            await raw.close()
            # A header for a domain not served here: host-unknown.
            raw = await RawStream.open(a.s2s_port)
            await raw.send(S2S_HEADER.format(frm=b.name, to="nowhere.localhost").encode())
            err = await raw.next_element("the stream error for an unknown host")
            assert stream_error_condition(err) == "host-unknown", err
            await raw.close()
            # Local users still talk.
            alice.send_message(a.jid("bob"), "still here")
            msg = await bob.next_message("alice's local message")
            assert msg["body"] == "still here"
            assert all(m["body"] != "spoofed" for m in drain_messages(alice))
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run(scenario)
