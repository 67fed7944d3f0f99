"""End-to-end group chat (XEP-0045), the less common cases, with slixmpp's XEP-0045 plugin (stanzas built by hand
where it has no call): one user in a room through two sessions under one nickname, mediated invitations into a
members-only room and declines, a visitor's voice request approved by a moderator, an affiliation changed by
nickname, an IQ to an occupant answered by the occupant's own client, and the 332 a stopping server sends."""

from __future__ import annotations

import asyncio

from slixmpp import JID
from slixmpp.stanza import Message

from conftest import Server
from test_muc import MUC_USER, SERVICE, codes, create, groupchat_from, join
from xmpp import DOMAIN, WAIT, Client, connect, drain, events, muc, muc_clients, run, wait

ROOM = JID(f"more@{SERVICE}")
DATA = "{jabber:x:data}"
MUC_REQUEST = "http://jabber.org/protocol/muc#request"


def room_presences(client: Client, room: JID = ROOM) -> asyncio.Queue:
    """A queue of the presences `room` sends the client (the XEP-0045 plugin takes them off the generic event)."""
    return events(client, f"muc::{room}::presence")


def form_messages(client: Client) -> asyncio.Queue:
    """A queue of the data forms messages bring the client (slixmpp's "message" event is for messages with a body
    only; XEP-0004's plugin tells of the others)."""
    return events(client, "message_xform")


async def message_with(client: Client, path: str, what: str) -> Message:
    """The next message holding the element at `path` (an ElementTree path from the message)."""
    while True:
        msg = await wait(client.messages.get(), what)
        if msg.xml.find(path) is not None:
            return msg


def test_two_sessions_of_one_user_are_one_occupant(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob", "pc"), connect(server, "bob", "phone"),
                               connect(server, "carol")) as (alice, pc, phone, carol):
            await create(alice, ROOM)
            await join(carol, "carol", ROOM)
            seen = room_presences(carol)
            await join(pc, "bob", ROOM)
            # The second session gets the whole join (the occupants, itself with 110, the subject) ...
            pres, _subject, occupants, _ = await join(phone, "bob", ROOM)
            assert 110 in codes(pres), pres
            assert {p["from"].resource for p in occupants} >= {"owner", "carol"}, occupants
            # ... while carol sees nobody new: bob arrived once, when the pc joined.
            await asyncio.sleep(0.3)
            bob = JID(f"{ROOM}/bob")
            arrivals = [p for p in drain(seen) if p["from"] == bob and p["type"] != "unavailable"]
            assert len(arrivals) == 1, arrivals
            # Messages to everyone and to the nickname reach both sessions.
            alice.xmpp.send_message(mto=ROOM, mbody="to all", mtype="groupchat")
            for s in (pc, phone):
                await groupchat_from(s, "owner", "the groupchat at both of bob's sessions")
            carol.xmpp.send_message(mto=bob, mbody="to bob", mtype="chat")
            for s in (pc, phone):
                while True:
                    m = await wait(s.messages.get(), "carol's private message at both sessions")
                    if m["type"] == "chat" and m["body"] == "to bob":
                        break
            # One session leaves: bob is still there for carol; the last one leaving takes him out.
            muc(phone).leave_muc(ROOM, "bob")
            await asyncio.sleep(0.3)
            pc.xmpp.send_message(mto=ROOM, mbody="still here", mtype="groupchat")
            await groupchat_from(carol, "bob", "bob's message after the phone left")
            assert [p for p in drain(seen) if p["type"] == "unavailable"] == []
            muc(pc).leave_muc(ROOM, "bob")
            while True:
                p = await wait(seen.get(), "bob leaving, at carol")
                if p["type"] == "unavailable" and p["from"] == bob:
                    break

    run(scenario)


def test_a_mediated_invitation_lets_the_invitee_into_a_members_only_room_and_a_decline_goes_back(
    server: Server,
) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice", "pc"), connect(server, "dave"), connect(server, "carol")) as (
            alice, dave, carol,
        ):
            await create(alice, ROOM, membersonly="1")
            muc(alice).invite(ROOM, JID(f"dave@{DOMAIN}"), reason="join us")
            invitation = await message_with(dave, f"{MUC_USER}x/{MUC_USER}invite", "dave's invitation")
            assert invitation["from"] == ROOM, invitation
            invite = invitation.xml.find(f"{MUC_USER}x/{MUC_USER}invite")
            assert JID(invite.get("from")).bare == f"alice@{DOMAIN}", invitation
            assert invite.findtext(f"{MUC_USER}reason") == "join us", invitation
            # The invitation made dave a member: he gets in.
            pres, _, _, _ = await join(dave, "dave", ROOM)
            assert pres["muc"]["affiliation"] == "member", pres

            muc(alice).invite(ROOM, JID(f"carol@{DOMAIN}"))
            await message_with(carol, f"{MUC_USER}x/{MUC_USER}invite", "carol's invitation")
            muc(carol).decline(ROOM, JID(f"alice@{DOMAIN}/pc"), reason="busy")
            declined = await message_with(alice, f"{MUC_USER}x/{MUC_USER}decline", "carol's decline at alice")
            decline = declined.xml.find(f"{MUC_USER}x/{MUC_USER}decline")
            assert declined["from"] == ROOM, declined
            assert JID(decline.get("from")).bare == f"carol@{DOMAIN}", declined
            assert decline.findtext(f"{MUC_USER}reason") == "busy", declined

    run(scenario)


def test_a_visitor_asks_for_voice_and_a_moderator_grants_it(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await create(alice, ROOM, moderatedroom="1")
            pres, _, _, _ = await join(bob, "bob", ROOM)
            assert pres["muc"]["role"] == "visitor", pres
            seen = room_presences(bob)
            forms = form_messages(alice)
            muc(bob).request_voice(ROOM, "participant")
            request = await wait(forms.get(), "the voice request at the moderator")
            form = request.xml.find(f"{DATA}x")
            values = {f.get("var"): f.findtext(f"{DATA}value") for f in form.findall(f"{DATA}field")}
            assert values["FORM_TYPE"] == MUC_REQUEST and values["muc#roomnick"] == "bob", values
            assert JID(values["muc#jid"]).bare == f"bob@{DOMAIN}", values

            answer = alice.xmpp.make_message(ROOM)
            approval = answer["form"]
            approval["type"] = "submit"
            approval.add_field(var="FORM_TYPE", ftype="hidden", value=MUC_REQUEST)
            approval.add_field(var="muc#role", value="participant")
            approval.add_field(var="muc#jid", value=values["muc#jid"])
            approval.add_field(var="muc#roomnick", value="bob")
            approval.add_field(var="muc#request_allow", ftype="boolean", value=True)
            answer.send()
            while True:
                p = await wait(seen.get(), "bob's new role")
                if p["from"] == JID(f"{ROOM}/bob") and p["muc"]["role"] == "participant":
                    break
            bob.xmpp.send_message(mto=ROOM, mbody="I may speak", mtype="groupchat")
            await groupchat_from(alice, "bob", "bob speaking")

    run(scenario)


def test_an_affiliation_is_changed_by_nickname(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await create(alice, ROOM)
            await join(bob, "bob", ROOM)
            await wait(muc(alice).set_affiliation(ROOM, "member", nick="bob", timeout=WAIT), "member by nick")
            members = await wait(muc(alice).get_affiliation_list(ROOM, "member", timeout=WAIT), "members")
            assert JID(f"bob@{DOMAIN}") in members, members

    run(scenario)


def test_an_iq_to_an_occupant_is_answered_by_its_client(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            for c in (alice, bob):
                c.xmpp.register_plugin("xep_0092")
            await create(alice, ROOM)
            await join(bob, "bob", ROOM)
            version = await wait(
                muc_version(alice, JID(f"{ROOM}/bob")), "bob's client version through the room"
            )
            # bob's client answered (slixmpp's name), seen from his occupant address.
            assert version["software_version"]["name"] == "Slixmpp", version
            assert version["from"] == JID(f"{ROOM}/bob"), version

    run(scenario)


async def muc_version(client: Client, to: JID):
    return await client.xmpp.plugin["xep_0092"].get_version(to, timeout=WAIT)


def test_a_stopping_server_tells_occupants_why_they_leave(server: Server) -> None:
    async def scenario() -> None:
        async with muc_clients(connect(server, "alice")) as (alice,):
            await create(alice, ROOM)
            seen = room_presences(alice)
            loop = asyncio.get_running_loop()
            stopping = loop.run_in_executor(None, server.stop)
            while True:
                p = await wait(seen.get(), "the 332 presence")
                if p["type"] == "unavailable" and p["from"] == JID(f"{ROOM}/owner"):
                    assert {110, 332} <= codes(p), p
                    break
            await stopping

    try:
        run(scenario)
    finally:
        server.start()
