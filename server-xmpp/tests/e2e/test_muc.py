"""End-to-end group chat (XEP-0045) against `presenced serve`, with slixmpp's own XEP-0045 plugin: creating and
configuring a room, joining with the occupant list and self-presence (110), messages to everyone, history with
its delay on join, the subject, nickname conflicts and changes (303), private messages, kick (307) and ban (301),
password-protected and members-only refusals, destruction with an alternate venue, a persistent room that
survives a restart, XEP-0410 self-ping, XEP-0421 occupant ids, the service in the server's disco#items, and the
service's own disco#items listing every public room whichever engine shard serves it (PRESENCED_SHARDS)."""

from __future__ import annotations

import asyncio

from slixmpp import JID
from slixmpp.exceptions import IqError, PresenceError

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, muc, muc_clients, run, wait, with_muc

SERVICE = f"conference.{DOMAIN}"
ROOM = JID(f"team@{SERVICE}")
MUC_USER = "{http://jabber.org/protocol/muc#user}"


def codes(stanza) -> set[int]:
    """The muc#user status codes of a presence or message."""
    x = stanza.xml.find(f"{MUC_USER}x")
    return set() if x is None else {int(s.get("code")) for s in x.findall(f"{MUC_USER}status")}


async def join(client: Client, nick: str, room: JID = ROOM, **kwargs):
    return await muc(client).join_muc_wait(room, nick, timeout=WAIT, **kwargs)


async def create(owner: Client, room: JID = ROOM, **fields: str) -> None:
    """Joins as the first occupant (201) and submits the configuration form with `fields` set."""
    pres, _subject, _occupants, _history = await join(owner, "owner", room)
    assert codes(pres) >= {110, 201}, pres
    await configure(owner, room, **fields)


async def configure(owner: Client, room: JID = ROOM, **fields: str) -> None:
    """Submits the room's configuration form with `fields` set."""
    form = await wait(muc(owner).get_room_config(room, timeout=WAIT), "the configuration form")
    for var, value in fields.items():
        form.set_values({**form.get_values(), f"muc#roomconfig_{var}": value})
    await wait(muc(owner).set_room_config(room, form, timeout=WAIT), "submitting the configuration")


async def groupchat_from(client: Client, nick: str, what: str):
    while True:
        msg = await wait(client.messages.get(), what)
        if msg["type"] == "groupchat" and msg["from"].resource == nick and msg["body"]:
            return msg


def test_service_is_listed_and_describes_itself(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            disco = alice.xmpp.plugin["xep_0030"]
            items = await wait(disco.get_items(jid=JID(DOMAIN), local=False, timeout=WAIT), "server items")
            assert SERVICE in {str(i[0]) for i in items["disco_items"]["items"]}, items
            info = await wait(disco.get_info(jid=JID(SERVICE), local=False, timeout=WAIT), "service info")
            assert ("conference", "text") in {(c, t) for c, t, _, _ in info["disco_info"]["identities"]}
            assert "http://jabber.org/protocol/muc" in info["disco_info"]["features"]

    run(scenario)


def test_the_service_lists_every_public_room_to_every_user(server: Server) -> None:
    """Rooms created by users on different shards (with several, the rooms' homes spread over them) are all
    listed, by name, to every user, whichever shard answers; a hidden room and a room still locked are not,
    and a room made private or destroyed leaves the listing."""

    def room(name: str) -> JID:
        return JID(f"{name}@{SERVICE}")

    async def listed(client: Client) -> dict[str, str]:
        items = await wait(client.xmpp.plugin["xep_0030"].get_items(jid=JID(SERVICE), local=False, timeout=WAIT),
                           "the service's rooms")
        return {str(jid): name for jid, _node, name in items["disco_items"]["items"]}

    async def scenario() -> None:
        users = ("alice", "bob", "carol", "dave")
        async with muc_clients(*(connect(server, u) for u in users)) as everyone:
            expected = {}
            for n, owner in enumerate(everyone):
                for k in range(2):
                    name = f"{users[n]}-{k}"
                    await create(owner, room(name), roomname=f"Room of {users[n]} {k}")
                    expected[str(room(name))] = f"Room of {users[n]} {k}"
            await create(everyone[0], room("hidden"), publicroom="0")
            # Entered but never configured: it stays locked (slixmpp's join waits for a subject that a locked room
            # does not send, so the presence goes out without waiting).
            muc(everyone[1]).join_muc(room("locked"), "owner")
            for client in everyone:
                assert await listed(client) == expected
            # Made private by its owner, then destroyed by another: every user's listing follows.
            await configure(everyone[2], room("carol-0"), publicroom="0")
            del expected[str(room("carol-0"))]
            await wait(muc(everyone[3]).destroy(room("dave-1"), timeout=WAIT), "destroy")
            del expected[str(room("dave-1"))]
            for client in everyone:
                assert await listed(client) == expected

    run(scenario)


def test_three_join_talk_and_a_newcomer_gets_history_and_the_subject(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob"), connect(server, "carol"),
                               connect(server, "dave")) as (alice, bob, carol, dave):
            await create(alice, roomname="Team", changesubject="1")
            pres, subject, occupants, _ = await join(bob, "bob")
            assert 110 in codes(pres) and pres["muc"]["role"] == "participant", pres
            # slixmpp's occupant list counts the joiner too, whose self-presence comes last.
            assert [p["from"].resource for p in occupants] == ["owner", "bob"], occupants
            assert not subject["subject"], subject
            pres, _, occupants, _ = await join(carol, "carol")
            assert [p["from"].resource for p in occupants][-1] == "carol", occupants
            assert sorted(p["from"].resource for p in occupants) == ["bob", "carol", "owner"], occupants
            assert pres["muc"]["affiliation"] == "none", pres

            bob.xmpp.send_message(mto=ROOM, mbody="hello all", mtype="groupchat")
            for c in (alice, bob, carol):
                msg = await groupchat_from(c, "bob", f"bob's message at {c.jid}")
                assert msg["body"] == "hello all", msg
                occupant_id = msg.xml.find("{urn:xmpp:occupant-id:0}occupant-id")
                assert occupant_id is not None and occupant_id.get("id"), msg
            subjects: asyncio.Queue = asyncio.Queue()
            alice.xmpp.add_event_handler("groupchat_subject", subjects.put_nowait)
            # The room lets participants change the subject (changesubject in the form).
            muc(carol).set_subject(ROOM, "Plans for today")
            subject_msg = await wait(subjects.get(), "the subject change")
            assert subject_msg["subject"] == "Plans for today", subject_msg
            assert subject_msg["from"] == JID(f"{ROOM}/carol"), subject_msg

            pres, subject, occupants, history = await join(dave, "dave", maxstanzas=10)
            assert [m["body"] for m in history] == ["hello all"], history
            assert history[0]["delay"]["from"] == ROOM, history[0]
            assert subject["subject"] == "Plans for today", subject
            assert sorted(p["from"].resource for p in occupants) == ["bob", "carol", "dave", "owner"]
            assert sorted(muc(alice).get_roster(ROOM)) == ["bob", "carol", "dave", "owner"]

    run(scenario)


def test_nick_conflict_nick_change_and_private_messages(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob"), connect(server, "carol")) as (
            alice, bob, carol,
        ):
            await create(alice)
            await join(bob, "bob")
            try:
                await join(carol, "bob")
                raise AssertionError("a taken nickname was accepted")
            except PresenceError as e:
                assert e.condition == "conflict", e
            await join(carol, "carol")

            changed = asyncio.get_running_loop().create_future()

            def on_presence(p) -> None:
                if 303 in codes(p) and not changed.done():
                    changed.set_result(p)

            alice.xmpp.add_event_handler("muc::%s::presence" % ROOM, on_presence)
            await wait(muc(bob).set_self_nick(ROOM, "robert", timeout=WAIT), "bob's new nickname")
            gone = await wait(changed, "the 303 presence at alice")
            assert gone["from"].resource == "bob" and gone["muc"]["item_nick"] == "robert", gone

            carol.xmpp.send_message(mto=JID(f"{ROOM}/robert"), mbody="just for you", mtype="chat")
            pm = await groupchat_like_pm(bob)
            assert pm["from"] == JID(f"{ROOM}/carol") and pm["body"] == "just for you", pm

    run(scenario)


async def groupchat_like_pm(client: Client):
    while True:
        msg = await wait(client.messages.get(), "a private message")
        if msg["type"] == "chat":
            return msg


def test_kick_ban_and_refusals(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob"), connect(server, "carol"),
                               connect(server, "dave")) as (alice, bob, carol, dave):
            await create(alice)
            await join(bob, "bob")
            await join(carol, "carol")
            kicked = asyncio.get_running_loop().create_future()
            bob.xmpp.add_event_handler(
                "muc::%s::presence" % ROOM,
                lambda p: kicked.done() or (307 in codes(p) and kicked.set_result(p)),
            )
            await wait(muc(alice).set_role(ROOM, "bob", "none", reason="calm down", timeout=WAIT), "kick")
            p = await wait(kicked, "bob's kick")
            assert {110, 307} <= codes(p) and p["type"] == "unavailable", p
            # A participant may not kick; the owner can never be kicked.
            try:
                await wait(muc(carol).set_role(ROOM, "owner", "none", timeout=WAIT), "carol kicking the owner")
                raise AssertionError("a participant kicked the owner")
            except IqError as e:
                assert e.condition == "not-allowed", e
            await wait(muc(alice).set_affiliation(ROOM, "outcast", jid=JID(f"carol@{DOMAIN}"), timeout=WAIT), "ban")
            outcasts = await wait(muc(alice).get_affiliation_list(ROOM, "outcast", timeout=WAIT), "outcasts")
            assert [str(j) for j in outcasts] == [f"carol@{DOMAIN}"], outcasts
            try:
                await join(carol, "carol")
                raise AssertionError("a banned user joined")
            except PresenceError as e:
                assert e.condition == "forbidden", e
            moderators = await wait(muc(alice).get_roles_list(ROOM, "moderator", timeout=WAIT), "moderators")
            assert moderators == ["owner"], moderators

            # Password-protected, then members-only.
            form = await wait(muc(alice).get_room_config(ROOM, timeout=WAIT), "form")
            form.set_values({**form.get_values(), "muc#roomconfig_passwordprotectedroom": "1",
                             "muc#roomconfig_roomsecret": "letmein"})
            await wait(muc(alice).set_room_config(ROOM, form, timeout=WAIT), "password on")
            try:
                await join(dave, "dave")
                raise AssertionError("joined without the password")
            except PresenceError as e:
                assert e.condition == "not-authorized", e
            await join(dave, "dave", password="letmein")
            muc(dave).leave_muc(ROOM, "dave")
            form = await wait(muc(alice).get_room_config(ROOM, timeout=WAIT), "form")
            form.set_values({**form.get_values(), "muc#roomconfig_membersonly": "1"})
            await wait(muc(alice).set_room_config(ROOM, form, timeout=WAIT), "members-only on")
            try:
                await join(dave, "dave", password="letmein")
                raise AssertionError("a non-member joined a members-only room")
            except PresenceError as e:
                assert e.condition == "registration-required", e

    run(scenario)


def test_self_ping_and_messages_from_outside(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await create(alice)
            await wait(alice.xmpp.plugin["xep_0199"].send_ping(JID(f"{ROOM}/owner"), timeout=WAIT), "self-ping")
            try:
                await wait(bob.xmpp.plugin["xep_0199"].send_ping(JID(f"{ROOM}/owner"), timeout=WAIT), "ping")
                raise AssertionError("a non-occupant's self-ping was answered")
            except IqError as e:
                assert e.condition == "not-acceptable", e
            errors: asyncio.Queue = asyncio.Queue()
            bob.xmpp.add_event_handler("groupchat_message_error", errors.put_nowait)
            bob.xmpp.send_message(mto=ROOM, mbody="let me in", mtype="groupchat")
            err = await wait(errors.get(), "the error for an outsider's message")
            assert err["type"] == "error" and err["error"]["condition"] == "not-acceptable", err
            # Once in, a ping to another occupant's address is answered by that occupant's own client.
            await join(bob, "bob")
            await wait(bob.xmpp.plugin["xep_0199"].send_ping(JID(f"{ROOM}/owner"), timeout=WAIT),
                       "a ping to another occupant, answered by its client")

    run(scenario)


def test_destroy_tells_occupants_where_to_go(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await create(alice)
            await join(bob, "bob")
            gone = asyncio.get_running_loop().create_future()
            bob.xmpp.add_event_handler(
                "muc::%s::presence" % ROOM,
                lambda p: gone.done() or (p["type"] == "unavailable" and gone.set_result(p)),
            )
            await wait(muc(alice).destroy(ROOM, reason="moving", altroom=JID(f"new@{SERVICE}"), timeout=WAIT),
                       "destroy")
            p = await wait(gone, "the destruction at bob")
            destroy = p.xml.find(f"{MUC_USER}x/{MUC_USER}destroy")
            assert destroy is not None and destroy.get("jid") == f"new@{SERVICE}", p
            assert destroy.findtext(f"{MUC_USER}reason") == "moving", p
            items = await wait(alice.xmpp.plugin["xep_0030"].get_items(jid=JID(SERVICE), local=False, timeout=WAIT),
                               "rooms")
            assert not items["disco_items"]["items"], items

    run(scenario)


def test_a_persistent_room_survives_a_restart(server: Server) -> None:
    async def before() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await create(alice, persistentroom="1", roomname="Kept", whois="anyone")
            await join(bob, "bob")
            bob.xmpp.send_message(mto=ROOM, mbody="before the restart", mtype="groupchat")
            await groupchat_from(alice, "bob", "bob's message")
            await wait(muc(alice).set_affiliation(ROOM, "member", jid=JID(f"bob@{DOMAIN}"), timeout=WAIT), "member")

    run(before)
    server.stop()
    server.start()

    async def after() -> None:
        async with muc_clients(connect(server, "bob"), connect(server, "alice")) as (bob, alice):
            info = await wait(bob.xmpp.plugin["xep_0030"].get_info(jid=ROOM, local=False, timeout=WAIT), "room info")
            features = set(info["disco_info"]["features"])
            assert {"muc_persistent", "muc_nonanonymous", "muc_public", "muc_open"} <= features, features
            pres, _, _, history = await join(bob, "bob", maxstanzas=5)
            assert pres["muc"]["affiliation"] == "member", pres
            assert 100 in codes(pres), pres
            assert [m["body"] for m in history] == ["before the restart"], history
            # Alice is still the owner.
            pres, _, _, _ = await join(alice, "owner")
            assert pres["muc"]["affiliation"] == "owner", pres

    run(after)


def test_a_direct_invitation_reaches_the_invitee_who_joins(server: Server) -> None:
    """XEP-0249: an invitation is a message between users carrying the room's address; the server passes it on
    untouched (also to an invitee who is not in the room), and the invitee enters with the address it names."""

    async def scenario() -> None:
        async with clients(connect(server, "alice", "pc"), connect(server, "bob", "pc")) as (alice, bob):
            for c in (alice, bob):
                with_muc(c)
                c.xmpp.register_plugin("xep_0249")
            got: asyncio.Queue = asyncio.Queue()
            bob.xmpp.add_event_handler("groupchat_direct_invite", lambda m: got.put_nowait(m))
            room = JID(f"invited@{SERVICE}")
            await create(alice, room)
            alice.xmpp.plugin["xep_0249"].send_invitation(
                JID(f"bob@{DOMAIN}"), room, reason="come and see"
            )
            invite = await wait(got.get(), "bob's direct invitation")
            x = invite["groupchat_invite"]
            assert JID(x["jid"]) == room and x["reason"] == "come and see", invite
            assert invite["from"].bare == f"alice@{DOMAIN}", invite
            pres, _subject, _occupants, _history = await join(bob, "bob", JID(x["jid"]))
            assert 110 in codes(pres), pres

    run(scenario)
