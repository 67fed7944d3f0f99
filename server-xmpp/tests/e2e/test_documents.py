"""End-to-end private XML storage (XEP-0049, through slixmpp's xep_0048 bookmarks plugin) and vCard-temp
(XEP-0054, slixmpp's xep_0054 plugin) against `presenced serve`: stored, read back from another device and
after a restart, readable by other users where the XEP says so, and refused where it does not."""

from __future__ import annotations

from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048.stanza import Bookmarks
from slixmpp.plugins.xep_0054.stanza import VCardTemp

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def with_plugins(client: Client) -> Client:
    client.xmpp.register_plugin("xep_0048", {"auto_join": False})
    client.xmpp.register_plugin("xep_0054")
    return client


async def bookmarked_rooms(client: Client) -> list[str]:
    result = await wait(
        client.xmpp.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=WAIT),
        f"bookmarks of {client.jid}",
    )
    return [str(c["jid"]) for c in result["private"]["bookmarks"]["conferences"]]


async def vcard_of(client: Client, jid: str | None) -> VCardTemp:
    result = await wait(
        client.xmpp.plugin["xep_0054"].get_vcard(JID(jid) if jid else None, local=False, timeout=WAIT),
        f"vCard of {jid} for {client.jid}",
    )
    return result["vcard_temp"]


def test_bookmarks_in_private_storage_reach_another_device_and_survive_a_restart(server: Server) -> None:
    async def store() -> None:
        async with clients(connect(server, "alice", "desk")) as (desk,):
            with_plugins(desk)
            assert await bookmarked_rooms(desk) == [], "nothing stored yet"
            marks = Bookmarks()
            marks.add_conference("team@conference.localhost", "alice", name="Team", autojoin=True)
            await wait(
                desk.xmpp.plugin["xep_0048"].set_bookmarks(marks, method="xep_0049", timeout=WAIT),
                "storing bookmarks",
            )
            async with clients(connect(server, "alice", "phone")) as (phone,):
                with_plugins(phone)
                assert await bookmarked_rooms(phone) == ["team@conference.localhost"]

    run(store)
    server.stop()
    server.start()

    async def after_restart() -> None:
        async with clients(connect(server, "alice", "laptop")) as (laptop,):
            with_plugins(laptop)
            assert await bookmarked_rooms(laptop) == ["team@conference.localhost"]

    run(after_restart)


def test_private_data_of_another_user_is_forbidden(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            with_plugins(bob)
            iq = bob.xmpp.make_iq_get(ito=ALICE)
            iq["private"].enable("bookmarks")
            try:
                await wait(iq.send(timeout=WAIT), "a get of alice's private data")
            except IqError as e:
                assert e.iq["error"]["condition"] == "forbidden", e.iq
            else:
                raise AssertionError("bob read alice's private storage")

    run(scenario)


def test_a_vcard_is_public_but_only_its_owner_sets_it(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            with_plugins(alice)
            with_plugins(bob)
            assert (await vcard_of(bob, ALICE))["FN"] == "", "a user who set no card has an empty one"

            card = VCardTemp()
            card["FN"] = "Alice Liddell"
            card["NICKNAME"] = "alice"
            await wait(alice.xmpp.plugin["xep_0054"].publish_vcard(card, timeout=WAIT), "publishing")
            assert (await vcard_of(alice, None))["FN"] == "Alice Liddell", "her own card, no 'to'"
            seen = await vcard_of(bob, ALICE)
            assert (seen["FN"], list(seen["NICKNAME"])) == ("Alice Liddell", ["alice"])

            forged = VCardTemp()
            forged["FN"] = "Mallory"
            try:
                await wait(bob.xmpp.plugin["xep_0054"].publish_vcard(forged, jid=JID(ALICE), timeout=WAIT), "forging")
            except IqError as e:
                assert e.iq["error"]["condition"] == "forbidden", e.iq
            else:
                raise AssertionError("bob replaced alice's vCard")
            assert (await vcard_of(bob, ALICE))["FN"] == "Alice Liddell"

            try:
                await vcard_of(bob, f"nobody@{DOMAIN}")
            except IqError as e:
                assert e.iq["error"]["condition"] == "item-not-found", e.iq
            else:
                raise AssertionError("a card for a user that does not exist")

    run(scenario)


def test_a_vcard_over_the_size_limit_is_refused_and_the_old_one_kept(server_files: Server) -> None:
    with open(server_files.config, "a") as f:
        f.write("\n[limits]\nmax_document_bytes = 2048\n")
    server_files.start()
    try:

        async def scenario() -> None:
            async with clients(connect(server_files, "alice")) as (alice,):
                with_plugins(alice)
                small = VCardTemp()
                small["FN"] = "Alice"
                await wait(alice.xmpp.plugin["xep_0054"].publish_vcard(small, timeout=WAIT), "small card")
                big = VCardTemp()
                big["FN"] = "Alice"
                big["DESC"] = "x" * 4096
                try:
                    await wait(alice.xmpp.plugin["xep_0054"].publish_vcard(big, timeout=WAIT), "big card")
                except IqError as e:
                    assert e.iq["error"]["condition"] == "not-acceptable", e.iq
                    assert "2048" in e.iq["error"]["text"], e.iq
                else:
                    raise AssertionError("a card over the limit was stored")
                kept = await vcard_of(alice, None)
                assert (kept["FN"], kept["DESC"] or "") == ("Alice", ""), kept

        run(scenario)
    finally:
        server_files.stop()
