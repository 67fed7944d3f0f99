"""End-to-end roster versioning (RFC 6121 §2.6) and subscription pre-approval (RFC 6121 §3.4) against
`presenced serve`, with slixmpp: the stream features, an empty result for a current cached version, the full roster
for a stale one, pushes with their version, and versions that stay valid across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from slixmpp.stanza import Iq

from conftest import USERS, Server, free_port, write_config
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
NS_ROSTER = "jabber:iq:roster"


async def roster_get(client: Client, ver: str | None) -> Iq:
    """A roster get carrying ``ver`` (none: no attribute); the result."""
    get = client.xmpp.Iq()
    get["type"] = "get"
    get.enable("roster")
    if ver is not None:
        get["roster"].xml.set("ver", ver)
    iq = await wait(get.send(timeout=WAIT), f"roster result for {client.jid}")
    assert iq["type"] == "result", iq
    return iq


def query(iq: Iq):
    return iq.xml.find(f"{{{NS_ROSTER}}}query")


def pushes(client: Client) -> asyncio.Queue:
    """Every roster push ``client`` receives from now on."""
    q: asyncio.Queue = asyncio.Queue()
    client.xmpp.add_event_handler("roster_update", q.put_nowait)
    return q


async def add_item(client: Client, jid: str, name: str) -> None:
    iq = await wait(client.xmpp.update_roster(jid, name=name, timeout=WAIT), f"roster set of {jid}")
    assert iq["type"] == "result", iq


def test_roster_versioning_answers_a_current_version_with_an_empty_result(server: Server) -> None:
    """The bound stream advertises rosterver; a get with ``ver=''`` gets every item and the current version;
    with the current version it gets an empty result; a push carries the new version; with an older one it gets
    the whole roster again."""

    async def scenario() -> None:
        async with clients(connect(server, "alice", "pc", fetch_roster=False)) as (alice,):
            assert "rosterver" in alice.xmpp.features
            first = query(await roster_get(alice, ""))
            assert first is not None and first.get("ver")
            assert list(first) == []
            pushed = pushes(alice)
            await add_item(alice, BOB, "Bob")
            push = await wait(pushed.get(), "the roster push for bob")
            ver = push.xml.find(f"{{{NS_ROSTER}}}query").get("ver")
            assert ver and ver != first.get("ver")
            current = await roster_get(alice, ver)
            assert query(current) is None, current
            stale = query(await roster_get(alice, first.get("ver")))
            assert stale.get("ver") == ver
            assert [i.get("jid") for i in stale] == [BOB]

    run(scenario)


def test_a_cached_roster_version_stays_right_across_a_restart(server: Server) -> None:
    """A version cached before a restart is still current after it, and the first change after the restart gets
    a version the client never saw, so a stale cache is replaced rather than kept."""

    async def before() -> str:
        async with clients(connect(server, "alice", "pc", fetch_roster=False)) as (alice,):
            await add_item(alice, BOB, "Bob")
            await add_item(alice, CAROL, "Carol")
            return query(await roster_get(alice, None)).get("ver")

    cached = run(before)
    server.stop()
    server.start()

    async def after() -> None:
        async with clients(connect(server, "alice", "pc", fetch_roster=False)) as (alice,):
            assert query(await roster_get(alice, cached)) is None
            iq = await wait(alice.xmpp.update_roster(CAROL, subscription="remove", timeout=WAIT), "removing carol")
            assert iq["type"] == "result", iq
            now = query(await roster_get(alice, cached))
            assert now is not None and now.get("ver") != cached
            assert [i.get("jid") for i in now] == [BOB]

    run(after)


@pytest.fixture
def asking_server(binary: Path, tmp_path: Path):
    """A server with ``[policy] auto_authorize = false``: a request reaches the user unless pre-approved."""
    srv = Server(binary=binary, root=tmp_path, port=free_port(), tls_port=free_port())
    write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                 tls_port=srv.tls_port, auto_authorize=False)
    for local, password in USERS.items():
        srv.add_user(local, password)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_pre_approved_request_is_approved_without_asking_across_a_restart(asking_server: Server) -> None:
    """The bound stream advertises pre-approval; alice's ``subscribed`` to bob, who has not asked, becomes a
    roster item with ``approved='true'`` and reaches bob not at all; after a restart bob's request is approved at
    once, alice is never asked, and carol's request (not pre-approved) still reaches alice."""
    server = asking_server

    async def before() -> None:
        async with clients(
            connect(server, "alice", "pc", fetch_roster=False), connect(server, "bob", "phone")
        ) as (alice, bob):
            assert "preapproval" in alice.xmpp.features
            pushed = pushes(alice)
            await roster_get(alice, None)
            alice.xmpp.send_presence(pto=BOB, ptype="subscribed")
            push = await wait(pushed.get(), "the roster push of the pre-approval")
            item = push.xml.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item")
            assert (item.get("jid"), item.get("approved"), item.get("subscription")) == (BOB, "true", "none")
            await alice.ping_server()
            await bob.ping_server()
            got = [p for p in list(bob.presences._queue) if p["type"] == "subscribed"]
            assert got == [], got

    run(before)
    server.stop()
    server.start()

    async def after() -> None:
        async with clients(
            connect(server, "alice", "pc"), connect(server, "bob", "phone"), connect(server, "carol", "pc")
        ) as (alice, bob, carol):
            bob.xmpp.send_presence(pto=ALICE, ptype="subscribe")
            await bob.presence_from(ALICE)
            assert (await bob.roster_items())[ALICE]["subscription"] == "to"
            item = (await alice.roster_items())[BOB]
            assert item["subscription"] == "from" and not item.get("approved")
            carol.xmpp.send_presence(pto=ALICE, ptype="subscribe")
            request = await wait(alice.subscribes.get(), "carol's request at alice")
            assert request["from"].bare == CAROL

    run(after)
