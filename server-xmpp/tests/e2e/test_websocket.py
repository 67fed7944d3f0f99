"""End-to-end XMPP over WebSocket (RFC 7395) and XEP-0156 discovery on the HTTP listener (`[http] bind`).

A real third-party web client, @xmpp/client on Node.js (``server-xmpp/tests/web/chat.mjs``), signs in over
WebSocket with SCRAM and chats with a slixmpp contact on the TCP port. Raw WebSocket streams (aiohttp's client)
check the framing message by message, the subprotocol refusal, a malformed message's stream error (which leaves
other clients alone), the refusal to authenticate over plain HTTP on a non-loopback bind, HTTPS/wss with
``[http] tls``, and the host-meta documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import pytest

from conftest import REPO, Server, write_config, free_port
from xmpp import (
    DOMAIN,
    NS_SASL,
    NS_STREAM,
    WAIT,
    clients,
    connect,
    local_name,
    make_mutual,
    plain_auth,
    run,
    stream_error_condition,
    wait,
)

WEB = REPO / "server-xmpp" / "tests" / "web"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket"
REL_BOSH = "urn:xmpp:alt-connections:xbosh"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def ws_url(server: Server, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.http_port}/xmpp-websocket"


def open_frame(to: str = DOMAIN) -> str:
    return f"<open xmlns='{NS_FRAMING}' to='{to}' version='1.0'/>"


class WsStream:
    """A raw RFC 7395 stream: each message sent is one text message; each received message must be one
    complete XML document, which ``next_element`` parses on its own (so framing mistakes fail the parse)."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.received: list[str] = []

    @classmethod
    async def open(
        cls, url: str, protocols=("xmpp",), ssl_context=None, headers: dict | None = None
    ) -> "WsStream":
        session = aiohttp.ClientSession()
        try:
            ws = await wait(
                session.ws_connect(
                    url, protocols=protocols, ssl=ssl_context or True, autoping=True, headers=headers
                ),
                f"WebSocket upgrade at {url}",
            )
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def send(self, text: str | bytes) -> None:
        await self.ws.send_str(text.decode() if isinstance(text, bytes) else text)

    async def next_message(self, what: str) -> str | None:
        """The next text message, None once the WebSocket is closed."""
        msg = await wait(self.ws.receive(), f"{what}; received so far: {self.received}")
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return None
        assert msg.type == aiohttp.WSMsgType.TEXT, f"not a text message while waiting for {what}: {msg}"
        self.received.append(msg.data)
        return msg.data

    async def next_element(self, what: str) -> ET.Element:
        text = await self.next_message(what)
        assert text is not None, f"the WebSocket closed while waiting for {what}; received: {self.received}"
        # One message, one standalone document: this fails on a fragment or on two elements.
        return ET.fromstring(text)

    async def start(self) -> ET.Element:
        """Opens the stream and returns the features (after checking the server's <open/>)."""
        await self.send(open_frame())
        opened = await self.next_element("the server's <open/>")
        assert opened.tag == f"{{{NS_FRAMING}}}open", opened.tag
        assert opened.get("from") == DOMAIN and opened.get("version") == "1.0", opened.attrib
        assert opened.get("id"), "the server's <open/> has no stream id"
        features = await self.next_element("<stream:features>")
        assert features.tag == f"{{{NS_STREAM}}}features", features.tag
        return features

    async def wait_closed(self, what: str) -> list[str]:
        """Reads until the WebSocket closes; returns what arrived meanwhile."""
        rest = []
        while (text := await self.next_message(what)) is not None:
            rest.append(text)
        return rest

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 5.0)
        except Exception:
            pass
        await self.session.close()


async def sign_in(
    ws: WsStream, server: Server, local: str, resource: str, features: ET.Element | None = None
) -> str:
    """PLAIN (after opening the stream, unless given its ``features``), restart, bind `resource`; returns
    the bound full JID."""
    features = features if features is not None else await ws.start()
    assert features.find(f"{{{NS_SASL}}}mechanisms") is not None
    await ws.send(plain_auth(local, server.users[local]))
    outcome = await ws.next_element("the SASL outcome")
    assert local_name(outcome) == "success", ET.tostring(outcome)
    features = await ws.start()
    assert features.find(f"{{{NS_BIND}}}bind") is not None, ET.tostring(features)
    await ws.send(
        f"<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='{NS_BIND}'>"
        f"<resource>{resource}</resource></bind></iq>"
    )
    iq = await ws.next_element("the bind result")
    assert iq.tag == "{jabber:client}iq" and iq.get("type") == "result", ET.tostring(iq)
    return iq.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid").text


def restart_with(server: Server, **config) -> None:
    """Rewrites the config with the same ports and ``config`` (write_config's keywords), then starts."""
    write_config(server.config, server.data_dir, server.port, free_port(udp_too=True),
                 http_port=server.http_port, tls_port=server.tls_port, **config)
    server.start()


# ------------------------------------------------------------------------------------------------
# a real web client
# ------------------------------------------------------------------------------------------------


def test_xmpp_client_on_node_signs_in_over_websocket_and_chats_with_a_slixmpp_contact(
    server: Server,
) -> None:
    node = shutil.which("node")
    assert node, "node is not installed (Debian nodejs); scripts/test installs it"
    assert (WEB / "node_modules" / "@xmpp" / "client").is_dir(), (
        f"@xmpp/client is not installed: run `npm ci` in {WEB} (scripts/test does)"
    )
    to_bob, to_alice = f"from the web {uuid.uuid4()}", f"from slixmpp {uuid.uuid4()}"

    async def scenario() -> None:
        # alice and bob are contacts both ways (made over TCP first, then both leave).
        async with clients(connect(server, "alice", "tcp"), connect(server, "bob", "setup")) as (a, b):
            await make_mutual(a, b)
        env = {
            **os.environ,
            "WS_URL": ws_url(server),
            "XMPP_DOMAIN": DOMAIN,
            "XMPP_USER": "alice",
            "XMPP_PASSWORD": server.users["alice"],
            "XMPP_RESOURCE": "browser",
            "CONTACT": BOB,
            "SEND_BODY": to_bob,
            "EXPECT_BODY": to_alice,
            "TIMEOUT_MS": str(int(WAIT * 4 * 1000)),
        }
        proc = await asyncio.create_subprocess_exec(
            node, "--experimental-websocket", "--no-warnings", str(WEB / "chat.mjs"),
            cwd=WEB, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        said: list[dict] = []

        async def next_event(what: str) -> dict:
            line = await wait(proc.stdout.readline(), f"the web client's {what}; it said {said}")
            if not line:
                err = (await proc.stderr.read()).decode(errors="replace")
                raise AssertionError(f"the web client ended before {what}; it said {said}; stderr:\n{err}")
            event = json.loads(line)
            said.append(event)
            assert event["event"] != "error", f"the web client failed: {event['message']}"
            return event

        try:
            online = await next_event("sign-in")
            assert online["event"] == "online", online
            assert online["jid"] == f"{ALICE}/browser", online
            # The server offered every mechanism on this loopback (secure) listener; the client used SCRAM.
            assert {"SCRAM-SHA-1", "PLAIN"} <= set(online["offered"]), online
            # bob comes online over TCP after alice: the web client must see it.
            async with clients(connect(server, "bob", "tcp")) as (bob,):
                seen = await bob.presence_from(ALICE)
                assert str(seen["from"]) == f"{ALICE}/browser", seen
                presence = await next_event("bob's presence")
                assert presence == {"event": "presence", "from": f"{BOB}/tcp"}, presence
                assert (await next_event("its message")) == {"event": "sent", "to": BOB, "body": to_bob}
                got = await bob.next_message("the web client's message")
                assert got["body"] == to_bob and str(got["from"]) == f"{ALICE}/browser", got
                bob.send_message(f"{ALICE}/browser", to_alice)
                answer = await next_event("bob's answer")
                assert answer == {"event": "message", "from": f"{BOB}/tcp", "body": to_alice}, answer
                assert (await next_event("its goodbye")) == {"event": "done"}
                code = await wait(proc.wait(), "the web client to exit")
                assert code == 0, f"the web client exited {code}; it said {said}"
                # Its <close/> ended the session: bob sees alice's web session go offline.
                while True:
                    pres = await wait(bob.presences.get(), "alice's unavailable presence")
                    if str(pres["from"]) == f"{ALICE}/browser" and pres["type"] == "unavailable":
                        break
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    run(scenario)


# ------------------------------------------------------------------------------------------------
# raw streams
# ------------------------------------------------------------------------------------------------


def test_framing_is_one_element_per_message_and_a_malformed_one_ends_only_its_own_stream(
    server: Server,
) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice", "tcp"), connect(server, "bob", "setup")) as (a, b):
            await make_mutual(a, b)
        async with clients(connect(server, "bob", "tcp")) as (bob,):
            ws = await WsStream.open(ws_url(server))
            try:
                assert ws.ws.protocol == "xmpp", ws.ws.protocol
                features = await ws.start()
                mechs = {m.text for m in features.find(f"{{{NS_SASL}}}mechanisms")}
                assert mechs == {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, mechs
                assert "starttls" not in {local_name(f) for f in features}, ET.tostring(features)
                jid = await sign_in(ws, server, "alice", "raw", features)
                assert jid == f"{ALICE}/raw"
                await ws.send("<presence xmlns='jabber:client'/>")
                body = f"to the raw socket {uuid.uuid4()}"
                bob.send_message(jid, body)
                # Each stanza arrives as a message of its own (parsed standalone by next_element).
                while True:
                    el = await ws.next_element("bob's message")
                    if el.tag == "{jabber:client}message":
                        break
                assert el.findtext("{jabber:client}body") == body and el.get("from") == f"{BOB}/tcp"
                reply = f"from the raw socket {uuid.uuid4()}"
                await ws.send(
                    f"<message xmlns='jabber:client' to='{BOB}/tcp' type='chat'><body>{reply}</body></message>"
                )
                got = await bob.next_message("the raw socket's message")
                assert got["body"] == reply and str(got["from"]) == jid, got

                # A message that is not well-formed XML: a stream error, <close/>, the socket closes.
                await ws.send("<message xmlns='jabber:client'><body>oops</message>")
                rest = await ws.wait_closed("the server to close after a malformed message")
                docs = [ET.fromstring(t) for t in rest]
                errors = [stream_error_condition(d) for d in docs if d.tag == f"{{{NS_STREAM}}}error"]
                assert errors and errors[0] in ("not-well-formed", "invalid-xml"), rest
                assert docs[-1].tag == f"{{{NS_FRAMING}}}close", rest
            finally:
                await ws.close()
            # bob, on another connection, noticed nothing but alice's web session coming and going.
            await bob.ping_server()
            seen = []
            while "unavailable" not in seen:
                pres = await wait(bob.presences.get(), f"alice's unavailable presence (seen {seen})")
                if str(pres["from"]) == f"{ALICE}/raw":
                    seen.append(pres["type"])
            assert seen[0] == "available", seen

    run(scenario)


def test_an_oversized_message_gets_a_stream_error(server: Server) -> None:
    async def scenario() -> None:
        ws = await WsStream.open(ws_url(server))
        try:
            await sign_in(ws, server, "alice", "big")
            # Above the codec's 256 KiB element limit (and within what the WebSocket layer takes).
            body = "x" * (300 * 1024)
            await ws.send(f"<message xmlns='jabber:client' to='{BOB}'><body>{body}</body></message>")
            rest = await ws.wait_closed("the server to refuse the oversized message")
            docs = [ET.fromstring(t) for t in rest]
            errors = [stream_error_condition(d) for d in docs if d.tag == f"{{{NS_STREAM}}}error"]
            assert errors == ["policy-violation"], rest
            assert docs[-1].tag == f"{{{NS_FRAMING}}}close", rest
        finally:
            await ws.close()

    run(scenario)


def test_the_per_address_cap_counts_the_address_a_local_proxy_forwards(server_files: Server) -> None:
    restart_with(server_files, tables="[limits]\nmax_connections_per_ip = 1")
    server = server_files

    def forwarded(ip: str) -> dict:
        return {"X-Forwarded-For": f"192.0.2.200, {ip}"}

    async def scenario() -> None:
        first = await WsStream.open(ws_url(server), headers=forwarded("198.51.100.1"))
        try:
            await first.start()
            # Another web user behind the same (loopback) proxy is not refused for the proxy's address...
            other = await WsStream.open(ws_url(server), headers=forwarded("198.51.100.2"))
            try:
                await other.start()
            finally:
                await other.close()
            # ...but a second connection from the same forwarded address is, with a stream error.
            again = await WsStream.open(ws_url(server), headers=forwarded("198.51.100.1"))
            try:
                # Refused at once: the server opens its side, says why and closes.
                rest = await again.wait_closed("the refusal")
                docs = [ET.fromstring(t) for t in rest]
                errors = [stream_error_condition(d) for d in docs if d.tag == f"{{{NS_STREAM}}}error"]
                assert errors == ["policy-violation"], rest
            finally:
                await again.close()
        finally:
            await first.close()

    try:
        run(scenario)
    finally:
        server.stop()


def test_an_upgrade_without_the_xmpp_subprotocol_is_refused(server: Server) -> None:
    async def scenario() -> None:
        for protocols in ((), ("chat",)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                ws = await WsStream.open(ws_url(server), protocols=protocols)
                await ws.close()
            assert refused.value.status == 400, (protocols, refused.value)
        # A plain GET is no upgrade either.
        async with aiohttp.ClientSession() as http:
            async with http.get(ws_url(server, "http")) as resp:
                assert resp.status >= 400, resp.status
        # With the subprotocol it upgrades and speaks XMPP.
        ws = await WsStream.open(ws_url(server), protocols=("xmpp",))
        try:
            assert ws.ws.protocol == "xmpp"
            await ws.start()
        finally:
            await ws.close()

    run(scenario)


def test_plain_http_on_a_non_loopback_bind_refuses_authentication(server_files: Server) -> None:
    restart_with(server_files, http_host="0.0.0.0")
    server = server_files

    async def scenario() -> None:
        ws = await WsStream.open(ws_url(server))
        try:
            features = await ws.start()
            assert features.find(f"{{{NS_SASL}}}mechanisms") is None, ET.tostring(features)
            await ws.send(plain_auth("alice", server.users["alice"]))
            failure = await ws.next_element("the SASL failure")
            assert failure.tag == f"{{{NS_SASL}}}failure", ET.tostring(failure)
            assert failure.find(f"{{{NS_SASL}}}encryption-required") is not None, ET.tostring(failure)
            assert "unencrypted" in failure.findtext(f"{{{NS_SASL}}}text"), ET.tostring(failure)
            rest = await ws.wait_closed("the stream to end")
            docs = [ET.fromstring(t) for t in rest]
            assert stream_error_condition(docs[0]) == "policy-violation", rest
            assert docs[-1].tag == f"{{{NS_FRAMING}}}close", rest
        finally:
            await ws.close()
        # TCP clients are not affected.
        async with clients(connect(server, "bob", "tcp")) as (bob,):
            await bob.ping_server()

    try:
        run(scenario)
        log = server.stderr_path.read_text(errors="replace")
        assert "WebSocket clients cannot authenticate" in log, log
        assert "authentication refused: plain-text WebSocket" in log, log
    finally:
        server.stop()


def test_https_listener_serves_wss_and_advertises_it(server_files: Server) -> None:
    restart_with(server_files, http_host="0.0.0.0", http=("tls = true",))
    server = server_files
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server.cert))

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            url = f"https://{DOMAIN}:{server.http_port}/.well-known/host-meta.json"
            async with http.get(url, ssl=ctx) as resp:
                assert resp.status == 200
                links = (await resp.json(content_type=None))["links"]
        assert links == [
            {"rel": REL_WEBSOCKET, "href": f"wss://{DOMAIN}:{server.http_port}/xmpp-websocket"},
            {"rel": REL_BOSH, "href": f"https://{DOMAIN}:{server.http_port}/http-bind"},
        ]
        ws = await WsStream.open(f"wss://{DOMAIN}:{server.http_port}/xmpp-websocket", ssl_context=ctx)
        try:
            # TLS on a non-loopback bind: every mechanism is offered, and a session binds.
            assert await sign_in(ws, server, "alice", "wss") == f"{ALICE}/wss"
        finally:
            await ws.close()

    try:
        run(scenario)
    finally:
        server.stop()


def test_host_meta_documents_advertise_the_websocket_endpoint(server: Server) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{server.http_port}/.well-known"
            async with http.get(f"{base}/host-meta") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("application/xrd+xml"), resp.headers
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                xrd = ET.fromstring(await resp.text())
            async with http.get(f"{base}/host-meta.json") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                doc = await resp.json()
        assert xrd.tag == f"{{{XRD}}}XRD"
        links = [(l.get("rel"), l.get("href")) for l in xrd.findall(f"{{{XRD}}}Link")]
        # Default: the listener's own address (loopback here).
        bosh = f"http://127.0.0.1:{server.http_port}/http-bind"
        assert links == [(REL_WEBSOCKET, ws_url(server)), (REL_BOSH, bosh)], links
        assert doc == {
            "links": [{"rel": REL_WEBSOCKET, "href": ws_url(server)}, {"rel": REL_BOSH, "href": bosh}]
        }, doc

    run(scenario)


def test_host_meta_uses_the_configured_public_url(server_files: Server) -> None:
    restart_with(server_files, http=('public_url = "https://chat.example.com/"',))
    server = server_files

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.http_port}/.well-known/host-meta.json"
            async with http.get(url) as resp:
                doc = await resp.json()
        assert doc == {
            "links": [
                {"rel": REL_WEBSOCKET, "href": "wss://chat.example.com/xmpp-websocket"},
                {"rel": REL_BOSH, "href": "https://chat.example.com/http-bind"},
            ]
        }

    try:
        run(scenario)
    finally:
        server.stop()
