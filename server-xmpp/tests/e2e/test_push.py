"""End-to-end external components (XEP-0114) and push notifications (XEP-0357) against `presenced serve`.

The app server is a real slixmpp ``ComponentXMPP`` connected over the component protocol, as Conversations'
push app server is deployed. slixmpp 1.17 has no XEP-0357 client plugin, so ``<enable/>`` and ``<disable/>``
are plain IQs of slixmpp clients; stream management is slixmpp's ``xep_0198`` plugin.

Checked: a component's handshake (and a wrong secret's refusal), messages both ways between a client and the
component; a push registration that is woken by a message held offline (with the summary and the registration's
publish options), disabled again; a stream-managed session whose connection dropped wakes its device for each
message until it is resumed; the account advertises ``urn:xmpp:push:0``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from slixmpp import JID, ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import USERS, Server, free_port, write_config
from test_stream_management import connect_sm, lose_connection
from xmpp import DOMAIN, WAIT, Client, clients, connect, make_mutual, run, start, wait

PUSH = f"push.{DOMAIN}"
SECRET = "app-server-secret"
NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
NS_COMPONENT = "jabber:component:accept"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


@pytest.fixture
def push_server(binary: Path, tmp_path: Path):
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    srv.component_port = free_port()  # type: ignore[attr-defined]
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        xmpp=(
            f'component_bind = "127.0.0.1:{srv.component_port}"',  # type: ignore[attr-defined]
            "push_include_sender = true",
            "push_include_body = true",
            'sm_resume_timeout = "60s"',
        ),
        tables=f'[[xmpp.components]]\ndomain = "{PUSH}"\nsecret = "{SECRET}"\n',
    )
    for local, password in USERS.items():
        srv.add_user(local, password)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class AppServer:
    """A slixmpp component that records every pubsub publish it gets and answers it."""

    def __init__(self, srv: Server) -> None:
        self.xmpp = ComponentXMPP(PUSH, SECRET, "127.0.0.1", srv.component_port)  # type: ignore[attr-defined]
        self.started = asyncio.Event()
        self.publishes: asyncio.Queue = asyncio.Queue()
        self.messages: asyncio.Queue = asyncio.Queue()
        self.xmpp.add_event_handler("session_start", lambda _: self.started.set())
        self.xmpp.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.xmpp.register_handler(Callback(
            "push publish",
            MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_PUBSUB}}}pubsub"),
            self._publish,
        ))

    def _publish(self, iq) -> None:
        self.publishes.put_nowait(iq)
        iq.reply().send()

    async def start(self) -> None:
        self.xmpp.connect()
        await wait(self.started.wait(), "the component's handshake")

    async def next_publish(self, what: str) -> dict:
        iq = await wait(self.publishes.get(), what)
        return summary(iq)

    async def stop(self) -> None:
        self.xmpp.disconnect()
        await asyncio.sleep(0.1)


def summary(iq) -> dict:
    """The publish's node, the notification form's fields and the publish options' fields."""
    pubsub = iq.xml.find(f"{{{NS_PUBSUB}}}pubsub")
    publish = pubsub.find(f"{{{NS_PUBSUB}}}publish")
    form = publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x")
    fields = {f.get("var"): f.findtext(f"{{{NS_DATA}}}value") for f in form.findall(f"{{{NS_DATA}}}field")}
    options = pubsub.find(f"{{{NS_PUBSUB}}}publish-options/{{{NS_DATA}}}x")
    opts = {} if options is None else {
        f.get("var"): f.findtext(f"{{{NS_DATA}}}value") for f in options.findall(f"{{{NS_DATA}}}field")
    }
    return {"from": str(iq["from"]), "node": publish.get("node"), "fields": fields, "options": opts}


async def enable_push(client: Client, node: str, secret: str | None = None) -> None:
    iq = client.xmpp.make_iq_set()
    enable = ET.Element(f"{{{NS_PUSH}}}enable", {"jid": PUSH, "node": node})
    if secret:
        x = ET.SubElement(enable, f"{{{NS_DATA}}}x", {"type": "submit"})
        for var, value in (("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"), ("secret", secret)):
            f = ET.SubElement(x, f"{{{NS_DATA}}}field", {"var": var})
            ET.SubElement(f, f"{{{NS_DATA}}}value").text = value
    iq.append(enable)
    await wait(iq.send(timeout=WAIT), "the push <enable/>")


async def disable_push(client: Client, node: str) -> None:
    iq = client.xmpp.make_iq_set()
    iq.append(ET.Element(f"{{{NS_PUSH}}}disable", {"jid": PUSH, "node": node}))
    await wait(iq.send(timeout=WAIT), "the push <disable/>")


async def nothing_published(app: AppServer, seconds: float = 1.0) -> None:
    await asyncio.sleep(seconds)
    assert app.publishes.empty(), summary(app.publishes.get_nowait())


def test_a_component_with_the_wrong_secret_is_refused(push_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", push_server.component_port), timeout=WAIT) as s:  # type: ignore[attr-defined]
        s.sendall(
            f"<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' "
            f"to='{PUSH}'>".encode()
        )
        got = b""
        while b"id=" not in got:
            got += s.recv(4096)
        s.sendall(b"<handshake>0000000000000000000000000000000000000000</handshake>")
        while b"</stream:stream>" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    assert b"not-authorized" in got, got
    # A domain nobody configured is unknown.
    with socket.create_connection(("127.0.0.1", push_server.component_port), timeout=WAIT) as s:  # type: ignore[attr-defined]
        s.sendall(
            f"<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' "
            f"to='other.{DOMAIN}'>".encode()
        )
        got = b""
        while b"</stream:stream>" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    assert b"host-unknown" in got, got


def test_a_component_may_only_speak_for_its_own_domain(push_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", push_server.component_port), timeout=WAIT) as s:  # type: ignore[attr-defined]
        s.sendall(
            f"<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' "
            f"to='{PUSH}'>".encode()
        )
        got = b""
        while b">" not in got.split(b"<stream:stream", 1)[-1]:
            got += s.recv(4096)
        stream_id = re.search(rb"id=['\"]([^'\"]+)['\"]", got).group(1).decode()
        proof = hashlib.sha1((stream_id + SECRET).encode()).hexdigest()
        s.sendall(f"<handshake>{proof}</handshake>".encode())
        while b"<handshake/>" not in got:
            got += s.recv(4096)
        s.sendall(f"<message from='mallory@elsewhere.example' to='{ALICE}'><body>hi</body></message>".encode())
        while b"</stream:stream>" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    assert b"invalid-from" in got, got


def test_messages_flow_between_a_client_and_a_component(push_server: Server) -> None:
    async def scenario() -> None:
        app = AppServer(push_server)
        await app.start()
        try:
            async with clients(connect(push_server, "alice", "pc")) as (alice,):
                body = f"hello bot {uuid.uuid4()}"
                alice.send_message(f"bot@{PUSH}", body)
                got = await wait(app.messages.get(), "alice's message at the component")
                assert got["body"] == body and got["from"] == JID(f"{ALICE}/pc"), got
                app.xmpp.send_message(mto=JID(f"{ALICE}/pc"), mfrom=JID(f"bot@{PUSH}"), mbody="hello human", mtype="chat")
                answer = await alice.next_message("the component's answer")
                assert answer["body"] == "hello human" and answer["from"] == JID(f"bot@{PUSH}"), answer
        finally:
            await app.stop()

    run(scenario)


def test_a_message_held_offline_wakes_every_registered_device(push_server: Server) -> None:
    async def scenario() -> None:
        app = AppServer(push_server)
        await app.start()
        try:
            async with clients(connect(push_server, "bob", "pc")) as (bob,):
                alice = await connect(push_server, "alice", "phone")
                info = await wait(
                    alice.xmpp.plugin["xep_0030"].get_info(jid=JID(ALICE), local=False, timeout=WAIT),
                    "alice's account disco#info",
                )
                assert NS_PUSH in info["disco_info"]["features"], info
                await make_mutual(alice, bob)
                await enable_push(alice, "phone-node", secret="s3cr3t")
                await alice.disconnect()
                await asyncio.sleep(0.3)

                bob.send_message(ALICE, "are you there?")
                first = await app.next_publish("a notification for the held message")
                assert first["from"] == ALICE and first["node"] == "phone-node", first
                assert first["fields"]["FORM_TYPE"] == "urn:xmpp:push:summary", first
                assert first["fields"]["message-count"] == "1", first
                assert JID(first["fields"]["last-message-sender"]).bare == BOB, first
                assert first["fields"]["last-message-body"] == "are you there?", first
                assert first["options"]["secret"] == "s3cr3t", first
                bob.send_message(ALICE, "hello?")
                second = await app.next_publish("a notification for the second held message")
                assert second["fields"]["message-count"] == "2", second
                # Chat states and other bodiless messages wake nobody.
                msg = bob.xmpp.make_message(mto=ALICE, mtype="chat")
                msg.append(ET.Element("{http://jabber.org/protocol/chatstates}active"))
                msg.send()
                await nothing_published(app)

                # Disabled: held messages wake nobody; alice still gets everything when she is back.
                alice = await connect(push_server, "alice", "phone")
                held = [(await alice.next_message(f"held message {i}"))["body"] for i in range(2)]
                assert held == ["are you there?", "hello?"], held
                await disable_push(alice, "phone-node")
                await alice.disconnect()
                await asyncio.sleep(0.3)
                bob.send_message(ALICE, "nobody is woken for this")
                await nothing_published(app)
        finally:
            await app.stop()

    run(scenario)


def test_a_detached_session_wakes_its_device_until_it_is_resumed(push_server: Server) -> None:
    async def scenario() -> None:
        app = AppServer(push_server)
        await app.start()
        try:
            async with clients(connect_sm(push_server, "alice", "phone"), connect(push_server, "bob", "pc")) as (alice, bob):
                await make_mutual(alice, bob)
                await bob.presence_from(ALICE)
                bound = str(alice.jid)
                await enable_push(alice, "sm-node")
                await alice.ping_server()
                alice.xmpp.plugin["xep_0198"].send_ack()
                await alice.ping_server()
                # Bob is online too, yet the phone's own session is the one that cannot see the message.
                lose_connection(alice)
                await wait(alice.disconnected.wait(), "alice's transport to go")
                await asyncio.sleep(0.5)
                bob.send_message(bound, "wake up")
                woken = await app.next_publish("a notification for the detached session")
                assert woken["node"] == "sm-node" and woken["fields"]["message-count"] == "1", woken
                bob.send_message(ALICE, "still there?")
                again = await app.next_publish("a notification for the second message")
                assert again["fields"]["message-count"] == "2", again

                await start(alice, push_server)
                await wait(alice.sm_resumed.wait(), "alice's session to be resumed")
                bodies = [(await alice.next_message(f"missed {i}"))["body"] for i in range(2)]
                assert bodies == ["wake up", "still there?"], bodies
                await alice.ping_server()
                bob.send_message(bound, "you are back")
                assert (await alice.next_message("a message on the resumed session"))["body"] == "you are back"
                await nothing_published(app)
        finally:
            await app.stop()

    run(scenario)
