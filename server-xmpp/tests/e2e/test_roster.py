"""End-to-end roster versioning (RFC 6121 §2.6) and subscription pre-approval (RFC 6121 §3.4) against
`presenced serve`, with slixmpp: the stream features, an empty result for a current cached version, the full roster
for a stale one, pushes with their version, and versions that stay valid across a restart."""

from __future__ import annotations

import asyncio

from slixmpp.stanza import Iq

from conftest import Server
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
