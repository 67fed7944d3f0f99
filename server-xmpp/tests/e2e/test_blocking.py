"""End-to-end XEP-0191 (Blocking Command) with slixmpp's xep_0191 plugin against `presenced serve`.

Blocking is polite (DESIGN §3): a blocked contact sees the user as unavailable and gets
service-unavailable for messages, never a hint that it is blocked.
"""

from __future__ import annotations

import asyncio
import uuid

from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.stanza import Iq, Message, Presence

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait, wait_until
from xmpp import make_mutual as mutual

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
NS_BLOCKING = "urn:xmpp:blocking"


def enable_blocking(client: Client) -> asyncio.Queue[Iq]:
    """Loads slixmpp's xep_0191 plugin; returns a queue of the block/unblock pushes it sees."""
    client.xmpp.register_plugin("xep_0191")
    pushes: asyncio.Queue[Iq] = asyncio.Queue()
    client.xmpp.add_event_handler("blocked", pushes.put_nowait)
    client.xmpp.add_event_handler("unblocked", pushes.put_nowait)
    return pushes


async def subscription(client: Client, contact: str) -> str:
    return (await client.roster_items()).get(contact, {}).get("subscription", "<absent>")


async def make_mutual(alice: Client, bob: Client) -> None:
    """alice and bob subscribe to each other and bob sees alice online."""
    await mutual(alice, bob)
    await bob.presence_from(ALICE)


async def unavailable_from(client: Client, bare: str) -> Presence:
    async def get() -> Presence:
        while True:
            pres = await client.presences.get()
            if pres["type"] == "unavailable" and pres["from"].bare == bare:
                return pres

    return await wait(get(), f"unavailable presence from {bare} at {client.jid}")


def message_errors(client: Client) -> asyncio.Queue[Message]:
    """Message errors: slixmpp reports a bounce without a <body/> as 'message_error' only."""
    errors: asyncio.Queue[Message] = asyncio.Queue()
    client.xmpp.add_event_handler("message_error", errors.put_nowait)
    return errors


async def blocked_jids(client: Client) -> set[str]:
    jids = await wait(
        client.xmpp.plugin["xep_0191"].get_blocked_jids(timeout=WAIT), f"blocklist of {client.jid}"
    )
    return {str(j) for j in jids}


def test_block_hides_presence_bounces_messages_and_unblock_restores(server: Server) -> None:
    """alice blocks bob: bob gets alice's unavailable presence and an error for his message, the
    block list names bob and alice's session gets the push; unblocking shows alice available again."""

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            pushes = enable_blocking(alice)
            bounces = message_errors(bob)
            await make_mutual(alice, bob)
            assert await blocked_jids(alice) == set()

            result = await wait(alice.xmpp.plugin["xep_0191"].block(BOB, timeout=WAIT), "block result")
            assert result["type"] == "result", result
            await unavailable_from(bob, ALICE)
            push = await wait(pushes.get(), "the <block/> push to alice")
            assert push["type"] == "set" and push["block"] is not None
            assert [str(i["jid"]) for i in push["block"]["items"]] == [BOB], push

            text = f"e2e {uuid.uuid4()}"
            bob.send_message(ALICE, text)
            err = await wait(bounces.get(), "the error for bob's message to alice")
            assert err["from"].bare == ALICE, err
            assert err["error"]["condition"] == "service-unavailable", err
            await alice.ping_server()
            while not alice.messages.empty():
                assert alice.messages.get_nowait()["body"] != text, "the blocked message arrived"

            assert await blocked_jids(alice) == {BOB}

            result = await wait(alice.xmpp.plugin["xep_0191"].unblock(BOB, timeout=WAIT), "unblock")
            assert result["type"] == "result", result
            await bob.presence_from(ALICE)
            push = await wait(pushes.get(), "the <unblock/> push to alice")
            assert [str(i["jid"]) for i in push["unblock"]["items"]] == [BOB], push
            assert await blocked_jids(alice) == set()

            text = f"e2e {uuid.uuid4()}"
            bob.send_message(ALICE, text)
            msg = await alice.next_message("bob's message after the unblock")
            assert msg["body"] == text

    run(scenario)


def test_domain_block_unblock_all_and_bad_requests(server: Server) -> None:
    """A domain entry is listed as the bare domain; an empty <unblock/> empties the list; a <block/>
    with no item, a full JID or an invalid JID is a bad-request; disco#info lists urn:xmpp:blocking."""

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            enable_blocking(alice)
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=DOMAIN, local=False, cached=False, timeout=WAIT),
                "disco#info of the server",
            )
            assert NS_BLOCKING in set(info["disco_info"]["features"])

            await wait(
                alice.xmpp.plugin["xep_0191"].block([JID("evil.example"), JID(BOB)], timeout=WAIT),
                "block result",
            )
            assert await blocked_jids(alice) == {"evil.example", BOB}

            for jids in ([], ["bob@localhost/phone"], ["@bad@"]):
                iq = alice.xmpp.make_iq_set()
                block = iq["block"]
                for j in jids:
                    item = block.xml.makeelement(f"{{{NS_BLOCKING}}}item", {"jid": j})
                    block.xml.append(item)
                try:
                    await wait(iq.send(timeout=WAIT), f"answer to a block of {jids}")
                except IqError as e:
                    assert e.iq["error"]["condition"] == "bad-request", e.iq
                else:
                    raise AssertionError(f"a block of {jids} was accepted")

            # slixmpp's unblock() always names items; an empty <unblock/> means "everything".
            iq = alice.xmpp.make_iq_set()
            iq.enable("unblock")
            result = await wait(iq.send(timeout=WAIT), "unblock-all result")
            assert result["type"] == "result", result
            assert await blocked_jids(alice) == set()

    run(scenario)
