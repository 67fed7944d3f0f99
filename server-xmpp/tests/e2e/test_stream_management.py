"""End-to-end XEP-0198 stream management with slixmpp's ``xep_0198`` plugin: a client whose TCP
connection dies resumes its session and gets exactly what it had not acknowledged; one that does
not come back in time goes offline and finds its messages held; a bogus (or another user's) id
fails and the client binds afresh.

The servers here wait ``RESUME_TIMEOUT`` seconds for a lost client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from conftest import USERS, Server, free_port, write_config
from xmpp import DOMAIN, Client, clients, connect, make_client, run, start, wait
from xmpp import make_mutual

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
RESUME_TIMEOUT = 2.0
#: Scheduling slack on a busy two-core CI machine.
SLACK = 3.0
NS_DELAY = "urn:xmpp:delay"


def sm_server(binary: Path, root: Path, resume_timeout: float = 60.0) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    srv = Server(binary=binary, root=root, port=free_port(), tls_port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        tls_port=srv.tls_port,
        xmpp=(f'sm_resume_timeout = "{int(resume_timeout * 1000)}ms"',),
    )
    for local, password in USERS.items():
        srv.add_user(local, password)
    return srv


def with_sm(client: Client) -> Client:
    """Registers slixmpp's XEP-0198 plugin and records its events on the client."""
    client.xmpp.register_plugin("xep_0198")
    client.sm_enabled = asyncio.Event()
    client.sm_resumed = asyncio.Event()
    client.sm_failed = asyncio.Event()
    client.xmpp.add_event_handler("sm_enabled", lambda _: client.sm_enabled.set())
    client.xmpp.add_event_handler("session_resumed", lambda _: client.sm_resumed.set())
    client.xmpp.add_event_handler("sm_failed", lambda _: client.sm_failed.set())
    return client


async def connect_sm(srv: Server, local: str, resource: str, sm_id: str | None = None) -> Client:
    """A slixmpp client with stream management (resumable), signed in with initial presence."""
    client = with_sm(make_client(srv, local, resource))
    if sm_id is not None:
        client.xmpp.plugin["xep_0198"].sm_id = sm_id
    await start(client, srv)
    await wait(client.session_started.wait(), f"session_start of {local}/{resource}")
    await wait(client.sm_enabled.wait(), f"<enabled/> for {local}/{resource}")
    await client.roster_items()
    client.xmpp.send_presence()
    return client


def lose_connection(client: Client) -> None:
    """The network goes away under the client: no </stream>, no TLS close_notify, just a reset."""
    client.disconnected.clear()
    client.xmpp.transport.abort()


def unavailable_seen(client: Client, bare: str) -> list[float]:
    """Records when ``client`` is told ``bare`` went unavailable."""
    seen: list[float] = []
    client.xmpp.add_event_handler(
        "presence_unavailable",
        lambda p: seen.append(time.monotonic()) if p["from"].bare == bare else None,
    )
    return seen


async def messages_for(client: Client, n: int, what: str) -> list:
    return [await client.next_message(f"{what} #{i + 1}") for i in range(n)]


def test_a_lost_client_resumes_and_gets_exactly_what_it_missed(binary: Path, tmp_path: Path) -> None:
    srv = sm_server(binary, tmp_path / "srv")
    srv.start()
    try:
        async def scenario() -> None:
            async with clients(connect_sm(srv, "alice", "phone"), connect(srv, "bob", "pc")) as (alice, bob):
                await make_mutual(alice, bob)
                await bob.presence_from(ALICE)
                bound = str(alice.jid)
                # Everything so far acknowledged, so the server holds nothing unacked when the line drops.
                await alice.ping_server()
                alice.xmpp.plugin["xep_0198"].send_ack()
                await alice.ping_server()
                went_away = unavailable_seen(bob, ALICE)
                lose_connection(alice)
                await wait(alice.disconnected.wait(), "alice's transport to go")
                sent = [f"missed {i} {uuid.uuid4()}" for i in range(3)]
                for body in sent:
                    bob.send_message(bound, body)
                await bob.ping_server()
                await asyncio.sleep(0.5)

                await start(alice, srv)
                await wait(alice.sm_resumed.wait(), "alice's session to be resumed")
                got = await messages_for(alice, 3, "a message sent while alice was away")
                assert [m["body"] for m in got] == sent
                assert str(alice.jid) == bound, "the same session, the same full JID"
                await alice.ping_server()
                await asyncio.sleep(0.5)
                assert alice.messages.empty(), "nothing but the missed messages was resent"
                # The session went on: no unavailable to bob, and it still works both ways.
                assert went_away == [], "bob saw alice go offline"
                alice.send_message(BOB, "back")
                assert (await bob.next_message("alice's message after resuming"))["body"] == "back"
                bob.send_message(bound, "welcome back")
                assert (await alice.next_message("a message on the resumed session"))["body"] == "welcome back"

        run(scenario)
    finally:
        srv.stop()


def test_a_client_that_does_not_come_back_goes_offline_and_its_messages_are_held(
    binary: Path, tmp_path: Path
) -> None:
    srv = sm_server(binary, tmp_path / "srv", resume_timeout=RESUME_TIMEOUT)
    srv.start()
    try:
        async def scenario() -> None:
            async with clients(connect_sm(srv, "alice", "phone"), connect(srv, "bob", "pc")) as (alice, bob):
                await make_mutual(alice, bob)
                await bob.presence_from(ALICE)
                bound = str(alice.jid)
                # alice stops acknowledging: what she is sent from here stays unacked on the server.
                alice.xmpp.remove_handler("Stream Management Request Ack")
                before = f"seen but never acked {uuid.uuid4()}"
                bob.send_message(bound, before)
                assert (await alice.next_message("the message before the loss"))["body"] == before
                went_away = unavailable_seen(bob, ALICE)
                lose_connection(alice)
                await wait(alice.disconnected.wait(), "alice's transport to go")
                lost_at = time.monotonic()
                sent = [f"while away {i} {uuid.uuid4()}" for i in range(3)]
                for body in sent:
                    bob.send_message(bound, body)

                deadline = lost_at + RESUME_TIMEOUT + SLACK
                while not went_away:
                    assert time.monotonic() < deadline, "bob never saw alice go offline"
                    await asyncio.sleep(0.1)
                assert went_away[0] - lost_at >= RESUME_TIMEOUT * 0.8, "offline before the resume timeout"

                # The old id is gone: the next sign-in binds afresh and gets everything as offline messages.
                await alice.disconnect()
                async with clients(connect(srv, "alice", "phone")) as (again,):
                    got = await messages_for(again, 4, "a held message")
                    assert [m["body"] for m in got] == [before, *sent]
                    for m in got:
                        assert m.xml.find(f"{{{NS_DELAY}}}delay") is not None, f"no delay stamp: {m}"

        run(scenario)
    finally:
        srv.stop()


def test_a_bogus_or_foreign_resumption_id_fails_and_the_client_binds_afresh(
    binary: Path, tmp_path: Path
) -> None:
    srv = sm_server(binary, tmp_path / "srv")
    srv.start()
    try:
        async def scenario() -> None:
            async with clients(connect_sm(srv, "alice", "phone")) as (alice,):
                alice_id = alice.xmpp.plugin["xep_0198"].sm_id
                assert alice_id and len(alice_id) >= 32, alice_id
                for local, sm_id in (("carol", "bogus"), ("bob", alice_id)):
                    async with clients(connect_sm(srv, local, "x", sm_id=sm_id)) as (other,):
                        assert other.sm_failed.is_set(), f"{local}'s resumption did not fail"
                        assert not other.sm_resumed.is_set()
                        assert other.jid.bare == f"{local}@{DOMAIN}"
                        new_id = other.xmpp.plugin["xep_0198"].sm_id
                        assert new_id and new_id not in (sm_id, alice_id), new_id
                        await other.ping_server()
                # alice's session was never touched by bob's attempt.
                await alice.ping_server()
                bob_msg = f"still alice {uuid.uuid4()}"
                async with clients(connect(srv, "bob", "pc")) as (bob,):
                    bob.send_message(str(alice.jid), bob_msg)
                    assert (await alice.next_message("a message after the failed attempts"))["body"] == bob_msg

        run(scenario)
    finally:
        srv.stop()
