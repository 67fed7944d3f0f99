"""End-to-end message carbons (XEP-0280) with slixmpp's xep_0280, xep_0085 and xep_0334 plugins: a user's
carbon-enabled devices see what the others sent and received; private messages and disabled devices do not."""

from __future__ import annotations

import asyncio

from slixmpp.stanza import Message

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def carbon_queues(client: Client) -> tuple[asyncio.Queue[Message], asyncio.Queue[Message]]:
    """Loads the carbons plugin; returns queues of the copies it accepts (sent, received), unwrapped."""
    client.xmpp.register_plugin("xep_0280")
    client.xmpp.register_plugin("xep_0085")
    client.xmpp.register_plugin("xep_0334")
    sent: asyncio.Queue[Message] = asyncio.Queue()
    received: asyncio.Queue[Message] = asyncio.Queue()
    client.xmpp.add_event_handler("carbon_sent", lambda m: sent.put_nowait(m["carbon_sent"]))
    client.xmpp.add_event_handler("carbon_received", lambda m: received.put_nowait(m["carbon_received"]))
    return sent, received


async def enable(client: Client) -> None:
    await wait(client.xmpp.plugin["xep_0280"].enable(timeout=WAIT), f"enabling carbons for {client.jid}")


async def nothing_in(queue: asyncio.Queue, what: str, settle: float = 0.5) -> None:
    await asyncio.sleep(settle)
    assert queue.empty(), f"{what}: {queue.get_nowait()}"


def test_a_second_device_sees_both_sides_of_a_conversation(server: Server) -> None:
    async def scenario() -> None:
        async with clients(
            connect(server, "alice", "desk"), connect(server, "alice", "phone"), connect(server, "bob")
        ) as (desk, phone, bob):
            carbon_queues(desk)
            sent, received = carbon_queues(phone)
            await enable(phone)

            desk.send_message(BOB, "hello from the desk")
            copy = await wait(sent.get(), "a sent carbon on the phone")
            assert (str(copy["from"]), str(copy["to"]), copy["body"]) == (
                f"{ALICE}/desk", BOB, "hello from the desk")
            assert (await bob.next_message())["body"] == "hello from the desk"

            # bob answers the desk's full JID: the phone gets a received carbon.
            bob.xmpp.send_message(mto=f"{ALICE}/desk", mbody="hi desk", mtype="chat")
            copy = await wait(received.get(), "a received carbon on the phone")
            assert (copy["from"].bare, str(copy["to"]), copy["body"]) == (BOB, f"{ALICE}/desk", "hi desk")
            assert (await desk.next_message())["body"] == "hi desk"

            # A chat state with no body is copied; a private message is not.
            typing = desk.xmpp.make_message(mto=BOB, mtype="chat")
            typing["chat_state"] = "composing"
            typing.send()
            copy = await wait(sent.get(), "the chat state's carbon")
            assert copy["chat_state"] == "composing" and not copy["body"], copy

            private = desk.xmpp.make_message(mto=BOB, mbody="off the record", mtype="chat")
            private.enable("carbon_private")
            private["no-copy"] = True
            private.send()
            assert (await bob.next_message())["body"] == "off the record"
            await nothing_in(sent, "a private message was copied")

    run(scenario)


def test_a_device_that_disables_carbons_stops_getting_copies(server: Server) -> None:
    async def scenario() -> None:
        async with clients(
            connect(server, "alice", "desk"), connect(server, "alice", "phone"), connect(server, "bob")
        ) as (desk, phone, bob):
            sent, _ = carbon_queues(phone)
            await enable(phone)
            desk.send_message(BOB, "one")
            await wait(sent.get(), "the first carbon")
            await wait(phone.xmpp.plugin["xep_0280"].disable(timeout=WAIT), "disabling carbons")
            desk.send_message(BOB, "two")
            assert [(await bob.next_message())["body"] for _ in range(2)] == ["one", "two"]
            await nothing_in(sent, "a carbon after disabling")

    run(scenario)


def test_carbons_are_advertised(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            info = await wait(alice.xmpp.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=WAIT), "disco#info")
            assert "urn:xmpp:carbons:2" in info["disco_info"]["features"]

    run(scenario)
