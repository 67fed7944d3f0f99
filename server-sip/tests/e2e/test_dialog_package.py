"""The dialog event package (RFC 4235) as a source of phone state, through one presenced.

A phone (authenticated as its user) or a trusted call-control peer (``[sip] trusted_peers``, no
credentials) PUBLISHes ``Event: dialog`` with an ``application/dialog-info+xml`` document
(scenarios/dialog_publish.xml, dialog_modify.xml, dialog_remove.xml). A ``confirmed`` dialog puts
the user on the phone; ``terminated``, a full-state document without the dialog, or the
publication's removal ends it. Each publication is one phone line of the user, and lines combine:
the user is on the phone while any line is. What watchers see is checked on their side: a SIP
watcher's PIDF (open + RPID ``on-the-phone``) and an XMPP contact's presence (show away, status
"On the phone", DESIGN §2).

The helpers (Watcher, presence matchers, sipp_ok) are test_interop.py's; every wait is bounded as
there.
"""

from __future__ import annotations

import asyncio
import time

from conftest import SippFactory
from sipp import SippResult
from test_interop import (
    ALICE,
    QUIET,
    Watcher,
    _is,
    describe,
    etag_of,
    make_mutual,
    matcher,
    presence,
    presences,
    sipp_ok,
    subscription,
    trusted_server,  # noqa: F401 (fixture)
    sipp_trusted,  # noqa: F401 (fixture)
    unique,
)
from xmpp import Client, clients, connect, run, wait_until

DIALOG_INFO = "application/dialog-info+xml"


def dialog(id_: str, state: str) -> str:
    """One <dialog> element in the given state, with the attributes a phone sends."""
    return (f'<dialog id="{id_}" call-id="call-{id_}" local-tag="lt-{id_}" remote-tag="rt-{id_}" '
            f'direction="initiator"><state code="200">{state}</state>'
            f'<remote><identity>sip:customer@example.net</identity></remote></dialog>')


def document_keys(version: int, state: str, *dialogs: str, ctype: str = DIALOG_INFO,
                  expires: int = 600) -> dict:
    return {"version": str(version), "state": state, "dialogs": "".join(dialogs), "ctype": ctype,
            "expires": str(expires)}


async def publish(sipp: SippFactory, user: str | None, target: str, version: int, state: str,
                  *dialogs: str, etag: str | None = None, ctype: str = DIALOG_INFO,
                  expires: int = 600, expect: int = 200) -> SippResult:
    """One dialog PUBLISH for ``target``: initial, or modifying ``etag``; as ``user`` (with
    credentials) or, with ``user`` None, as the trusted peer. Asserts the final status."""
    keys = document_keys(version, state, *dialogs, ctype=ctype, expires=expires)
    keys["user"] = target
    if etag is not None:
        keys["etag"] = etag
    scenario = "dialog_publish" if etag is None else "dialog_modify"
    run = sipp(scenario, user, keys=keys)
    result = await sipp_ok(run)
    final = [r.status for r in result.responses("PUBLISH") if r.status != 401]
    assert final == [expect], f"expected {expect}, got {final}:\n{result.describe()}"
    return result


async def remove(sipp: SippFactory, user: str | None, target: str, etag: str) -> None:
    keys = {"user": target, "etag": etag}
    run = sipp("dialog_remove", user, keys=keys)
    result = await sipp_ok(run)
    assert [r.status for r in result.responses("PUBLISH")][-1] == 200, result.describe()


async def no_presence(client: Client, what: str, *unwanted) -> None:
    """Asserts that no presence matching any of ``unwanted`` (see test_interop.matcher) reaches
    ``client`` within QUIET seconds; other presences are let through."""
    await client.ping_server()
    deadline = time.monotonic() + QUIET
    while (left := deadline - time.monotonic()) > 0:
        try:
            p = await asyncio.wait_for(client.presences.get(), left)
        except asyncio.TimeoutError:
            return
        assert not any(m(p) for m in unwanted), f"{what}: unexpected {describe(p)}"


def test_phone_dialog_state_puts_user_on_the_phone_and_back(server, sipp):
    """alice's registered phone (no XMPP session) PUBLISHes its dialog state as alice. bob (XMPP)
    is subscribed to her and carol's softphone watches her. A ringing (early) dialog changes
    nothing; confirmed: on the phone for both; a partial document terminating it: available again;
    a full document with a confirmed call, then one without it: on the phone, then available; a
    partial confirmed call, a stale partial (same version) terminating it that is ignored, and the
    publication removed with Expires: 0: on the phone, then available."""

    async def scenario() -> None:
        await sipp_ok(sipp("interop_register", "alice"))
        async with clients(connect(server, "bob")) as (bob,):
            bob.xmpp.send_presence(pto=ALICE, ptype="subscribe")
            await wait_until(lambda: _is(subscription(bob, ALICE), ("to", "both")),
                             "bob's roster item for alice to reach subscription='to'")
            phone = f"{ALICE}/sip"
            await presence(bob, phone, "alice's registered phone available", show="")
            carol = await Watcher(sipp, "carol", "alice").start()
            await carol.expect("the initial NOTIFY: alice's phone is registered", basic="open")

            ringing = await publish(sipp, "alice", "alice", 0, "full", dialog("d1", "early"))
            talking = await publish(sipp, "alice", "alice", 1, "full", dialog("d1", "confirmed"),
                                    etag=etag_of(ringing))
            await carol.expect("a confirmed dialog: on the phone", basic="open",
                               activities=("on-the-phone",))
            await presence(bob, phone, "alice on the phone", show="away", status="On the phone")

            hung_up = await publish(sipp, "alice", "alice", 2, "partial",
                                    dialog("d1", "terminated"), etag=etag_of(talking))
            await carol.expect("the dialog terminated: off the phone", basic="open")
            await presence(bob, phone, "alice off the phone", show="", status=lambda s: not s)

            second = await publish(sipp, "alice", "alice", 3, "full", dialog("d2", "confirmed"),
                                   etag=etag_of(hung_up))
            await carol.expect("a second call", basic="open", activities=("on-the-phone",))
            await presence(bob, phone, "alice on the phone again", show="away",
                           status="On the phone")
            gone = await publish(sipp, "alice", "alice", 4, "full", etag=etag_of(second))
            await carol.expect("a full document without the call: off the phone", basic="open")
            await presence(bob, phone, "alice off the phone again", show="",
                           status=lambda s: not s)

            third = await publish(sipp, "alice", "alice", 5, "partial",
                                  dialog("d3", "confirmed"), etag=etag_of(gone))
            await carol.expect("a third call (partial document)", basic="open",
                               activities=("on-the-phone",))
            await presence(bob, phone, "alice on a third call", show="away",
                           status="On the phone")
            stale = await publish(sipp, "alice", "alice", 5, "partial",
                                  dialog("d3", "terminated"), etag=etag_of(third))
            await no_presence(bob, "a stale partial document (version not newer) is ignored",
                              matcher(phone, show=""))
            await remove(sipp, "alice", "alice", etag_of(stale))
            await carol.expect("the publication removed: off the phone", basic="open")
            await presence(bob, phone, "alice off the phone at last", show="",
                           status=lambda s: not s)

            result = await carol.finish()
        # The final NOTIFY of the unsubscribe repeats the last state; runs of equal states collapse.
        states = [d["activities"] for d in carol.docs()]
        flips = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
        assert flips == [[], ["on-the-phone"], [], ["on-the-phone"], [], ["on-the-phone"], []], (
            f"carol's NOTIFYs, in order, should alternate idle / on the phone three times (the "
            f"ringing dialog and the stale partial document change nothing):\n{states}\n"
            f"{result.describe()}")

    run(scenario)


def test_trusted_call_controller_reports_lines_that_combine(trusted_server, sipp_trusted):
    """A trusted call-control peer (no credentials) PUBLISHes alice's dialog state for two lines
    (two publications). alice's XMPP client is online and bob (XMPP) her mutual contact. Line A
    confirmed: bob sees alice on the phone; line B confirmed too; line A terminated: still on the
    phone (line B); line B's publication removed: her client's own presence again."""
    server, sipp = trusted_server, sipp_trusted

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await make_mutual(alice, bob)
            status = unique("At my desk")
            alice.xmpp.send_presence(pstatus=status)
            desk = f"{ALICE}/e2e"
            await presence(bob, desk, "alice's client available", show="", status=status)

            line_a = await publish(sipp, None, "alice", 1, "full", dialog("a1", "confirmed"))
            await presence(bob, desk, "line A in a call", show="away", status="On the phone")
            line_b = await publish(sipp, None, "alice", 1, "full", dialog("b1", "confirmed"))
            assert etag_of(line_b) != etag_of(line_a)
            await publish(sipp, None, "alice", 2, "full", dialog("a1", "terminated"),
                          etag=etag_of(line_a))
            await no_presence(bob, "line B is still in a call", matcher(desk, show=""))
            await remove(sipp, None, "alice", etag_of(line_b))
            await presence(bob, desk, "both lines idle: her client's own presence", show="",
                           status=status)

    run(scenario)


#: dialogs one document may hold (sip_codec::dialog_info::DEFAULT_MAX_DIALOGS)
MAX_DIALOGS = 64
#: dialog publications one user may hold: the default `[limits] sip_publications_per_user`
#: (server_sip::caps::StateCaps), which caps each event package's publications
PER_USER = 32

#: the shortest publication the server grants (the default Min-Expires, RFC 3903 §4.1)
MIN_EXPIRES = 60


def test_lapsed_dialog_publication_ends_the_call(server, sipp):
    """alice's phone publishes a confirmed dialog for the shortest time allowed and then goes
    silent (no refresh, no removal): bob (XMPP) sees alice on the phone, and when the publication
    lapses her client's own presence again. Takes a minute: the expiry is the point."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await make_mutual(alice, bob)
            status = unique("At my desk")
            alice.xmpp.send_presence(pstatus=status)
            desk = f"{ALICE}/e2e"
            await presence(bob, desk, "alice's client available", show="", status=status)
            call = await publish(sipp, "alice", "alice", 1, "full", dialog("d", "confirmed"),
                                 expires=MIN_EXPIRES)
            granted = [r for r in call.responses("PUBLISH") if r.status == 200][-1]
            assert granted.header("expires") == str(MIN_EXPIRES), granted
            started = time.monotonic()
            await presence(bob, desk, "alice on the phone", show="away", status="On the phone")
            await presences(bob, "the publication lapsed: her client's own presence",
                            matcher(desk, show="", status=status), timeout=MIN_EXPIRES + 15)
            assert time.monotonic() - started > MIN_EXPIRES - 5, "ended before the publication lapsed"

    run(scenario)


def test_dialog_publish_refusals_and_capabilities(server, sipp):
    """Malformed dialog-info gets 400, another content type 415 (with Accept naming dialog-info),
    a presence publication's entity tag under Event: dialog 412 (each package has its own tags,
    RFC 3903 §4); SUBSCRIBE to Event: dialog gets 489 with Allow-Events without dialog (not served
    to watchers), and OPTIONS lists dialog in Allow-Events and dialog-info in Accept."""

    async def scenario() -> None:
        for bad in ('<dialog id="x"><state>ringing</state></dialog>',
                    '<dialog id="x"><state>confirmed</state>',
                    '<dialog><state>confirmed</state></dialog>'):
            await publish(sipp, "alice", "alice", 1, "full", bad, expect=400)
        # More dialogs in one document than the codec's limit (sip_codec::dialog_info, 64).
        many = [dialog(f"m{i}", "early") for i in range(MAX_DIALOGS + 1)]
        too_many = await publish(sipp, "alice", "alice", 1, "full", *many, expect=400)
        assert too_many.responses("PUBLISH")[-1].start.endswith("Too many dialogs"), too_many
        refused = await publish(sipp, "alice", "alice", 1, "full", dialog("d", "confirmed"),
                                ctype="application/pidf+xml", expect=415)
        (unsupported,) = [r for r in refused.responses("PUBLISH") if r.status == 415]
        assert unsupported.header("accept") == DIALOG_INFO, unsupported

        presence_pub = await sipp_ok(sipp("interop_publish", "alice", keys={
            "basic": "open", "activities": "", "note": "here"}))
        await publish(sipp, "alice", "alice", 2, "full", dialog("d", "confirmed"),
                      etag=etag_of(presence_pub), expect=412)

        sub = await sipp_ok(sipp("dialog_subscribe", "bob", keys={"target": "alice"}))
        bad_event = sub.responses("SUBSCRIBE")[-1]
        assert bad_event.status == 489, sub.describe()
        events = {e.strip() for v in bad_event.header_all("allow-events") for e in v.split(",")}
        assert "presence" in events and "dialog" not in events, bad_event

        options = await sipp_ok(sipp("options"))
        (ok,) = options.responses("OPTIONS")
        events = {e.strip() for v in ok.header_all("allow-events") for e in v.split(",")}
        assert {"presence", "presence.winfo", "dialog"} <= events, ok
        accept = {a.strip() for v in ok.header_all("accept") for a in v.split(",")}
        assert DIALOG_INFO in accept, ok

    run(scenario)


def test_dialog_publications_per_user_are_capped(server, sipp):
    """A phone that keeps sending initial dialog PUBLISHes (a new entity tag each) gets 403 once
    alice holds the most dialog publications a user may; removing one makes room again."""

    async def scenario() -> None:
        held = [await publish(sipp, "alice", "alice", 1, "full", dialog(f"c{i}", "early"))
                for i in range(PER_USER)]
        over = await publish(sipp, "alice", "alice", 1, "full", dialog("over", "early"),
                             expect=403)
        assert "too many" in over.responses("PUBLISH")[-1].start.lower(), over
        await remove(sipp, "alice", "alice", etag_of(held[0]))
        await publish(sipp, "alice", "alice", 1, "full", dialog("again", "early"))

    run(scenario)
