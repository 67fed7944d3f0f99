"""End-to-end XEP-0368 (direct TLS): the second c2s listener where TLS starts with the first byte.

The `server` fixture opens it on a free loopback port (`Server.tls_port`); slixmpp reaches it with
direct TLS only (`enable_direct_tls`, no STARTTLS), and raw TLS sockets check what is offered after
the handshake and what happens to a client that speaks plaintext there.
"""

from __future__ import annotations

import ssl
import uuid

from conftest import Server
from xmpp import (
    DOMAIN,
    NS_SASL,
    NS_STREAM,
    NS_TLS,
    RawStream,
    StreamSplitter,
    clients,
    connect,
    local_name,
    plain_auth,
    run,
    stream_header,
    wait,
)

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def body() -> str:
    return f"e2e {uuid.uuid4()}"


def test_direct_tls_client_signs_in_and_chats_with_a_starttls_client(server: Server) -> None:
    async def scenario() -> None:
        async with clients(
            connect(server, "alice", "direct", direct_tls=True),
            connect(server, "bob", "starttls"),
        ) as (alice, bob):
            # alice's stream is TLS from the start: no STARTTLS was negotiated, and the peer is the
            # same certificate the STARTTLS port uses.
            assert "starttls" not in alice.xmpp.features, alice.xmpp.features
            tls = alice.xmpp.transport.get_extra_info("ssl_object")
            assert tls is not None, "the direct-TLS transport is not TLS"
            pem = server.cert.read_text()
            first = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
            assert tls.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(first)
            assert str(alice.jid) == f"{ALICE}/direct"
            assert "starttls" in bob.xmpp.features

            hello, answer = body(), body()
            alice.send_message(f"{BOB}/starttls", hello)
            got = await bob.next_message("alice's message over the direct-TLS port")
            assert got["body"] == hello and got["from"] == f"{ALICE}/direct"
            bob.send_message(f"{ALICE}/direct", answer)
            got = await alice.next_message("bob's answer")
            assert got["body"] == answer and got["from"] == f"{BOB}/starttls"
            await alice.ping_server()

    run(scenario)


def test_direct_tls_offers_sasl_not_starttls_and_speaks_alpn_xmpp_client(server: Server) -> None:
    async def scenario() -> None:
        raw = await RawStream.open_tls(server, alpn=["xmpp-client"])
        try:
            assert raw.alpn == "xmpp-client"
            features = await raw.features()
            names = {local_name(f) for f in features}
            assert "starttls" not in names and features.find(f"{{{NS_TLS}}}starttls") is None, names
            mechs = features.find(f"{{{NS_SASL}}}mechanisms")
            assert mechs is not None, "no SASL mechanisms after direct TLS"
            offered = {m.text for m in mechs}
            assert "PLAIN" in offered, offered  # PLAIN is fine: the stream is encrypted
            await raw.send(plain_auth("alice", server.users["alice"]))
            el = await raw.next_element("the SASL outcome")
            assert local_name(el) == "success", el.tag
            # The stream restarts after SASL (RFC 6120 §6.4.6): a new document on the same TLS connection.
            raw.splitter = StreamSplitter()
            await raw.send(stream_header())
            el = await raw.next_element("post-auth features")
            assert el.tag == f"{{{NS_STREAM}}}features"
            assert el.find(f"{{{NS_TLS}}}starttls") is None
        finally:
            await raw.close()

        # A client without ALPN (slixmpp sends none) is served too; one that asks only for another
        # protocol is refused in the handshake.
        raw = await RawStream.open_tls(server)
        try:
            assert raw.alpn is None
            await raw.features()
        finally:
            await raw.close()
        refused = False
        try:
            other = await RawStream.open_tls(server, alpn=["h2"])
            await other.close()
        except (ssl.SSLError, ConnectionResetError):
            refused = True
        assert refused, "a TLS client offering only ALPN h2 was accepted"

    run(scenario)


def test_plaintext_on_the_direct_tls_port_is_dropped_without_harming_others(server: Server) -> None:
    async def scenario() -> None:
        async with clients(
            connect(server, "alice", "direct", direct_tls=True),
            connect(server, "bob", "starttls"),
        ) as (alice, bob):
            # A naive client that speaks a plaintext XMPP stream (or anything else) to the TLS port:
            # it gets no XMPP stream back, only (at most) a TLS alert, and the connection closes.
            plain = await RawStream.open(server.tls_port)
            try:
                await plain.send(stream_header())
                await plain.send(f"<starttls xmlns='{NS_TLS}'/>".encode())
                await plain.wait_closed("the direct-TLS port to close a plaintext connection")
                assert b"<stream" not in plain.received and b"<?xml" not in plain.received, plain.received
            finally:
                await plain.close()
            # Garbage of TLS-record shape does no harm either.
            junk = await RawStream.open(server.tls_port)
            try:
                await junk.send(b"\x16\x03\x01\x00\x05hello" * 50)
                await junk.wait_closed("the direct-TLS port to close a garbage connection")
            finally:
                await junk.close()

            # Both ports still serve: the signed-in clients chat, and new direct-TLS clients sign in.
            text = body()
            bob.send_message(f"{ALICE}/direct", text)
            assert (await alice.next_message("a message after the plaintext attempt"))["body"] == text
            await alice.ping_server()
            await bob.ping_server()
            async with clients(connect(server, "carol", "late", direct_tls=True)) as (carol,):
                await carol.ping_server()

    run(scenario)


def test_a_silent_tls_peer_does_not_hold_up_the_direct_tls_port(server: Server) -> None:
    """A TLS connection that never sends a stream header only waits out its own handshake
    timeout: another client signs in on the same port meanwhile."""

    async def scenario() -> None:
        idle = await RawStream.open_tls(server)
        try:
            async with clients(connect(server, "dave", "beside", direct_tls=True)) as (dave,):
                await dave.ping_server()
        finally:
            await idle.close()

    run(scenario)
