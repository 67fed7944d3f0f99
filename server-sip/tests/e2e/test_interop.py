"""SIP <-> XMPP interworking through one presenced: both real peers in every scenario.

sipp plays the phone or softphone (scenarios/interop_*.xml, runner sipp.py) and slixmpp the
XMPP client (helpers from server-xmpp/tests/e2e/xmpp.py), against one server whose SIP and XMPP
shells share one engine: ``alice@localhost`` and ``sip:alice@localhost`` are one principal, with
one roster, one policy and one composed presence (issue 6, DESIGN §2, §4, §7).

What each side sees is checked on that side: slixmpp's presence and message stanzas, and the
SIP messages in sipp's trace (PIDF documents of NOTIFYs, MESSAGE bodies). sipp runs block, so
the async test bodies run them in a thread (``asyncio.to_thread``) and slixmpp keeps reading
meanwhile. Every wait is bounded: sipp's own ``-timeout`` and per-``recv`` timeouts, the Python
side's kill deadline (sipp.py), ``WAIT`` for each XMPP wait and ``SCENARIO_TIMEOUT`` for a test
body (xmpp.py).
"""

from __future__ import annotations

import asyncio
import glob
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from slixmpp.stanza import Presence

from conftest import SipServer, SippFactory, make_server, running
from sipp import Sipp, SippResult, expect_ok
from xmpp import WAIT, Client, clients, connect, run, wait, wait_until

ALICE, BOB = "alice@localhost", "bob@localhost"
NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
NS_RPID = "urn:ietf:params:xml:ns:pidf:rpid"
NS_DELAY = "urn:xmpp:delay"
ON_THE_PHONE = "<rpid:on-the-phone/>"
MEETING = "<rpid:meeting/>"
#: seconds a background sipp (watcher, receiver) may run in all
LONG_RUN = 60.0
#: seconds to wait for something that must NOT happen (a presence that must not arrive)
QUIET = 1.5


# -- servers -------------------------------------------------------------------------------------


@pytest.fixture
def trusted_server(binary: Path, tmp_path: Path):
    """A running server whose SIP service trusts call-control PUBLISHes from 127.0.0.1."""
    yield from running(make_server(binary, tmp_path / "server", trusted=True))


@pytest.fixture
def one_watcher_server(binary: Path, tmp_path: Path):
    """A running server where a user may have one watcher ([limits] max_watchers = 1)."""
    yield from running(make_server(binary, tmp_path / "server", tables="[limits]\nmax_watchers = 1"))


@pytest.fixture
def sipp_trusted(sipp_factory: SippFactory, trusted_server: SipServer) -> SippFactory:
    sipp_factory.port = trusted_server.sip_port
    return sipp_factory


# -- sipp helpers ----------------------------------------------------------------------------------


async def in_thread(fn, *args):
    """Runs a blocking sipp call without stopping slixmpp's event loop."""
    return await asyncio.to_thread(fn, *args)


async def sipp_ok(run: Sipp) -> SippResult:
    """Runs one sipp scenario to its end (in a thread) and asserts it succeeded."""
    result = await in_thread(run.run)
    expect_ok(result)
    return result


def etag_of(result: SippResult) -> str:
    """The SIP-ETag of the last 200 to a PUBLISH."""
    ok = [r for r in result.responses("PUBLISH") if r.status == 200]
    assert ok and ok[-1].header("sip-etag"), f"no 200 with a SIP-ETag:\n{result}"
    return ok[-1].header("sip-etag")


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def pidf(body: str) -> dict:
    """basic values, RPID activities (in a dm:person) and notes of a PIDF document."""
    try:
        root = ET.fromstring(body.strip().encode())
    except ET.ParseError as e:
        raise AssertionError(f"NOTIFY body is not well-formed XML ({e}):\n{body}") from None
    assert root.tag == f"{{{NS_PIDF}}}presence", f"not a PIDF <presence> document:\n{body}"
    return {
        "entity": root.get("entity"),
        "basic": sorted({b.text.strip() for b in root.iter(f"{{{NS_PIDF}}}basic") if b.text}),
        "activities": sorted(
            local(a.tag)
            for person in root.iter(f"{{{NS_DM}}}person")
            for acts in person.iter(f"{{{NS_RPID}}}activities")
            for a in acts
        ),
        "notes": [(n.text or "").strip() for n in root.iter() if local(n.tag) == "note"],
    }


class Watcher:
    """A background interop_watch.xml run: [user]'s softphone subscribed to [target]'s presence.

    ``docs()`` reads the PIDF documents of the NOTIFYs received so far from sipp's message trace
    (sipp writes it as it goes); ``expect(...)`` waits for the next document in a given state.
    """

    def __init__(self, factory: SippFactory, user: str, target: str) -> None:
        self.run = factory("interop_watch", user, keys={"target": target}, flag="subscribed",
                           timeout=LONG_RUN)
        self.seen = 0  # documents already matched by expect()

    async def start(self) -> "Watcher":
        self.run.start()
        await in_thread(self.run.wait_flag, "subscribed")
        return self

    def _snapshot(self) -> SippResult:
        return SippResult(self.run.name, self.run.cmd, None, self.run.workdir)

    def notifies(self) -> list:
        return [m for m in self._snapshot().received("NOTIFY") if m.body.strip()]

    def docs(self) -> list[dict]:
        return [pidf(n.body) for n in self.notifies()]

    def answered(self) -> int:
        """NOTIFYs the scenario has answered (one marker file each)."""
        return len(glob.glob(glob.escape(self.run.flag("subscribed")) + ".n*"))

    async def expect(self, what: str, *, basic: str, activities: tuple[str, ...] = (),
                     note: str | None = None, timeout: float = WAIT) -> dict:
        """Waits for a NOTIFY (after the ones matched before) whose document says ``basic`` with
        exactly ``activities`` (and ``note`` among its notes if given); returns the document."""
        deadline = time.monotonic() + timeout
        while True:
            docs = self.docs()
            for i in range(self.seen, len(docs)):
                d = docs[i]
                if (d["basic"] == [basic] and d["activities"] == sorted(activities)
                        and (note is None or note in d["notes"])):
                    self.seen = i + 1
                    return d
            if time.monotonic() > deadline or self.run.proc.poll() is not None:
                result = self.run.stop() if self.run.proc.poll() is None else self.run.wait(1)
                raise AssertionError(
                    f"{what}: no NOTIFY with basic {basic!r}, activities {list(activities)}"
                    f"{f', note {note!r}' if note else ''} (documents so far: {docs[self.seen:]})\n"
                    f"{result.describe()}"
                )
            await asyncio.sleep(0.1)

    async def finish(self) -> SippResult:
        """Lets the scenario unsubscribe after its quiet period; asserts it succeeded."""
        result = await in_thread(self.run.wait)
        expect_ok(result)
        return result


# -- XMPP helpers ----------------------------------------------------------------------------------


async def subscription(client: Client, contact: str) -> str:
    return (await client.roster_items()).get(contact, {}).get("subscription", "<absent>")


async def make_mutual(alice: Client, bob: Client) -> None:
    """alice and bob subscribe to each other (auto-authorized) and bob sees alice online."""
    alice.xmpp.send_presence(pto=BOB, ptype="subscribe")
    bob.xmpp.send_presence(pto=ALICE, ptype="subscribe")

    async def both_ways() -> bool:
        return (await subscription(alice, BOB), await subscription(bob, ALICE)) == ("both", "both")

    await wait_until(both_ways, "both rosters to reach subscription='both'")
    await bob.presence_from(ALICE)


def describe(p: Presence) -> str:
    return (f"{p['from']} type={p['type']!r} show={p['show']!r} status={p['status']!r} "
            f"priority={p['priority']!r}")


def matcher(full: str, *, show: str | None = None, status=None, unavailable: bool = False):
    """A predicate on presence stanzas from the full JID ``full``: unavailable, or available with
    ``show`` ('' = no <show/>) and ``status`` (a string, '' = none, or a predicate on it)."""

    def matches(p: Presence) -> bool:
        if str(p["from"]) != full:
            return False
        if unavailable:
            return p["type"] == "unavailable"
        if p["type"] not in ("available", "away", "chat", "dnd", "xa"):
            return False
        if show is not None and p["show"] != show:
            return False
        if status is None:
            return True
        if callable(status):
            return bool(status(p["status"]))
        return p["status"] == status

    return matches


async def presences(client: Client, what: str, *wanted, timeout: float = WAIT) -> list[Presence]:
    """Waits until each predicate in ``wanted`` (see :func:`matcher`) matched a presence received
    by ``client``, in any order; other presences are skipped (listed if the wait fails)."""
    skipped: list[str] = []
    found: list[Presence | None] = [None] * len(wanted)

    async def get() -> None:
        while any(f is None for f in found):
            p = await client.presences.get()
            for i, m in enumerate(wanted):
                if found[i] is None and m(p):
                    found[i] = p
                    break
            else:
                skipped.append(describe(p))

    try:
        await asyncio.wait_for(get(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(
            f"timed out after {timeout:.0f} s at {client.jid} waiting for {what}; presences "
            f"received meanwhile:\n  " + "\n  ".join(skipped or ["<none>"])
        ) from None
    return found  # type: ignore[return-value]


async def presence(client: Client, full: str, what: str, **kw) -> Presence:
    """Waits for one presence from ``full`` (see :func:`matcher`), skipping others."""
    return (await presences(client, what, matcher(full, **kw)))[0]


async def no_available_presence(client: Client, bare: str, what: str) -> None:
    """Asserts no available presence from ``bare`` arrives at ``client`` within QUIET seconds."""
    await client.ping_server()
    deadline = time.monotonic() + QUIET
    while (left := deadline - time.monotonic()) > 0:
        try:
            p = await asyncio.wait_for(client.presences.get(), left)
        except asyncio.TimeoutError:
            return
        assert not (p["from"].bare == bare and p["type"] not in ("unavailable", "error")
                    and p["type"] in ("available", "away", "chat", "dnd", "xa")), (
            f"{what}: unexpected {describe(p)}"
        )


def mentions_phone(status: str) -> bool:
    return "phone" in (status or "").lower()


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


# -- presence: SIP watchers of XMPP users ----------------------------------------------------------


def test_sip_watcher_of_xmpp_only_user_follows_every_change(server, sipp):
    """bob's softphone watches alice, who is only on XMPP: a NOTIFY for each change of her
    client's presence -- available (open), away (open + away), unavailable (closed)."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await alice.ping_server()  # her initial presence is in
            bob = await Watcher(sipp, "bob", "alice").start()
            first = (await in_thread(lambda: bob.docs()))[0]
            assert first["entity"] == "sip:alice@localhost", first
            assert first["basic"] == ["open"] and first["activities"] == [], (
                f"alice is online on XMPP: the initial NOTIFY must say open:\n{first}"
            )
            bob.seen = 1

            alice.xmpp.send_presence(pshow="away", pstatus="Getting coffee")
            await bob.expect("alice away", basic="open", activities=("away",), note="Getting coffee")
            alice.xmpp.send_presence(pshow="away", pstatus="Back soon")
            await bob.expect("alice away, new status", basic="open", activities=("away",),
                             note="Back soon")
            alice.xmpp.send_presence()
            await bob.expect("alice available again", basic="open")
            await alice.disconnect()
            await bob.expect("alice signed off", basic="closed")
            result = await bob.finish()
        states = [(d["basic"], d["activities"]) for d in (pidf(n.body) for n in result.received("NOTIFY") if n.body.strip())]
        assert states[0] == (["open"], []) and states[-1] == (["closed"], []), states

    run(scenario)


def test_dnd_from_xmpp_reaches_sip_watcher_as_open_busy(server, sipp):
    """bob's softphone watches alice; alice's XMPP client sets <show>dnd</show>: bob's NOTIFY says
    open + busy (DESIGN §2: DND is the basic state Busy, still online; SIP clients show closed as offline);
    back to available: open again."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await alice.ping_server()
            bob = await Watcher(sipp, "bob", "alice").start()
            await bob.expect("the initial NOTIFY, alice online", basic="open")
            alice.xmpp.send_presence(pshow="dnd", pstatus="Focus time")
            doc = await bob.expect("alice on do-not-disturb", basic="open", activities=("busy",))
            assert "Focus time" in doc["notes"], doc
            alice.xmpp.send_presence()
            await bob.expect("alice available again", basic="open", activities=())
            await bob.finish()

    run(scenario)


# -- presence: the phone colours the XMPP presence -----------------------------------------------


def test_phone_publish_on_the_phone_and_back(server, sipp):
    """alice's XMPP client is online and bob (XMPP) is her mutual contact. Her phone PUBLISHes
    on-the-phone (authenticated, as alice): bob sees her XMPP resource away, with a status about
    the phone. The phone removes its publication (SIP-If-Match, Expires: 0): bob sees her client's
    own presence again (available, its status), and the phone's endpoint gone."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await make_mutual(alice, bob)
            alice.xmpp.send_presence(pstatus="At my desk")
            desk = f"{ALICE}/e2e"
            await presence(bob, desk, "alice's client available", show="", status="At my desk")

            published = await sipp_ok(sipp("interop_publish", "alice", keys={
                "basic": "open", "activities": ON_THE_PHONE, "note": "Call with a customer"}))
            p = await presence(bob, desk, "alice's client shown away while her phone is in a call",
                               show="away", status=mentions_phone)
            assert p["status"] in ("On the phone", "Call with a customer"), describe(p)

            await sipp_ok(sipp("interop_publish_remove", "alice", keys={"etag": etag_of(published)}))
            await presences(
                bob, "alice's client back to its own presence after the call, and her phone's "
                "endpoint gone with its publication",
                matcher(desk, show="", status="At my desk"),
                matcher(f"{ALICE}/sip", unavailable=True),
            )

    run(scenario)


def test_trusted_call_control_line_state_and_meeting(trusted_server, sipp_trusted):
    """A trusted call-control peer (no credentials, [sip] trusted_peers) publishes alice's line
    state. A line alone does not make alice available; once her XMPP client is online, bob sees it
    away "On the phone"; a `meeting` activity shows "In a meeting"; no activity: her client's own
    presence again."""
    server, sipp = trusted_server, sipp_trusted

    async def scenario() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            async with clients(connect(server, "alice")) as (alice,):
                await make_mutual(alice, bob)
            await presence(bob, f"{ALICE}/e2e", "alice signing off", unavailable=True)

            line = await sipp_ok(sipp("interop_trusted_publish", keys={
                "target": "alice", "activities": ON_THE_PHONE}))
            assert [r.status for r in line.responses("PUBLISH")] == [200], (
                f"a trusted peer's PUBLISH needs no credentials:\n{line}"
            )
            await no_available_presence(bob, ALICE, "alice's line alone must not make her available")

            async with clients(connect(server, "alice")) as (alice,):
                desk = f"{ALICE}/e2e"
                await presence(bob, desk, "alice signed in during a call: away, on the phone",
                               show="away", status="On the phone")

                meeting = await sipp_ok(sipp("interop_trusted_modify", keys={
                    "target": "alice", "etag": etag_of(line), "activities": MEETING}))
                await presence(bob, desk, "alice in a meeting", show="away", status="In a meeting")

                await sipp_ok(sipp("interop_trusted_modify", keys={
                    "target": "alice", "etag": etag_of(meeting), "activities": ""}))
                await presence(bob, desk, "alice free again: her client's own presence", show="",
                               status=lambda s: not s)

    run(scenario)


# -- presence: XMPP contacts of SIP users -------------------------------------------------------


def test_xmpp_contact_sees_sip_only_user(server, sipp):
    """alice has no XMPP session, only a registered phone that PUBLISHes (open, a note). bob
    (XMPP) subscribes to her and sees alice@localhost/sip available with the note as status; a
    newer publication (away) speaks for the phone; with both removed the registered phone is
    plainly available; a closed publication makes it unavailable."""

    async def scenario() -> None:
        await sipp_ok(sipp("interop_register", "alice"))
        note = unique("Desk phone, ext.")
        published = await sipp_ok(sipp("interop_publish", "alice", keys={
            "basic": "open", "activities": "", "note": note}))
        async with clients(connect(server, "bob")) as (bob,):
            bob.xmpp.send_presence(pto=ALICE, ptype="subscribe")
            await wait_until(lambda: _is(subscription(bob, ALICE), ("to", "both")),
                             "bob's roster item for alice to reach subscription='to'")
            phone = f"{ALICE}/sip"
            await presence(bob, phone, "alice's phone with its note as status", show="", status=note)

            away = unique("Stepped out")
            stepped_out = await sipp_ok(sipp("interop_publish", "alice", keys={
                "basic": "open", "activities": "<rpid:away/>", "note": away}))
            await presence(bob, phone, "alice's phone away (the newest publication)", show="away",
                           status=away)

            # Both publications removed: the registered phone is plainly available.
            for done in (published, stepped_out):
                await sipp_ok(sipp("interop_publish_remove", "alice", keys={"etag": etag_of(done)}))
            await presence(bob, phone, "alice's registered phone without a publication", show="",
                           status=lambda s: not s)

            await sipp_ok(sipp("interop_publish", "alice", keys={
                "basic": "closed", "activities": "", "note": "Off"}))
            await presence(bob, phone, "alice's phone publishing closed", unavailable=True)

    run(scenario)


async def _is(aw, wanted: tuple) -> bool:
    return (await aw) in wanted


# -- instant messages --------------------------------------------------------------------------------


def delay_stamp(msg) -> str | None:
    """The XEP-0203 <delay stamp=.../> of a message, if any."""
    el = msg.xml.find(f"{{{NS_DELAY}}}delay")
    return None if el is None else el.get("stamp")


def test_message_sip_to_xmpp(server, sipp):
    """bob's softphone sends alice a MESSAGE; alice's XMPP client gets a chat message with the
    body from bob@localhost; the MESSAGE is answered 200."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await alice.ping_server()
            text = unique("Hi alice, bob's softphone here:")
            result = await sipp_ok(sipp("interop_message_send", "bob",
                                        keys={"target": "alice", "text": text}))
            assert [r.status for r in result.responses("MESSAGE")] == [401, 200], result
            msg = await alice.next_message("bob's SIP MESSAGE")
            assert msg["body"].strip() == text, msg
            assert msg["from"].bare == BOB, msg
            assert msg["type"] in ("chat", "normal"), msg
            assert delay_stamp(msg) is None, f"a live message has no delay stamp: {msg}"

    run(scenario)


def test_message_xmpp_to_sip(server, sipp):
    """alice's XMPP client sends a chat message to bob, who is only registered from a softphone:
    the phone gets a SIP MESSAGE, text/plain, From sip:alice@localhost, with the body."""

    async def scenario() -> None:
        receiver = sipp("interop_message_receive", "bob", flag="registered",
                        ooc="interop_message_receive_ooc", timeout=30)
        receiver.start()
        await in_thread(receiver.wait_flag, "registered")
        async with clients(connect(server, "alice")) as (alice,):
            errors: asyncio.Queue = asyncio.Queue()
            alice.xmpp.add_event_handler("message_error", errors.put_nowait)
            text = unique("Hello bob's phone, alice on XMPP:")
            alice.send_message(BOB, text)
            result = await in_thread(receiver.wait)
            expect_ok(result)
            got = result.received("MESSAGE")
            assert len(got) == 1, f"expected exactly one MESSAGE:\n{result}"
            m = got[0]
            assert m.body.strip() == text, m
            assert "sip:alice@localhost" in (m.header("from") or ""), m
            assert "sip:bob@localhost" in (m.header("to") or ""), m
            assert (m.header("content-type") or "").lower().startswith("text/plain"), m
            await alice.ping_server()
            assert errors.empty(), f"alice got an error for her message: {errors.get_nowait()}"

    run(scenario)


def test_message_sip_to_offline_xmpp_user_is_held(server, sipp):
    """bob's softphone sends a MESSAGE to alice, who is offline: 200 (held); when alice's XMPP
    client signs in it gets the message with a XEP-0203 delay stamp."""

    async def scenario() -> None:
        text = unique("While you were out:")
        result = await sipp_ok(sipp("interop_message_send", "bob",
                                    keys={"target": "alice", "text": text}))
        assert [r.status for r in result.responses("MESSAGE")] == [401, 200], result
        async with clients(connect(server, "alice")) as (alice,):
            msg = await alice.next_message("bob's MESSAGE held while alice was offline")
            assert msg["body"].strip() == text, msg
            assert msg["from"].bare == BOB, msg
            stamp = delay_stamp(msg)
            assert stamp and stamp.endswith("Z"), f"no XEP-0203 delay stamp (UTC) on {msg}"

    run(scenario)


def test_message_sip_to_unreachable_user_without_offline_storage_480(server_no_offline, sipp_factory):
    """The same with offline storage off: the MESSAGE gets 480 with the configured text."""
    sipp_factory.port = server_no_offline.sip_port

    async def scenario() -> None:
        run_ = sipp_factory("interop_message_undeliverable", "bob",
                            keys={"target": "alice", "text": unique("Anyone there?")})
        result = await in_thread(run_.run)
        expect_ok(result)
        final = [r for r in result.responses("MESSAGE") if r.status and r.status >= 200][-1]
        assert final.status == 480, result
        assert "could not be delivered" in final.start.lower(), (
            f"the 480 should carry the configured undeliverable text:\n{final}"
        )

    run(scenario)


# -- policy across protocols: blocking ------------------------------------------------------------


async def block(client: Client, jid: str) -> None:
    client.xmpp.register_plugin("xep_0191")
    result = await wait(client.xmpp.plugin["xep_0191"].block(jid, timeout=WAIT), f"block {jid}")
    assert result["type"] == "result", result


async def unblock(client: Client, jid: str) -> None:
    result = await wait(client.xmpp.plugin["xep_0191"].unblock(jid, timeout=WAIT), f"unblock {jid}")
    assert result["type"] == "result", result


def test_blocked_sip_watcher_gets_closed(server, sipp):
    """alice (XMPP, online) has blocked bob with XEP-0191 before he subscribes: bob's softphone
    subscription is accepted (polite blocking: no hint) but says closed; carol's, not blocked,
    says open at the same time."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await block(alice, BOB)
            await alice.ping_server()
            bob = await Watcher(sipp, "bob", "alice").start()
            carol = await Watcher(sipp, "carol", "alice").start()
            await carol.expect("carol (not blocked) sees alice online", basic="open")
            await bob.expect("bob (blocked) sees alice closed", basic="closed", activities=())
            state = bob.notifies()[0].header("subscription-state") or ""
            assert state.startswith("active"), (
                f"polite blocking: the subscription must look normal (active), not {state!r}"
            )
            alice.xmpp.send_presence(pshow="away", pstatus="Only for friends")
            await carol.expect("carol sees alice away", basic="open", activities=("away",))
            bob_run, carol_run = await asyncio.gather(bob.finish(), carol.finish())
        leaked = [d for d in (pidf(n.body) for n in bob_run.received("NOTIFY") if n.body.strip())
                  if d["basic"] != ["closed"] or "Only for friends" in d["notes"]]
        assert not leaked, f"bob is blocked but saw alice's presence: {leaked}\n{bob_run}"

    run(scenario)


def test_block_during_sip_subscription_flips_to_closed(server, sipp):
    """bob's softphone watches alice (XMPP, online: open); alice blocks bob: a NOTIFY says closed
    though she stays online; she unblocks him: open again."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await alice.ping_server()
            bob = await Watcher(sipp, "bob", "alice").start()
            await bob.expect("bob sees alice online", basic="open")
            await block(alice, BOB)
            await bob.expect("alice blocked bob", basic="closed", activities=())
            await unblock(alice, BOB)
            await bob.expect("alice unblocked bob", basic="open")
            await bob.finish()

    run(scenario)


# -- one principal: roster and forking across protocols ------------------------------------------


def test_sip_subscription_is_a_roster_subscription(server, sipp):
    """bob's softphone subscribes to alice (automatic authorization): it is the same principal's
    roster -- bob's XMPP client finds alice in his roster with a subscription to her presence,
    and alice's finds bob subscribed from."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            assert await subscription(bob, ALICE) == "<absent>"
            await alice.ping_server()
            watcher = await Watcher(sipp, "bob", "alice").start()
            await watcher.expect("bob's softphone sees alice online", basic="open")
            await wait_until(lambda: _is(subscription(bob, ALICE), ("to", "both")),
                             "alice in bob's roster with subscription 'to'")
            await wait_until(lambda: _is(subscription(alice, BOB), ("from", "both")),
                             "bob in alice's roster with subscription 'from'")
            # bob's XMPP client is the same bob: it gets alice's presence changes too.
            alice.xmpp.send_presence(pshow="xa", pstatus="Gone fishing")
            await presence(bob, f"{ALICE}/e2e", "alice's presence at bob's XMPP client", show="xa",
                           status="Gone fishing")
            await watcher.expect("alice extended away at bob's softphone", basic="open",
                                 activities=("away",), note="Gone fishing")
            await watcher.finish()

    run(scenario)


def test_message_sip_to_xmpp_forks_to_every_session_and_phone(server, sipp):
    """alice is online from two XMPP clients and a registered softphone; bob's softphone sends
    her a MESSAGE: both XMPP sessions and her phone get it, once each."""

    async def scenario() -> None:
        phone = sipp("interop_message_receive", "alice", flag="registered",
                     ooc="interop_message_receive_ooc", timeout=30)
        phone.start()
        await in_thread(phone.wait_flag, "registered")
        async with clients(connect(server, "alice", "laptop"), connect(server, "alice", "mobile")) as (
            laptop, mobile,
        ):
            await laptop.ping_server()
            await mobile.ping_server()
            text = unique("Fork to every alice:")
            await sipp_ok(sipp("interop_message_send", "bob", keys={"target": "alice", "text": text}))
            for client in (laptop, mobile):
                msg = await client.next_message(f"bob's MESSAGE at {client.jid}")
                assert msg["body"].strip() == text and msg["from"].bare == BOB, msg
            result = await in_thread(phone.wait)
            expect_ok(result)
            got = result.received("MESSAGE")
            assert [m.body.strip() for m in got] == [text], f"alice's phone:\n{result}"
            assert "sip:bob@localhost" in (got[0].header("from") or ""), got[0]
            for client in (laptop, mobile):
                await client.ping_server()
                extra = [m["body"] for m in _drain(client.messages) if m["body"]]
                assert not extra, f"{client.jid} got the message more than once: {extra}"

    run(scenario)


def _drain(queue: asyncio.Queue) -> list:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_watcher_limit_applies_to_sip_and_xmpp_watchers_alike(one_watcher_server, sipp_factory):
    """alice may have one watcher: carol's XMPP subscription takes the place, so bob's SIP
    SUBSCRIBE is refused (NOTIFY terminated;reason=rejected) -- one policy for both protocols."""
    server = one_watcher_server
    sipp_factory.port = server.sip_port

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "carol")) as (alice, carol):
            carol.xmpp.send_presence(pto=ALICE, ptype="subscribe")
            await wait_until(lambda: _is(subscription(alice, "carol@localhost"), ("from", "both")),
                             "carol subscribed to alice")
            refused = await sipp_ok(sipp_factory("interop_watch_rejected", "bob",
                                                 keys={"target": "alice"}))
            (notify,) = refused.received("NOTIFY")
            assert not notify.body.strip(), f"a refusal carries no presence document:\n{notify}"
            assert await subscription(alice, BOB) in ("<absent>", "none"), (
                "bob must not have become alice's watcher"
            )

    run(scenario)
