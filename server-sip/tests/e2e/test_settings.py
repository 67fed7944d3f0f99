"""The user's own presence settings through one presenced: slixmpp sets them, sipp plays the phone
and a SIP watcher.

The settings travel in a namespace of this server, ``urn:presenced:presence-settings:0`` -- no
XEP covers "do not disturb while on the phone" or switching presence sharing off -- as raw iqs:
a get answers ``<settings dnd-on-phone=.. dnd-in-meeting=.. share-availability=../>``, a set
changes only the attributes it carries (issue 6, DESIGN §2).

The helpers and sipp scenarios are test_interop.py's (same server fixtures, same Watcher).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

from test_interop import (
    ALICE,
    BOB,
    ON_THE_PHONE,
    Watcher,
    etag_of,
    make_mutual,
    matcher,
    no_available_presence,
    pidf,
    presence,
    presences,
    sipp_ok,
)
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

NS_SETTINGS = "urn:presenced:presence-settings:0"
DEFAULTS = {"dnd-on-phone": "false", "dnd-in-meeting": "false", "share-availability": "true"}


async def get_settings(client: Client) -> dict[str, str]:
    """The three settings as the server spells them."""
    iq = client.xmpp.make_iq_get()
    iq.append(ET.Element(f"{{{NS_SETTINGS}}}settings"))
    result = await wait(iq.send(timeout=WAIT), f"settings of {client.jid}")
    el = result.xml.find(f"{{{NS_SETTINGS}}}settings")
    assert el is not None, f"no <settings/> in the result: {result}"
    return dict(el.attrib)


async def set_settings(client: Client, **attrs: str) -> None:
    """Sets the given settings (keyword names with '_' for '-'); asserts the empty result."""
    el = ET.Element(f"{{{NS_SETTINGS}}}settings",
                    {k.replace("_", "-"): v for k, v in attrs.items()})
    result = await wait(client.xmpp.make_iq_set(el).send(timeout=WAIT), f"settings set {attrs}")
    assert result["type"] == "result", result


def test_dnd_on_phone_makes_a_call_dnd_for_xmpp_and_sip_watchers(server, sipp):
    """alice (XMPP) turns on dnd-on-phone; bob (XMPP) is her mutual contact and carol's softphone
    watches her. Her phone PUBLISHes on-the-phone: bob sees her client dnd "On the phone", carol's
    NOTIFY says open + busy (DESIGN §2: busy is still online). The phone removes its publication: her client's own
    presence again for bob, open for carol."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await make_mutual(alice, bob)
            alice.xmpp.send_presence(pstatus="At my desk")
            desk = f"{ALICE}/e2e"
            await presence(bob, desk, "alice's client available", show="", status="At my desk")
            await set_settings(alice, dnd_on_phone="true")
            assert await get_settings(alice) == {**DEFAULTS, "dnd-on-phone": "true"}
            await no_available_presence(bob, ALICE, "the setting alone, without a call, shows nothing new")

            carol = await Watcher(sipp, "carol", "alice").start()
            await carol.expect("carol's softphone sees alice online", basic="open")

            published = await sipp_ok(sipp("interop_publish", "alice", keys={
                "basic": "open", "activities": ON_THE_PHONE, "note": "Call with a customer"}))
            await presence(bob, desk, "alice's client on do-not-disturb while her phone is in a call",
                           show="dnd", status="On the phone")
            doc = await carol.expect("alice busy on the phone at carol's softphone", basic="open",
                                     activities=("busy",))
            assert "On the phone" in doc["notes"], doc

            await sipp_ok(sipp("interop_publish_remove", "alice", keys={"etag": etag_of(published)}))
            await presences(
                bob, "alice's client back to its own presence after the call",
                matcher(desk, show="", status="At my desk"),
                matcher(f"{ALICE}/sip", unavailable=True),
            )
            await carol.expect("alice available again at carol's softphone", basic="open",
                               activities=())
            await carol.finish()

    run(scenario)


def test_without_the_setting_a_call_is_away_on_the_phone(server, sipp):
    """The same call with dnd-on-phone set back to false: bob sees alice away "On the phone", and
    turning the setting on during the call flips her to dnd at once."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await make_mutual(alice, bob)
            await set_settings(alice, dnd_on_phone="1")
            await set_settings(alice, dnd_on_phone="0")
            desk = f"{ALICE}/e2e"
            await sipp_ok(sipp("interop_publish", "alice", keys={
                "basic": "open", "activities": ON_THE_PHONE, "note": "Call"}))
            await presence(bob, desk, "alice on the phone, no DND", show="away", status="On the phone")
            await set_settings(alice, dnd_on_phone="true")
            await presence(bob, desk, "alice flipped to DND mid-call", show="dnd", status="On the phone")

    run(scenario)


def test_share_availability_off_hides_alice_politely_from_both_protocols(server, sipp):
    """alice turns share-availability off: bob (XMPP) gets unavailable, never an error, and
    carol's softphone a NOTIFY saying closed; back on, both see her again."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            errors = []
            bob.xmpp.add_event_handler("presence_error", errors.append)
            await make_mutual(alice, bob)
            carol = await Watcher(sipp, "carol", "alice").start()
            await carol.expect("carol sees alice online", basic="open")

            await set_settings(alice, share_availability="false")
            await presence(bob, f"{ALICE}/e2e", "alice hidden from bob", unavailable=True)
            await carol.expect("alice hidden from carol", basic="closed", activities=())
            alice.xmpp.send_presence(pshow="away", pstatus="Not for anyone")
            await no_available_presence(bob, ALICE, "alice's changes while sharing is off")

            await set_settings(alice, share_availability="true")
            await presence(bob, f"{ALICE}/e2e", "alice shown to bob again", show="away",
                           status="Not for anyone")
            await carol.expect("alice shown to carol again", basic="open", activities=("away",),
                               note="Not for anyone")
            carol_run = await carol.finish()
            assert not errors, f"polite: bob never gets an error: {errors}"
        # While sharing was off her NOTIFYs said closed and nothing more: no status leaked.
        leaked = [d for d in (pidf(n.body) for n in carol_run.received("NOTIFY") if n.body.strip())
                  if d["basic"] == ["closed"] and (d["notes"] or d["activities"])]
        assert not leaked, f"carol learnt something of alice while sharing was off: {leaked}"

    run(scenario)


def test_get_set_round_trip_bad_values_and_disco(server, sipp):
    """Defaults, a set of one attribute leaving the others, every value kept across sessions,
    bad-request (nothing changed) for a value that is not an XSD boolean, and the namespace among
    the server's disco#info features."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=DOMAIN, local=False, cached=False,
                                                       timeout=WAIT),
                "disco#info of the server",
            )
            assert NS_SETTINGS in set(info["disco_info"]["features"])
            assert await get_settings(alice) == DEFAULTS
            await set_settings(alice, dnd_in_meeting="true")
            await set_settings(alice, dnd_on_phone="1", share_availability="0")
            want = {"dnd-on-phone": "true", "dnd-in-meeting": "true", "share-availability": "false"}
            assert await get_settings(alice) == want
            for bad in ("yes", "TRUE", ""):
                try:
                    await set_settings(alice, dnd_on_phone="false", share_availability=bad)
                except IqError as e:
                    assert e.iq["error"]["condition"] == "bad-request", e.iq
                else:
                    raise AssertionError(f"share-availability={bad!r} was accepted")
            assert await get_settings(alice) == want, "a refused set changes nothing"
        async with clients(connect(server, "alice", "laptop")) as (alice,):
            assert await get_settings(alice) == want, "settings are stored with the account"

    run(scenario)
