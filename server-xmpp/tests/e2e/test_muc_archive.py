"""End-to-end room archives (XEP-0313 on a XEP-0045 room) with slixmpp's xep_0045, xep_0313 and xep_0359
plugins: a persistent room says 170 on join and advertises urn:xmpp:mam:2, its broadcasts carry a stanza-id given
by the room, a client pages through the room's archive (forwards and from the end, filtered by occupant) and finds
the same ids, the archive and the history survive a restart (on the embedded store and on PostgreSQL), and an ad
hoc room has no archive to read."""

from __future__ import annotations

from pathlib import Path

from slixmpp import JID
from slixmpp.exceptions import IqError

from conftest import USERS, Server, free_port, write_config
from services import Postgres
from test_muc import codes, create, groupchat_from, join
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

SERVICE = f"conference.{DOMAIN}"
ROOM = JID(f"logged@{SERVICE}")
NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"


def with_plugins(client: Client) -> Client:
    for plugin in ("xep_0004", "xep_0045", "xep_0313", "xep_0359"):
        client.xmpp.register_plugin(plugin)
    return client


def stanza_id(msg) -> tuple[str | None, str | None]:
    sid = msg.xml.find(f"{{{NS_SID}}}stanza-id")
    return (None, None) if sid is None else (sid.get("id"), sid.get("by"))


async def room_history(client: Client, *, reverse: bool = False, page: int = 4, with_jid: JID | None = None):
    """(nick, body, archive id) of every message of the room's archive, `page` at a time."""
    out = []

    async def collect() -> None:
        async for m in client.xmpp.plugin["xep_0313"].iterate(
            jid=ROOM, with_jid=with_jid, reverse=reverse, rsm={"max": page}
        ):
            fwd = m["mam_result"]["forwarded"]
            inner = fwd["stanza"]
            assert inner["type"] == "groupchat", inner
            out.append((inner["from"].resource, inner["body"], m["mam_result"]["id"]))

    await wait(collect(), f"the archive of {ROOM}", timeout=WAIT * 2)
    return out


BODIES = [f"m{i}" for i in range(9)]


def talk_and_page(server: Server) -> list[str]:
    """Alice makes a persistent room, she and bob talk, both page through the archive; returns the live ids."""
    bodies = BODIES
    live_ids: list[str] = []

    async def talk() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            for c in (alice, bob):
                with_plugins(c)
            await create(alice, ROOM, persistentroom="1", roomname="Logged")
            pres, _, _, _ = await join(bob, "bob", ROOM)
            assert 170 in codes(pres), pres
            info = await wait(bob.xmpp.plugin["xep_0030"].get_info(jid=ROOM, local=False, timeout=WAIT), "info")
            features = set(info["disco_info"]["features"])
            assert {NS_MAM, NS_SID} <= features, features
            form = await wait(bob.xmpp.plugin["xep_0313"].get_fields(jid=ROOM, timeout=WAIT), "the query form")
            assert {"with", "start", "end", "before-id", "after-id"} <= {f["var"] for f in form["fields"]}, form
            for i, body in enumerate(bodies):
                sender, nick = (bob, "bob") if i % 2 == 0 else (alice, "owner")
                sender.xmpp.send_message(mto=ROOM, mbody=body, mtype="groupchat")
                msg = await groupchat_from(alice, nick, f"{body} at alice")
                sid, by = stanza_id(msg)
                assert by == str(ROOM) and sid, msg
                live_ids.append(sid)
                other = await groupchat_from(bob, nick, f"{body} at bob")
                assert stanza_id(other) == (sid, by), "every occupant sees the same id"

            forwards = await room_history(bob)
            assert [b for _, b, _ in forwards] == bodies, forwards
            assert [i for _, _, i in forwards] == live_ids, "the live stanza-ids are the archive ids"
            backwards = await room_history(alice, reverse=True, page=2)
            assert [b for _, b, _ in backwards] == list(reversed(bodies)), backwards
            only_bob = await room_history(alice, with_jid=JID(f"{ROOM}/bob"))
            assert [b for _, b, _ in only_bob] == bodies[0::2], only_bob
            assert {n for n, _, _ in only_bob} == {"bob"}

    run(talk)
    return live_ids


def after_restart(server: Server, live_ids: list[str]) -> None:
    """Carol, after a restart, finds the archive and the history as they were."""
    bodies = BODIES

    async def after() -> None:
        async with clients(connect(server, "carol")) as (carol,):
            with_plugins(carol)
            forwards = await room_history(carol, page=5)
            assert [(b, i) for _, b, i in forwards] == list(zip(bodies, live_ids)), forwards
            pres, _, _, history = await join(carol, "carol", ROOM, maxstanzas=3)
            assert 170 in codes(pres), pres
            assert [m["body"] for m in history] == bodies[-3:], history
            assert [stanza_id(m)[0] for m in history] == live_ids[-3:], "history keeps the stanza-ids"
            carol.xmpp.send_message(mto=ROOM, mbody="after", mtype="groupchat")
            msg = await groupchat_from(carol, "carol", "carol's message")
            assert int(stanza_id(msg)[0]) == int(live_ids[-1]) + 1, "the counter goes on"

    run(after)


def test_a_persistent_rooms_archive_is_paged_with_the_live_stanza_ids_and_survives_a_restart(server: Server) -> None:
    live_ids = talk_and_page(server)
    server.stop()
    server.start()
    after_restart(server, live_ids)


def test_the_room_archive_lives_in_postgres(binary: Path, tmp_path: Path) -> None:
    with Postgres() as postgres:
        srv = Server(binary=binary, root=tmp_path, port=free_port())
        write_config(
            srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
            tables=f'[store]\nkind = "postgres"\nurl = "{postgres.url("presenced")}"\npool = 2\n',
        )
        for local, password in USERS.items():
            srv.add_user(local, password)
        srv.start()
        try:
            live_ids = talk_and_page(srv)
            rows = postgres.psql("presenced", f"SELECT count(*) FROM room_archive WHERE owner = '{ROOM}'")
            assert int(rows.stdout) == len(BODIES), "one row per message"
            srv.stop()
            srv.start()
            after_restart(srv, live_ids)
        finally:
            srv.stop()


def test_an_ad_hoc_room_has_no_archive(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            with_plugins(alice)
            adhoc = JID(f"passing@{SERVICE}")
            await create(alice, adhoc)
            info = await wait(alice.xmpp.plugin["xep_0030"].get_info(jid=adhoc, local=False, timeout=WAIT), "info")
            assert NS_MAM not in set(info["disco_info"]["features"])
            try:
                await wait(alice.xmpp.plugin["xep_0313"].retrieve(jid=adhoc, timeout=WAIT), "the refusal")
            except IqError as e:
                assert e.condition == "feature-not-implemented", e.iq
            else:
                raise AssertionError("an ad hoc room answered an archive query")
            try:
                await wait(
                    alice.xmpp.plugin["xep_0313"].retrieve(jid=JID(f"nowhere@{SERVICE}"), timeout=WAIT), "refusal"
                )
            except IqError as e:
                assert e.condition == "item-not-found", e.iq
            else:
                raise AssertionError("an unknown room answered an archive query")

    run(scenario)
