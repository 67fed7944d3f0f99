"""Federation over XEP-0368 direct TLS: two presenced whose only s2s listener is ``[s2s] tls_bind`` (the STARTTLS
``bind`` is off), reaching each other through ``tls://`` static routes, or through ``_xmpps-server._tcp`` SRV
records from a small DNS server on loopback. Streams are authenticated with dialback (self-signed certificates,
no ``ca_file``), whose call back to the sender's domain goes over direct TLS too.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from dnslib.server import DNSServer

from conftest import free_port, write_config
from test_s2s import PASSWORD, Domain, subscribe_both_ways
from test_s2s_dns import Zone
from xmpp import run


class DirectDomain(Domain):
    """A domain whose peers reach it on its direct-TLS port only."""

    def configure_direct(self, routes: dict[str, Domain], nameserver: int | None = None) -> None:
        s2s = [f'tls_bind = "127.0.0.1:{self.s2s_port}"', 'idle_timeout = "60s"', 'connect_timeout = "5s"']
        if nameserver is not None:
            s2s.append(f'nameserver = "127.0.0.1:{nameserver}"')
        s2s.append("[s2s.routes]")
        s2s += [f'"{d.name}" = "tls://127.0.0.1:{d.s2s_port}"' for d in routes.values()]
        srv = self.server
        write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                     domain=self.name, s2s=tuple(s2s))
        for local in ("alice", "bob"):
            jid = f"{local}@{self.name}"
            out = srv.cli("user", "add", jid, "--password-stdin", stdin=PASSWORD + "\n")
            assert jid in out.stdout, out.stdout

    def log(self) -> str:
        return self.server.stderr_path.read_text(errors="replace")


def chat(a: Domain, b: Domain, words: str) -> None:
    async def scenario():
        alice = await a.connect("alice")
        bob = await b.connect("bob")
        try:
            await subscribe_both_ways(alice, bob)
            alice.xmpp.send_presence(pshow="away", pstatus=words)
            seen = await bob.presence_from(a.jid("alice"), show="away")
            assert seen["status"] == words
            alice.send_message(b.jid("bob"), words)
            msg = await bob.next_message("alice's message")
            assert msg["body"] == words and msg["from"].bare == a.jid("alice")
            bob.send_message(a.jid("alice"), "back: " + words)
            msg = await alice.next_message("bob's message")
            assert msg["body"] == "back: " + words and msg["from"].bare == b.jid("bob")
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run(scenario)


@pytest.fixture
def pair(binary: Path, tmp_path: Path):
    a = DirectDomain(binary, tmp_path / "a", "a.localhost")
    b = DirectDomain(binary, tmp_path / "b", "b.localhost")
    a.configure_direct({"b": b})
    b.configure_direct({"a": a})
    started = []
    try:
        for d in (a, b):
            d.server.start()
            started.append(d)
        yield a, b
    finally:
        for d in started:
            d.server.stop()


def test_direct_tls_port_speaks_alpn_xmpp_server_and_offers_no_starttls(pair):
    a, _ = pair
    ctx = ssl.create_default_context(cafile=str(a.server.cert))
    ctx.set_alpn_protocols(["xmpp-server"])
    with socket.create_connection(("127.0.0.1", a.s2s_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=a.name) as tls:
            assert tls.selected_alpn_protocol() == "xmpp-server"
            tls.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                        b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
                        b"from='z.localhost' to='a.localhost' version='1.0'>")
            got = b""
            while b"</stream:features>" not in got:
                chunk = tls.recv(4096)
                assert chunk, f"closed before the features: {got!r}"
                got += chunk
    features = got.split(b"<stream:features", 1)[1]
    # The stream is encrypted already: dialback is offered, STARTTLS is not.
    assert b"dialback" in features, got
    assert b"starttls" not in features, got


def test_federation_over_direct_tls_static_routes(pair):
    a, b = pair
    chat(a, b, "over direct TLS")
    # Nothing listens for STARTTLS: both directions (and the dialback call backs) came in over direct TLS.
    assert "inbound stream authenticated (dialback) peer=b.localhost" in a.log()
    assert "inbound stream authenticated (dialback) peer=a.localhost" in b.log()


def test_federation_over_direct_tls_found_by_xmpps_server_srv(binary: Path, tmp_path: Path):
    dns_port = free_port(udp_too=True)
    a = DirectDomain(binary, tmp_path / "a", "a.test")
    b = DirectDomain(binary, tmp_path / "b", "b.test")
    zone = Zone([
        *(f"_xmpps-server._tcp.{d.name}. 60 IN SRV 10 5 {d.s2s_port} xmpps.{d.name}." for d in (a, b)),
        *(f"xmpps.{d.name}. 60 IN A 127.0.0.1" for d in (a, b)),
    ])
    servers = [DNSServer(zone, port=dns_port, address="127.0.0.1", tcp=tcp) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    a.configure_direct({}, nameserver=dns_port)
    b.configure_direct({}, nameserver=dns_port)
    started = []
    try:
        for d in (a, b):
            d.server.start()
            started.append(d)
        chat(a, b, "found by _xmpps-server")
    finally:
        for d in started:
            d.server.stop()
        for s in servers:
            s.stop()
    asked = zone.questions()
    for d in (a, b):
        assert (f"_xmpps-server._tcp.{d.name}.", "SRV") in asked, asked
        assert (f"xmpps.{d.name}.", "A") in asked, asked
    assert "inbound stream authenticated (dialback) peer=b.test" in a.log()
    assert "inbound stream authenticated (dialback) peer=a.test" in b.log()
