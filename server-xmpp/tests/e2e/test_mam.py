"""End-to-end message archive management (XEP-0313) with slixmpp's xep_0313, xep_0359, xep_0441 and xep_0334
plugins: both sides of a conversation are archived, a new device pages through history forwards and backwards, the
stanza-id of a live message is its archive id, the archive survives a restart, and hints and preferences decide
what is kept."""

from __future__ import annotations

from slixmpp import JID

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"


def with_mam(client: Client) -> Client:
    for p in ("xep_0313", "xep_0359", "xep_0441", "xep_0334"):
        client.xmpp.register_plugin(p)
    return client


async def history(client: Client, *, with_jid: str | None = None, reverse: bool = False, page: int = 10):
    """Every archived message, paging `page` at a time (forwards, or from the end when `reverse`)."""
    out = []

    async def collect() -> None:
        async for m in client.xmpp.plugin["xep_0313"].iterate(
            with_jid=JID(with_jid) if with_jid else None, reverse=reverse, rsm={"max": page}
        ):
            fwd = m["mam_result"]["forwarded"]
            out.append((str(fwd["stanza"]["from"].bare), fwd["stanza"]["body"], m["mam_result"]["id"]))

    await wait(collect(), f"the archive of {client.jid}", timeout=WAIT * 2)
    return out


def test_a_new_device_pages_through_both_sides_of_the_conversation(server: Server) -> None:
    async def chat() -> None:
        async with clients(connect(server, "alice", "desk"), connect(server, "bob")) as (alice, bob):
            with_mam(bob)
            for i in range(23):
                alice.send_message(BOB, f"a{i}")
                got = await bob.next_message()
                assert got["body"] == f"a{i}"
                if i == 0:
                    first_id = got["stanza_id"]["id"]
                    assert got["stanza_id"]["by"] == JID(BOB), got
            bob.send_message(ALICE, "b0")
            assert (await alice.next_message())["body"] == "b0"
            archived = await history(bob)
            assert archived[0][2] == first_id, "the live stanza-id is the archive id"

    run(chat)
    server.stop()
    server.start()

    async def catch_up() -> None:
        async with clients(connect(server, "alice", "new-phone")) as (phone,):
            with_mam(phone)
            expected = [(ALICE, f"a{i}") for i in range(23)] + [(BOB, "b0")]
            forwards = await history(phone)
            assert [(f, b) for f, b, _ in forwards] == expected
            ids = [int(i) for _, _, i in forwards]
            assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
            backwards = await history(phone, reverse=True, page=7)
            assert [(f, b) for f, b, _ in backwards] == list(reversed(expected))

    run(catch_up)


def test_filters_hints_and_preferences_decide_what_is_kept(server: Server) -> None:
    async def scenario() -> None:
        async with clients(
            connect(server, "alice"), connect(server, "bob"), connect(server, "carol")
        ) as (alice, bob, carol):
            with_mam(alice)
            alice.send_message(BOB, "to bob")
            alice.send_message(CAROL, "to carol")
            secret = alice.xmpp.make_message(mto=BOB, mbody="not archived", mtype="chat")
            secret["no-store"] = True
            secret.send()
            for client, bodies in ((bob, ["to bob", "not archived"]), (carol, ["to carol"])):
                for body in bodies:
                    assert (await client.next_message())["body"] == body
            assert [b for _, b, _ in await history(alice)] == ["to bob", "to carol"]
            assert [b for _, b, _ in await history(alice, with_jid=CAROL)] == ["to carol"]

            await wait(
                alice.xmpp.plugin["xep_0441"].set_preferences(default="always", never=[JID(BOB)], timeout=WAIT),
                "setting preferences",
            )
            default, always, never = await wait(
                alice.xmpp.plugin["xep_0441"].get_preferences(timeout=WAIT), "reading preferences"
            )
            assert (default, [str(j) for j in never]) == ("always", [BOB])
            alice.send_message(BOB, "after never-bob")
            alice.send_message(CAROL, "still kept")
            assert (await bob.next_message())["body"] == "after never-bob"
            assert (await carol.next_message())["body"] == "still kept"
            assert [b for _, b, _ in await history(alice)] == ["to bob", "to carol", "still kept"]
            # bob's own archive follows bob's preferences, not alice's.
            with_mam(bob)
            assert [b for _, b, _ in await history(bob)] == ["to bob", "after never-bob"]

    run(scenario)


def test_another_users_archive_is_refused_and_advertised_features_are_served(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            with_mam(bob)
            info = await wait(bob.xmpp.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=WAIT), "disco#info")
            assert "urn:xmpp:mam:2" in info["disco_info"]["features"]
            form = await wait(bob.xmpp.plugin["xep_0313"].get_fields(timeout=WAIT), "the query form")
            assert {"with", "start", "end", "before-id", "after-id", "ids"} <= {f["var"] for f in form["fields"]}
            try:
                await wait(bob.xmpp.plugin["xep_0313"].retrieve(jid=JID(ALICE), timeout=WAIT), "alice's archive")
            except Exception as e:  # IqError
                assert getattr(e, "iq")["error"]["condition"] == "forbidden", e
            else:
                raise AssertionError("bob read alice's archive")

    run(scenario)
