"""pjsua2 (PJSIP, PyPI ``pjsua2-python``) as a second real SIP client beside sipp: softphones
that register, publish, watch each other as buddies and exchange MESSAGEs, checked by what
pjsua2 itself shows (its buddy ``presStatus``: status, activity, note; its IM callbacks).

Each user is one agent process (``pjagent.py``, driven through ``pjsua.py``): pjsua2's Endpoint
is a per-process singleton. Agents' pjsua logs (every SIP message) are in the test's tmp dir.
Every wait is bounded (``pjsua.WAIT`` per event, ``QUIT_TIMEOUT`` then a kill at teardown;
``xmpp.WAIT`` and ``SCENARIO_TIMEOUT`` on the XMPP side).
"""

from __future__ import annotations

import asyncio
import uuid

from pjsua import PjAgent, PjAgents
from test_interop import ON_THE_PHONE, etag_of, sipp_ok, sipp_trusted, trusted_server  # noqa: F401
from xmpp import clients, connect, run, wait_until

ALICE_URI, BOB_URI = "sip:alice@localhost", "sip:bob@localhost"
ALICE, BOB = "alice@localhost", "bob@localhost"
#: seconds to wait for something that must NOT happen
QUIET = 1.5


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def buddy(uri: str, status: str, **fields):
    """A predicate: a buddy-state event about ``uri`` showing ``status`` and the given fields."""
    def pred(ev: dict) -> bool:
        return (ev.get("ev") == "buddy" and ev.get("uri") == uri and ev.get("status") == status
                and all(ev.get(k) == v for k, v in fields.items()))
    pred.__qualname__ = f"buddy({uri!r}, {status!r}, {fields})"
    return pred


def im_from(uri: str, body: str):
    def pred(ev: dict) -> bool:
        return ev.get("ev") == "im" and uri in ev.get("from", "") and ev.get("body") == body
    pred.__qualname__ = f"im_from({uri!r}, {body!r})"
    return pred


def buddies(pj_agents: PjAgents) -> tuple[PjAgent, PjAgent]:
    """alice and bob registered (200), published online and each the other's buddy, seen online
    with no activity."""
    alice, bob = pj_agents("alice"), pj_agents("bob")
    for agent in (alice, bob):
        agent.do(cmd="status", state="online")
    alice.do(cmd="buddy", user="bob")
    bob.do(cmd="buddy", user="alice")
    alice.expect(buddy(BOB_URI, "online", activity=""))
    bob.expect(buddy(ALICE_URI, "online", activity=""))
    return alice, bob


def send_im(sender: PjAgent, to: str, text: str) -> None:
    """``sender`` sends ``to`` a MESSAGE and it is answered 200 (after pjsua's digest round)."""
    sender.do(cmd="im", user=to, text=text)
    status = sender.expect(ev="im_status")
    assert status["code"] == 200 and status["body"] == text, sender.describe(f"MESSAGE to {to}: {status}")


# -- presence between two softphones ------------------------------------------------------------


def test_register_publish_and_see_each_other_online(pj_agents):
    """Both REGISTER (200), PUBLISH open and SUBSCRIBE to each other: each sees the other online
    (pjsua2 status 1, no activity), in an active subscription."""
    alice, bob = buddies(pj_agents)
    for agent, other in ((alice, BOB_URI), (bob, ALICE_URI)):
        seen = [e for e in agent.events if e.get("ev") == "buddy" and e.get("uri") == other]
        assert seen[-1]["status_text"] == "Online", agent.describe(f"last state of {other}")
        assert any(e.get("sub_state") == "ACTIVE" for e in agent.events
                   if e.get("ev") in ("buddy", "buddy_sub") and e.get("uri") == other), (
            agent.describe(f"no ACTIVE subscription to {other}"))


def test_busy_with_note_is_online_busy_with_the_note(pj_agents):
    """alice publishes open + RPID busy + a note (pjsua2's "Busy"): bob sees her online (basic
    open, DESIGN §2: Busy is online), activity busy, with the note; back to plain online, bob sees
    online without activity."""
    alice, bob = buddies(pj_agents)
    alice.do(cmd="status", state="online", activity="busy", note="In a meeting")
    ev = bob.expect(buddy(ALICE_URI, "online", activity="busy", note="In a meeting"))
    assert ev["status_text"] == "In a meeting", bob.describe(str(ev))
    alice.do(cmd="status", state="online")
    bob.expect(buddy(ALICE_URI, "online", activity="", note=""))


def test_away_and_note_without_activity(pj_agents):
    """alice publishes open + RPID away with a note: bob sees online, away, the note; then open
    with a note and no activity: online, no activity, that note."""
    alice, bob = buddies(pj_agents)
    alice.do(cmd="status", state="online", activity="away", note="Back in 5")
    bob.expect(buddy(ALICE_URI, "online", activity="away", note="Back in 5"))
    alice.do(cmd="status", state="online", note="Working from home")
    bob.expect(buddy(ALICE_URI, "online", activity="", note="Working from home"))


def test_appear_offline_is_offline_then_online_again(pj_agents):
    """alice publishes closed while staying registered ("appear offline"): bob sees her offline;
    she publishes open again: online."""
    alice, bob = buddies(pj_agents)
    alice.do(cmd="status", state="offline")
    bob.expect(buddy(ALICE_URI, "offline"))
    alice.do(cmd="status", state="online")
    bob.expect(buddy(ALICE_URI, "online"))


def test_unregister_is_offline(pj_agents):
    """alice unregisters (pjsua removes its publication and its binding): bob sees her offline."""
    alice, bob = buddies(pj_agents)
    alice.do(cmd="unregister")
    alice.expect(ev="reg", code=200, expires=0)
    bob.expect(buddy(ALICE_URI, "offline"))


def test_registered_phone_that_never_publishes_is_online(pj_agents):
    """alice's softphone registers and never PUBLISHes (many phones don't): bob sees her online, as
    a registered contact is reachable; she unregisters: offline."""
    alice = pj_agents("alice", env={"PJ_PUBLISH": "0"})
    bob = pj_agents("bob")
    bob.do(cmd="buddy", user="alice")
    bob.expect(buddy(ALICE_URI, "online", activity="", note=""))
    alice.do(cmd="unregister")
    alice.expect(ev="reg", code=200, expires=0)
    bob.expect(buddy(ALICE_URI, "offline"))
    assert not any("PUBLISH" in line for line in alice.log.read_text(errors="replace").splitlines()
                   if "TX" in line and "Request msg" in line), f"alice published: {alice.log}"


# -- MESSAGE ------------------------------------------------------------------------------------


def test_messages_both_ways(pj_agents):
    """bob → alice and alice → bob: each MESSAGE arrives with its body from the sender's URI, and
    the sender gets 200."""
    alice, bob = buddies(pj_agents)
    to_alice, to_bob = unique("Hi alice, bob here:"), unique("Hi bob, alice here:")
    send_im(bob, "alice", to_alice)
    alice.expect(im_from(BOB_URI, to_alice))
    send_im(alice, "bob", to_bob)
    ev = bob.expect(im_from(ALICE_URI, to_bob))
    assert ev["content_type"].startswith("text/plain"), bob.describe(str(ev))


def test_message_to_appear_offline_phone_is_delivered(pj_agents):
    """alice appears offline (publishes closed, stays registered): bob sees her offline, yet his
    MESSAGE reaches her phone at once (RFC 3428 §4 routes MESSAGE like INVITE, by registration;
    presence is not reachability), and she still appears offline to bob."""
    alice, bob = buddies(pj_agents)
    alice.do(cmd="status", state="offline")
    bob.expect(buddy(ALICE_URI, "offline"))
    text = unique("Are you there?")
    send_im(bob, "alice", text)
    alice.expect(im_from(BOB_URI, text))
    bob.expect_none(buddy(ALICE_URI, "online"), within=QUIET)


def test_message_held_while_unregistered_reaches_the_phone_when_it_registers(pj_agents):
    """alice appears offline and unregisters: bob's MESSAGE is held (200, default offline storage).
    When her phone registers again, still publishing closed, it gets the held MESSAGE (DESIGN §4:
    held only while nothing can take it)."""
    alice, bob = buddies(pj_agents)
    alice.do(cmd="status", state="offline")
    bob.expect(buddy(ALICE_URI, "offline"))
    alice.do(cmd="unregister")
    alice.expect(ev="reg", code=200, expires=0)
    text = unique("While you were out:")
    send_im(bob, "alice", text)
    alice.expect_none(ev="im", within=QUIET)
    alice.do(cmd="register")
    alice.expect(ev="reg", code=200, expires=300)
    alice.expect(im_from(BOB_URI, text))


# -- SIP and XMPP -------------------------------------------------------------------------------


def test_xmpp_contact_of_busy_softphone_sees_dnd(server, pj_agents):
    """alice's pjsua2 softphone publishes open + busy + a note; bob (XMPP) subscribes to her and
    sees her phone's resource with <show>dnd</show> and the note as status."""
    alice = pj_agents("alice")
    note = unique("On a deadline")
    alice.do(cmd="status", state="online", activity="busy", note=note)

    async def scenario() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            bob.xmpp.send_presence(pto=ALICE, ptype="subscribe")

            async def subscribed() -> bool:
                item = (await bob.roster_items()).get(ALICE, {})
                return item.get("subscription") in ("to", "both")

            await wait_until(subscribed, "bob's roster item for alice to reach subscription='to'")
            p = await bob.presence_from(ALICE, show="dnd")
            assert str(p["from"]) == f"{ALICE}/sip" and p["status"] == note, (
                f"{p['from']} show={p['show']!r} status={p['status']!r}")

    run(scenario)


def test_softphone_sees_xmpp_contact_away_and_dnd(server, pj_agents):
    """bob's pjsua2 softphone watches alice, who is only on XMPP: available → online; away with a
    status → online, away, the status as note; dnd → online, busy (DESIGN §2: DND is Busy, still
    online); signed off → offline."""
    bob = pj_agents("bob")

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await alice.ping_server()
            await asyncio.to_thread(bob.do, cmd="buddy", user="alice")
            await asyncio.to_thread(bob.expect, buddy(ALICE_URI, "online", activity=""))
            alice.xmpp.send_presence(pshow="away", pstatus="Getting coffee")
            await asyncio.to_thread(bob.expect, buddy(ALICE_URI, "online", activity="away",
                                                      note="Getting coffee"))
            alice.xmpp.send_presence(pshow="dnd", pstatus="Focus time")
            await asyncio.to_thread(bob.expect, buddy(ALICE_URI, "online", activity="busy",
                                                      note="Focus time"))
            await alice.disconnect()
        await asyncio.to_thread(bob.expect, buddy(ALICE_URI, "offline"))

    run(scenario)


def test_softphone_sees_phone_meeting_and_out_of_office(trusted_server, sipp_trusted, pj_factory):
    """alice is on XMPP; a trusted call-control peer publishes her line and calendar. bob's pjsua2
    softphone, watching her, sees her online throughout (DESIGN §2: on the phone and in a meeting are
    Busy, out of office is Away, none is offline) with the state as note: pjsua2 renders only the
    RPID activities away and busy, so the note is what tells its user; then her own presence again.
    Each change is one NOTIFY: a document that swaps the line for the calendar shows no passing state
    (e.g. plainly available between on the phone and in a meeting)."""
    pj_factory.port = trusted_server.sip_port
    bob = pj_factory("bob")

    async def call_control(activities: str, etag: str | None = None) -> str:
        if etag is None:
            run_ = sipp_trusted("interop_trusted_publish", keys={"target": "alice", "activities": activities})
        else:
            run_ = sipp_trusted("interop_trusted_modify", keys={
                "target": "alice", "etag": etag, "activities": activities})
        return etag_of(await sipp_ok(run_))

    async def sees(status: str, **fields) -> dict:
        return await asyncio.to_thread(bob.expect, buddy(ALICE_URI, status, **fields))

    async def next_is(status: str, **fields) -> None:
        """The very next state bob's softphone shows: no NOTIFY of a passing state in between."""
        ev = await asyncio.to_thread(bob.expect, lambda e: e.get("ev") == "buddy")
        assert buddy(ALICE_URI, status, **fields)(ev), bob.describe(
            f"expected {status} {fields} next, got {ev}")

    async def scenario() -> None:
        async with clients(connect(trusted_server, "alice")) as (alice,):
            alice.xmpp.send_presence(pstatus="At my desk")
            await alice.ping_server()
            await asyncio.to_thread(bob.do, cmd="buddy", user="alice")
            await sees("online", activity="", note="At my desk")
            etag = await call_control(ON_THE_PHONE)
            await next_is("online", note="On the phone")
            etag = await call_control("<rpid:meeting/>", etag)
            await next_is("online", note="In a meeting")
            etag = await call_control("<rpid:vacation/>", etag)
            await next_is("online", note="Out of office")
            etag = await call_control(ON_THE_PHONE, etag)
            await next_is("online", note="On the phone")
            await call_control("", etag)
            await next_is("online", activity="", note="At my desk")
            alice.xmpp.send_presence(pshow="xa", pstatus="Gone home")
            await sees("online", activity="away", note="Gone home")

    run(scenario)
