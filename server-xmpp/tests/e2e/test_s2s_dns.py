"""Federation finding peers by DNS (RFC 6120 §3.2.1: SRV ``_xmpp-server._tcp``, then A/AAAA): two presenced with
no static routes, each asking a small DNS server on loopback (``[s2s] nameserver``) that serves only the records
the test gives it (dnslib). The domains are under ``.test`` (RFC 6761): a resolver answers ``*.localhost`` itself
and never asks a server about it. Streams are authenticated with STARTTLS and dialback (XEP-0220), whose call back to
the sender's domain is found by DNS too.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, DNSLabel
from dnslib.server import BaseResolver, DNSServer

from conftest import Server, free_port, write_config
from test_s2s_prosody import connect, subscribe_both_ways
from xmpp import run, wait

PASSWORD = "interop-secret-1"  # what test_s2s_prosody.connect signs in with


class Zone(BaseResolver):
    """Answers from a fixed list of records: NXDOMAIN for a name it has none for, an empty answer for a type it
    lacks. Remembers every question, for the test to see what was asked."""

    def __init__(self, records: list[str]):
        self.records = [rr for line in records for rr in RR.fromZone(line)]
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        q = request.q
        with self.lock:
            self.asked.append((str(q.qname).lower(), QTYPE[q.qtype]))
        reply = request.reply()
        names = {rr.rname for rr in self.records}
        answers = [rr for rr in self.records if rr.rname == q.qname and rr.rtype == q.qtype]
        for rr in answers:
            reply.add_answer(rr)
        if not answers and DNSLabel(q.qname) not in names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def questions(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.asked)


@pytest.fixture
def federation(binary: Path, tmp_path: Path):
    """a.test and b.test, each published by SRV under another host name, and a DNS server saying so."""
    dns_port = free_port(udp_too=True)
    ports = {"a.test": free_port(), "b.test": free_port()}
    zone = Zone([
        *(f"_xmpp-server._tcp.{d}. 60 IN SRV 10 5 {p} xmpp.{d}." for d, p in ports.items()),
        *(f"xmpp.{d}. 60 IN A 127.0.0.1" for d in ports),
        # A domain saying it has no XMPP server (RFC 2782's target '.').
        "_xmpp-server._tcp.noxmpp.test. 60 IN SRV 0 0 0 .",
    ])
    servers = [DNSServer(zone, port=dns_port, address="127.0.0.1", tcp=tcp) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    made = {}
    for domain, s2s_port in ports.items():
        root = tmp_path / domain
        root.mkdir()
        srv = Server(binary=binary, root=root, port=free_port())
        s2s = (f'bind = "127.0.0.1:{s2s_port}"', 'connect_timeout = "5s"', f'nameserver = "127.0.0.1:{dns_port}"')
        write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                     domain=domain, s2s=s2s)
        for local in ("alice", "bob"):
            out = srv.cli("user", "add", f"{local}@{domain}", "--password-stdin", stdin=PASSWORD + "\n")
            assert f"{local}@{domain}" in out.stdout, out.stdout
        made[domain] = srv
    started = []
    try:
        for srv in made.values():
            srv.start()
            started.append(srv)
        yield made["a.test"], made["b.test"], zone
    finally:
        for srv in started:
            srv.stop()
        for s in servers:
            s.stop()


def test_peers_are_found_by_srv_and_their_users_chat_both_ways(federation):
    a, b, zone = federation

    async def scenario():
        alice = await connect("alice@a.test", a.port, a.cert)
        bob = await connect("bob@b.test", b.port, b.cert)
        try:
            await subscribe_both_ways(alice, bob)
            alice.xmpp.send_presence(pshow="away", pstatus="found by SRV")
            seen = await bob.presence_from("alice@a.test", show="away")
            assert seen["status"] == "found by SRV"
            alice.send_message("bob@b.test", "over DNS")
            msg = await bob.next_message("alice's message")
            assert msg["body"] == "over DNS"
            bob.send_message("alice@a.test", "and back")
            msg = await alice.next_message("bob's message")
            assert msg["body"] == "and back"
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run(scenario)
    # Each server asked for the other's SRV record, then the target's address.
    asked = zone.questions()
    for domain in ("a.test", "b.test"):
        assert (f"_xmpp-server._tcp.{domain}.", "SRV") in asked, asked
        assert (f"xmpp.{domain}.", "A") in asked, asked


def test_domains_that_cannot_be_found_bounce_as_not_found(federation):
    a, _, zone = federation

    async def scenario():
        alice = await connect("alice@a.test", a.port, a.cert)
        errors: asyncio.Queue = asyncio.Queue()
        alice.xmpp.add_event_handler("message_error", errors.put_nowait)
        try:
            # No such domain (NXDOMAIN for its SRV record and its address alike).
            alice.send_message("someone@nowhere.test", "lost?")
            err = await wait(errors.get(), "the bounce of the message to nowhere.test")
            assert err["error"]["condition"] == "remote-server-not-found", err
            assert err["from"].bare == "someone@nowhere.test", err
            # A domain whose SRV record says it offers no XMPP service.
            alice.send_message("someone@noxmpp.test", "lost too?")
            err = await wait(errors.get(), "the bounce of the message to noxmpp.test")
            assert err["error"]["condition"] == "remote-server-not-found", err
        finally:
            await alice.disconnect()

    run(scenario)
    asked = zone.questions()
    assert ("_xmpp-server._tcp.nowhere.test.", "SRV") in asked, asked
    assert ("_xmpp-server._tcp.noxmpp.test.", "SRV") in asked, asked
