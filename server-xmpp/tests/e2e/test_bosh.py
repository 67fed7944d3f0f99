"""End-to-end XMPP over BOSH (XEP-0206, XEP-0124) at ``/http-bind`` on the HTTP listener (``[http] bind``).

A raw BOSH client (aiohttp) checks the session protocol request by request: the creation response's attributes
and CORS header, SASL and ``xmpp:restart``, binding, a held request answered by a slixmpp contact's message,
a message out to that contact, requests out of order, ``wait``, ``pause``, ``terminate`` (the contact sees the
session go offline), the terminal conditions (``bad-request``, ``item-not-found``, ``host-unknown``), the
methods served, the refusal to authenticate over plain HTTP on a non-loopback bind, and the end of a session
whose client vanished after ``[http] bosh_inactivity``. Converse.js in headless Chromium over BOSH is in
``test_converse.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
import xml.etree.ElementTree as ET

import aiohttp

from conftest import Server
from test_websocket import restart_with
from xmpp import DOMAIN, NS_SASL, NS_STREAM, clients, connect, local_name, make_mutual, run, wait

NS_HTTPBIND = "http://jabber.org/protocol/httpbind"
NS_XBOSH = "urn:xmpp:xbosh"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def bosh_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.http_port}/http-bind"


class Bosh:
    """A raw BOSH client: each ``post`` is one request with the next rid (or the one given)."""

    def __init__(self, server: Server):
        self.url = bosh_url(server)
        self.http = aiohttp.ClientSession()
        self.rid = 4000
        self.sid: str | None = None
        self.created: ET.Element | None = None

    async def raw(self, body: str | bytes, headers: dict | None = None) -> tuple[int, str, dict]:
        async with self.http.post(
            self.url, data=body, headers={"Content-Type": "text/xml; charset=utf-8", **(headers or {})}
        ) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    def body(self, children: str = "", rid: int | None = None, **attrs: str) -> str:
        if rid is None:
            self.rid += 1
            rid = self.rid
        extra = "".join(f" {k.replace('__', ':').replace('_', '-')}='{v}'" for k, v in attrs.items())
        sid = f" sid='{self.sid}'" if self.sid else ""
        return (
            f"<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' rid='{rid}'{sid}{extra}>{children}</body>"
        )

    async def post(self, children: str = "", rid: int | None = None, **attrs: str) -> ET.Element:
        status, text, _ = await wait(self.raw(self.body(children, rid, **attrs)), f"answer to {children!r}")
        assert status == 200, (status, text)
        el = ET.fromstring(text)
        assert el.tag == f"{{{NS_HTTPBIND}}}body", text
        return el

    async def create(self, wait_s: int = 10, to: str = DOMAIN) -> ET.Element:
        created = await self.post(
            to=to, wait=str(wait_s), hold="1", ver="1.6", xmpp__version="1.0", xml__lang="en",
            content="text/xml; charset=utf-8",
        )
        self.sid = created.get("sid")
        self.created = created
        return created

    async def until(self, what: str, pred) -> ET.Element:
        """Posts empty requests until an answer holds a child matching ``pred``; returns that child."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = await self.post()
            assert answer.get("type") != "terminate", ET.tostring(answer)
            for child in answer:
                if pred(child):
                    return child
        raise AssertionError(f"no {what} within 20 s")

    async def close(self) -> None:
        await self.http.close()


def plain(local: str, password: str) -> str:
    token = base64.b64encode(f"\0{local}\0{password}".encode()).decode()
    return f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>"


def features_in(el: ET.Element) -> ET.Element | None:
    return el.find(f"{{{NS_STREAM}}}features")


async def sign_in(b: Bosh, server: Server, local: str, resource: str) -> str:
    """Creates the session, authenticates with PLAIN, restarts and binds; returns the bound JID."""
    created = await b.create()
    features = features_in(created)
    if features is None:
        features = await b.until("stream features", lambda c: c.tag == f"{{{NS_STREAM}}}features")
    assert features.find(f"{{{NS_SASL}}}mechanisms") is not None, ET.tostring(features)
    answer = await b.post(plain(local, server.users[local]))
    success = answer[0] if len(answer) else await b.until("the SASL outcome", lambda c: True)
    assert local_name(success) == "success", ET.tostring(success)
    restarted = await b.post(xmpp__restart="true")
    features = features_in(restarted)
    if features is None:
        features = await b.until("features after restart", lambda c: c.tag == f"{{{NS_STREAM}}}features")
    assert features.find(f"{{{NS_BIND}}}bind") is not None, ET.tostring(features)
    answer = await b.post(
        f"<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='{NS_BIND}'><resource>{resource}</resource>"
        "</bind></iq>"
    )
    iq = answer[0] if len(answer) else await b.until("the bind result", lambda c: c.tag.endswith("iq"))
    assert iq.get("type") == "result", ET.tostring(iq)
    return iq.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid").text


def test_a_bosh_session_signs_in_chats_with_a_slixmpp_contact_and_terminates(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice", "tcp"), connect(server, "bob", "setup")) as (a, b):
            await make_mutual(a, b)
        async with clients(connect(server, "bob", "tcp")) as (bob,):
            b = Bosh(server)
            try:
                status, text, headers = await b.raw(b.body(to=DOMAIN, wait="10", hold="1", ver="1.6",
                                                            xmpp__version="1.0"))
                assert status == 200 and headers.get("Access-Control-Allow-Origin") == "*", (status, headers)
                assert headers.get("Content-Type", "").startswith("text/xml"), headers
                created = ET.fromstring(text)
                b.sid = created.get("sid")
                assert b.sid and len(b.sid) >= 32, text
                a = created.attrib
                assert a["wait"] == "10" and a["hold"] == "1" and a["requests"] == "2", a
                assert a["ver"] == "1.6" and a["from"] == DOMAIN and a["secure"] == "true", a
                assert {"inactivity", "polling", "maxpause"} <= set(a), a
                assert a[f"{{{NS_XBOSH}}}version"] == "1.0", a
                assert a[f"{{{NS_XBOSH}}}restartlogic"] == "true", a
                features = features_in(created)
                if features is None:
                    features = await b.until("features", lambda c: c.tag == f"{{{NS_STREAM}}}features")
                mechs = {m.text for m in features.find(f"{{{NS_SASL}}}mechanisms")}
                assert mechs == {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, mechs
                # The rest of the sign-in on the same session.
                answer = await b.post(plain("alice", server.users["alice"]))
                assert local_name(answer[0]) == "success", ET.tostring(answer)
                restarted = await b.post(xmpp__restart="true")
                features = features_in(restarted)
                if features is None:
                    features = await b.until("features", lambda c: c.tag == f"{{{NS_STREAM}}}features")
                assert features.find(f"{{{NS_BIND}}}bind") is not None
                answer = await b.post(
                    f"<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='{NS_BIND}'>"
                    "<resource>bosh</resource></bind></iq>"
                )
                assert answer[0].find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid").text == f"{ALICE}/bosh"
                await b.post("<presence xmlns='jabber:client'/>")
                seen = await bob.presence_from(ALICE)
                assert str(seen["from"]) == f"{ALICE}/bosh", seen
                # A held request is answered when bob's message arrives.
                body = f"to bosh {uuid.uuid4()}"
                held = asyncio.create_task(
                    b.until("bob's message", lambda c: c.tag == "{jabber:client}message"
                            and c.findtext("{jabber:client}body") == body)
                )
                await asyncio.sleep(0.5)
                bob.send_message(f"{ALICE}/bosh", body)
                msg = await wait(held, "the held request to carry bob's message")
                assert msg.get("from") == f"{BOB}/tcp", ET.tostring(msg)
                # And out: a message in a request reaches bob.
                reply = f"from bosh {uuid.uuid4()}"
                await b.post(
                    f"<message xmlns='jabber:client' to='{BOB}/tcp' type='chat'><body>{reply}</body></message>"
                )
                got = await bob.next_message("the BOSH client's message")
                assert got["body"] == reply and str(got["from"]) == f"{ALICE}/bosh", got
                # Requests out of order: the later rid waits for the earlier one and both are answered.
                first, second = b.rid + 1, b.rid + 2
                b.rid = second
                late = asyncio.create_task(b.post(rid=second))
                await asyncio.sleep(0.3)
                assert not late.done(), "a request ahead of its predecessor was answered"
                early = await b.post(rid=first)
                assert early.get("type") != "terminate", ET.tostring(early)
                bob.send_message(f"{ALICE}/bosh", "wake")
                await wait(late, "the out-of-order request")
                # terminate: the session ends, bob sees alice's BOSH session go offline.
                bye = await b.post("<presence xmlns='jabber:client' type='unavailable'/>", type="terminate")
                assert bye.get("type") == "terminate" and bye.get("condition") is None, ET.tostring(bye)
                while True:
                    pres = await wait(bob.presences.get(), "alice's unavailable presence")
                    if str(pres["from"]) == f"{ALICE}/bosh" and pres["type"] == "unavailable":
                        break
                gone = await b.post()
                assert gone.get("type") == "terminate" and gone.get("condition") == "item-not-found", (
                    ET.tostring(gone)
                )
            finally:
                await b.close()

    run(scenario)


def test_wait_pause_and_the_rid_window(server: Server) -> None:
    async def scenario() -> None:
        b = Bosh(server)
        try:
            await sign_in(b, server, "alice", "w")
            # Nothing to say: the held request answers empty when its wait (2 s) runs out.
            b2 = Bosh(server)
            try:
                created = await b2.create(wait_s=2)
                assert created.get("wait") == "2"
                await b2.post(plain("alice", server.users["alice"]))
                started = time.monotonic()
                answer = await b2.post()
                took = time.monotonic() - started
                assert len(answer) == 0 and answer.get("type") is None, ET.tostring(answer)
                assert 1.5 <= took <= 6, took
            finally:
                await b2.close()
            # pause: answered at once; the session lives on.
            paused = await b.post(pause="5")
            assert paused.get("type") is None, ET.tostring(paused)
            await b.post(f"<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
            # A pause beyond maxpause is a policy violation.
            too_long = int(b.created.get("maxpause")) + 1
            refused = await b.post(pause=str(too_long))
            assert refused.get("type") == "terminate", ET.tostring(refused)
            assert refused.get("condition") == "policy-violation", ET.tostring(refused)

            # A rid beyond the window ends the session with item-not-found.
            c = Bosh(server)
            try:
                await c.create()
                beyond = await c.post(rid=c.rid + 5)
                assert beyond.get("type") == "terminate", ET.tostring(beyond)
                assert beyond.get("condition") == "item-not-found", ET.tostring(beyond)
                after = await c.post()
                assert after.get("condition") == "item-not-found", ET.tostring(after)
            finally:
                await c.close()
        finally:
            await b.close()

    run(scenario)


def test_bad_requests_end_only_their_own_session(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "bob", "tcp")) as (bob,):
            good = Bosh(server)
            bad = Bosh(server)
            try:
                jid = await sign_in(good, server, "alice", "good")
                for junk in (b"not xml", b"<body rid='1' xmlns='urn:wrong'/>", b"\xff\xfe",
                             f"<body xmlns='{NS_HTTPBIND}'/>".encode(),
                             f"<body xmlns='{NS_HTTPBIND}' rid='1'><message></body>".encode()):
                    status, text, headers = await bad.raw(junk)
                    el = ET.fromstring(text)
                    assert status == 200 and el.get("type") == "terminate", (junk, status, text)
                    assert el.get("condition") == "bad-request", (junk, text)
                    assert headers.get("Access-Control-Allow-Origin") == "*"
                # Unknown session, unknown domain.
                bad.sid = "0" * 32
                unknown = await bad.post()
                assert unknown.get("condition") == "item-not-found", ET.tostring(unknown)
                bad.sid = None
                wrong = await bad.create(to="elsewhere.example")
                assert wrong.get("condition") == "host-unknown", ET.tostring(wrong)
                # An element the stream parser refuses inside a well-formed body (an unbound prefix): the
                # stream ends with its stream error, carried by a remote-stream-error terminate.
                await sign_in(bad, server, "bob", "bad")
                broken = await bad.post("<x:message xmlns='jabber:client'/>")
                while broken.get("type") != "terminate":
                    broken = await bad.post()
                assert broken.get("condition") == "remote-stream-error", ET.tostring(broken)
                assert broken.find(f"{{{NS_STREAM}}}error") is not None, ET.tostring(broken)
                # The other session noticed nothing.
                body = f"still here {uuid.uuid4()}"
                await good.post("<presence xmlns='jabber:client'/>")
                bob.send_message(jid, body)
                msg = await good.until("bob's message", lambda c: c.findtext("{jabber:client}body") == body)
                assert msg is not None
                # Methods: POST and the CORS preflight only.
                async with aiohttp.ClientSession() as http:
                    async with http.get(bosh_url(server)) as resp:
                        assert resp.status == 405, resp.status
                    async with http.options(
                        bosh_url(server),
                        headers={"Origin": "http://example.org", "Access-Control-Request-Method": "POST"},
                    ) as resp:
                        assert resp.status in (200, 204), resp.status
                        assert resp.headers["Access-Control-Allow-Origin"] == "*"
                        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
                        assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
            finally:
                await good.close()
                await bad.close()

    run(scenario)


def test_plain_http_on_a_non_loopback_bind_refuses_bosh_authentication(server_files: Server) -> None:
    restart_with(server_files, http_host="0.0.0.0")
    server = server_files

    async def scenario() -> None:
        b = Bosh(server)
        try:
            created = await b.create()
            assert created.get("secure") == "false", created.attrib
            features = features_in(created)
            if features is None:
                features = await b.until("features", lambda c: c.tag == f"{{{NS_STREAM}}}features")
            assert features.find(f"{{{NS_SASL}}}mechanisms") is None, ET.tostring(features)
            answer = await b.post(plain("alice", server.users["alice"]))
            children = list(answer)
            while not any(local_name(c) == "failure" for c in children):
                assert answer.get("type") != "terminate" or children, ET.tostring(answer)
                answer = await b.post()
                children += list(answer)
            failure = next(c for c in children if local_name(c) == "failure")
            assert failure.find(f"{{{NS_SASL}}}encryption-required") is not None, ET.tostring(failure)
        finally:
            await b.close()

    try:
        run(scenario)
    finally:
        server.stop()


def test_a_vanished_bosh_client_is_ended_after_inactivity(server_files: Server) -> None:
    restart_with(server_files, http=('bosh_inactivity = "2s"', 'bosh_max_wait = "1s"'))
    server = server_files

    async def scenario() -> None:
        async with clients(connect(server, "alice", "tcp"), connect(server, "bob", "setup")) as (a, b):
            await make_mutual(a, b)
        async with clients(connect(server, "bob", "tcp")) as (bob,):
            b = Bosh(server)
            try:
                await sign_in(b, server, "alice", "gone")
                # The configured settings are the session's: a client asking for 10 s gets [http] bosh_max_wait.
                assert b.created.get("inactivity") == "2" and b.created.get("wait") == "1", b.created.attrib
                await b.post("<presence xmlns='jabber:client'/>")
                seen = await bob.presence_from(ALICE)
                assert str(seen["from"]) == f"{ALICE}/gone", seen
                # A last request, answered within its 1 s wait; then the client vanishes without terminate.
                await b.post()
                vanished = time.monotonic()
                while True:
                    pres = await wait(bob.presences.get(), "alice's vanished BOSH session to end")
                    if str(pres["from"]) == f"{ALICE}/gone" and pres["type"] == "unavailable":
                        break
                took = time.monotonic() - vanished
                assert 1.5 <= took <= 10, f"ended {took:.1f} s after the last request (inactivity is 2 s)"
                gone = await b.post()
                assert gone.get("type") == "terminate", ET.tostring(gone)
                assert gone.get("condition") == "item-not-found", ET.tostring(gone)
            finally:
                await b.close()

    try:
        run(scenario)
    finally:
        server.stop()
