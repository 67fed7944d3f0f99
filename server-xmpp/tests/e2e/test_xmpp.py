"""End-to-end XMPP scenarios against a running `presenced serve` (RFC 6120/6121, XEPs 30/92/199/203).

Each test gets its own server (fresh data dir and port, users alice/bob/carol/dave), drives its own
asyncio loop through `xmpp.run`, bounds every wait (`xmpp.WAIT`) and disconnects its clients.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import Server
from xmpp import (
    DOMAIN,
    NS_DELAY,
    NS_SASL,
    NS_STREAM,
    NS_TLS,
    STREAM_ERROR_CONDITIONS,
    WAIT,
    Client,
    RawStream,
    clients,
    connect,
    local_name,
    make_client,
    plain_auth,
    run,
    start,
    stream_error_condition,
    wait,
    wait_until,
)

ALICE, BOB, CAROL, DAVE = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol", "dave"))

#: The stream error conditions a server may pick for XML that is not well-formed.
MALFORMED_XML_CONDITIONS = {"not-well-formed", "invalid-xml", "bad-format"}


def body() -> str:
    """A unique message body, so a stray earlier message can never satisfy an assertion."""
    return f"e2e {uuid.uuid4()}"


def assert_uses_generated_cert(client: Client, server: Server) -> None:
    """The stream runs over TLS, and the peer certificate is exactly the one presenced generated."""
    assert "starttls" in client.xmpp.features, "STARTTLS was not negotiated"
    tls = client.xmpp.transport.get_extra_info("ssl_object")
    assert tls is not None, "the transport is not TLS"
    pem = server.cert.read_text()
    first = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    assert tls.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(first)


# ------------------------------------------------------------------------------------------------
# 1-3: authentication and TLS
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_login_over_starttls(server: Server, mechanism: str) -> None:
    """Each offered SASL mechanism, forced on its own, signs alice in over STARTTLS with the
    generated certificate verified for `localhost`; the bound JID is alice's with her resource."""

    async def scenario() -> None:
        async with clients(connect(server, "alice", "laptop", mechanism=mechanism)) as (alice,):
            assert alice.mechanism == mechanism
            assert alice.xmpp.authenticated
            assert alice.jid.bare == ALICE
            assert alice.jid.resource == "laptop"
            assert alice.jid.full == f"{ALICE}/laptop"
            assert_uses_generated_cert(alice, server)
            await alice.ping_server()  # the session really works

    run(scenario)


def test_default_login_picks_scram_sha_256(server: Server) -> None:
    """With every mechanism allowed, a client's best choice among what is offered is SCRAM-SHA-256."""

    async def scenario() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            assert bob.mechanism == "SCRAM-SHA-256"
            assert bob.jid.bare == BOB

    run(scenario)


def test_wrong_password_is_refused(server: Server) -> None:
    """A wrong password gets a SASL <failure/> (slixmpp's failed_auth) and no session starts."""

    async def scenario() -> None:
        alice = make_client(server, "alice", password="not-alices-password")
        try:
            await start(alice, server)
            await wait(alice.auth_failed.wait(), "failed_auth for a wrong password")
            # slixmpp then tries the other offered mechanisms; all of them must fail too, unless the
            # server closes the stream after a failure (RFC 6120 §6.4.5 allows limiting retries).
            done, _ = await asyncio.wait(
                [
                    asyncio.ensure_future(alice.all_auth_failed.wait()),
                    asyncio.ensure_future(alice.disconnected.wait()),
                ],
                timeout=WAIT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            assert done, "after a wrong password, neither failed_all_auth nor a disconnect came"
            for t in _:
                t.cancel()
            await asyncio.sleep(0.5)
            assert not alice.session_started.is_set(), "a session started with a wrong password"
            assert not alice.xmpp.authenticated
        finally:
            await alice.disconnect()

    run(scenario)


def test_plaintext_auth_before_tls_is_refused(server: Server) -> None:
    """Before STARTTLS the server requires TLS, offers no PLAIN, and refuses a PLAIN <auth/> even
    with the right password: a SASL <failure/> or a stream error, never <success/>."""

    async def scenario() -> None:
        raw = await RawStream.open(server.port)
        try:
            features = await raw.features()
            starttls = features.find(f"{{{NS_TLS}}}starttls")
            assert starttls is not None, f"no <starttls/> offered: {raw.received!r}"
            assert starttls.find(f"{{{NS_TLS}}}required") is not None, "STARTTLS is not <required/>"
            mechanisms = features.find(f"{{{NS_SASL}}}mechanisms")
            offered = [] if mechanisms is None else [(m.text or "").strip() for m in mechanisms]
            assert "PLAIN" not in offered, f"PLAIN offered before TLS: {offered}"

            await raw.send(plain_auth("alice", server.users["alice"]))
            answer = await raw.next_element("an answer to <auth mechanism='PLAIN'> before TLS")
            if answer.tag == f"{{{NS_SASL}}}failure":
                conditions = {local_name(c) for c in answer if local_name(c) != "text"}
                # encryption-required is the expected one; invalid-mechanism is also correct since
                # PLAIN was not offered.
                assert conditions & {"encryption-required", "invalid-mechanism"}, conditions
            else:
                condition = stream_error_condition(answer)
                assert condition in {"policy-violation", "not-authorized"}, (
                    f"expected <failure/> or a policy-violation/not-authorized stream error, "
                    f"got {answer.tag} ({condition}): {raw.received!r}"
                )
            await asyncio.sleep(0.3)
            assert b"<success" not in raw.received, raw.received
        finally:
            await raw.close()

    run(scenario)


# ------------------------------------------------------------------------------------------------
# 4-7: roster, presence, messages
# ------------------------------------------------------------------------------------------------


async def approve_subscriptions(client: Client) -> None:
    """Approves every subscription request (for when the server does not auto-authorize)."""
    while True:
        pres = await client.subscribes.get()
        client.xmpp.send_presence(pto=pres["from"].bare, ptype="subscribed")


async def subscription(client: Client, contact: str) -> str:
    return (await client.roster_items()).get(contact, {}).get("subscription", "<absent>")


def test_roster_subscription_both_ways(server: Server) -> None:
    """alice adds bob to her roster and subscribes; bob approves (or the server auto-authorizes) and
    subscribes back; both rosters end at subscription='both' and each sees the other online."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            approvers = [asyncio.ensure_future(approve_subscriptions(c)) for c in (alice, bob)]
            try:
                iq = alice.xmpp.Iq()
                iq["type"] = "set"
                iq["roster"]["items"] = {BOB: {"name": "Bob", "groups": ["e2e"]}}
                result = await wait(iq.send(timeout=WAIT), "roster set result")
                assert result["type"] == "result"
                items = await alice.roster_items()
                assert BOB in items and items[BOB]["name"] == "Bob", items

                alice.xmpp.send_presence(pto=BOB, ptype="subscribe")

                async def alice_has_to() -> bool:
                    return await subscription(alice, BOB) in ("to", "both")

                await wait_until(alice_has_to, "alice's roster item for bob to reach 'to'")
                # Approved: the server sends bob's current presence to alice (RFC 6121 §3.1.5).
                await alice.presence_from(BOB)

                if await subscription(bob, ALICE) != "both":
                    bob.xmpp.send_presence(pto=ALICE, ptype="subscribe")

                async def both_ways() -> bool:
                    return (await subscription(alice, BOB), await subscription(bob, ALICE)) == (
                        "both",
                        "both",
                    )

                await wait_until(both_ways, "both rosters to reach subscription='both'")
                await bob.presence_from(ALICE)

                # Presence now flows on change too: alice goes away, bob sees it.
                alice.xmpp.send_presence(pshow="away", pstatus="e2e")
                pres = await bob.presence_from(ALICE, show="away")
                assert pres["status"] == "e2e", pres
            finally:
                for t in approvers:
                    t.cancel()

    run(scenario)


def test_messages_both_ways(server: Server) -> None:
    """alice -> bob (bare JID) and bob -> alice (full JID): bodies arrive unchanged, from the sender."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            text = body()
            alice.send_message(BOB, text)
            msg = await bob.next_message("alice's message")
            assert msg["body"] == text
            assert msg["from"].bare == ALICE
            assert msg["type"] == "chat"

            reply = body()
            bob.send_message(msg["from"].full, reply)
            back = await alice.next_message("bob's reply")
            assert back["body"] == reply
            assert back["from"].bare == BOB

    run(scenario)


def test_message_to_bare_jid_forks_to_every_available_resource(server: Server) -> None:
    """bob is online twice (priorities 1 and 0): a message to his bare JID reaches both."""

    async def scenario() -> None:
        async with clients(
            connect(server, "bob", "phone", priority=1),
            connect(server, "bob", "desk", priority=0),
            connect(server, "alice"),
        ) as (phone, desk, alice):
            # Barrier: both presences are processed before alice sends (in-order handling).
            await phone.ping_server()
            await desk.ping_server()
            text = body()
            alice.send_message(BOB, text)
            for bob in (phone, desk):
                msg = await bob.next_message(f"the forked copy at {bob.jid}")
                assert msg["body"] == text
                assert msg["from"].bare == ALICE
            assert phone.jid.full != desk.jid.full

    run(scenario)


def test_offline_message_survives_kill_and_is_delivered_with_delay(server: Server) -> None:
    """alice writes to bob while he is offline; the server is killed with SIGKILL and restarted on
    the same data dir; bob signs in and gets the message with a XEP-0203 <delay/> stamp."""

    async def scenario() -> None:
        before = datetime.now(timezone.utc) - timedelta(seconds=60)
        text = body()
        async with clients(connect(server, "alice")) as (alice,):
            alice.send_message(BOB, text)
            # Barrier: the server answered a later stanza from the same session, so it has handled
            # (and durably stored) the message; a short grace period on top.
            await alice.ping_server()
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)

        async with clients(connect(server, "bob")) as (bob,):
            msg = await bob.next_message("the offline message after the restart")
            assert msg["body"] == text
            assert msg["from"].bare == ALICE
            delay = msg.xml.find(f"{{{NS_DELAY}}}delay")
            assert delay is not None, f"no <delay xmlns='{NS_DELAY}'/> on {msg}"
            stamp = delay.get("stamp")
            assert stamp, f"<delay/> without stamp: {msg}"
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            assert when.tzinfo is not None, f"stamp {stamp} has no UTC offset (XEP-0082)"
            assert before <= when <= datetime.now(timezone.utc) + timedelta(seconds=60), stamp

    run(scenario, timeout=120)


# ------------------------------------------------------------------------------------------------
# 8: malformed XML
# ------------------------------------------------------------------------------------------------


def test_malformed_xml_gets_stream_error_and_others_are_undisturbed(server: Server) -> None:
    """A raw connection that sends XML that is not well-formed gets a <stream:error> with an RFC 6120
    malformed-XML condition and is closed; carol and dave, connected meanwhile, still talk."""

    async def scenario() -> None:
        async with clients(connect(server, "carol"), connect(server, "dave")) as (carol, dave):
            raw = await RawStream.open(server.port)
            try:
                await raw.features()
                await raw.send(b"<message><unclosed></message>")
                err = await raw.next_element("<stream:error> for XML that is not well-formed")
                assert err.tag == f"{{{NS_STREAM}}}error", f"expected <stream:error>, got {err.tag}"
                condition = stream_error_condition(err)
                assert condition in STREAM_ERROR_CONDITIONS, condition
                assert condition in MALFORMED_XML_CONDITIONS, condition
                await raw.wait_closed("the server to close the malformed connection")
                assert raw.eof
            finally:
                await raw.close()

            text = body()
            carol.send_message(DAVE, text)
            msg = await dave.next_message("carol's message after the malformed connection")
            assert msg["body"] == text and msg["from"].bare == CAROL
            reply = body()
            dave.send_message(CAROL, reply)
            back = await carol.next_message("dave's reply")
            assert back["body"] == reply and back["from"].bare == DAVE

    run(scenario)


# ------------------------------------------------------------------------------------------------
# 9: service discovery, ping, version
# ------------------------------------------------------------------------------------------------


def test_disco_ping_and_version_of_the_server(server: Server) -> None:
    """disco#info on the server JID: identity server/im, features with urn:xmpp:ping; a ping is
    answered with a result; jabber:iq:version returns a software name."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            iq = await wait(
                alice.xmpp["xep_0030"].get_info(jid=DOMAIN, local=False, cached=False, timeout=WAIT),
                "disco#info result from the server",
            )
            assert iq["type"] == "result", iq
            assert iq["from"].full == DOMAIN, iq["from"]
            info = iq["disco_info"]
            identities = {(cat, typ) for cat, typ, _lang, _name in info["identities"]}
            assert ("server", "im") in identities, identities
            features = set(info["features"])
            assert "urn:xmpp:ping" in features, features
            assert "http://jabber.org/protocol/disco#info" in features, features

            await alice.ping_server()

            version = await wait(
                alice.xmpp["xep_0092"].get_version(DOMAIN, timeout=WAIT),
                "jabber:iq:version result from the server",
            )
            assert version["type"] == "result", version
            assert version["software_version"]["name"], version

    run(scenario)
