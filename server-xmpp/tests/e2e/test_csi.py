"""End-to-end XEP-0352 client state indication with slixmpp's ``xep_0352`` plugin: an inactive
client gets messages at once but no presence until it is active again, and then only the latest
presence of each contact that changed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from xmpp import DOMAIN, clients, connect, drain, make_client, make_mutual, run, start, wait

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))


async def connect_csi(server, local: str, resource: str):
    client = make_client(server, local, resource)
    client.xmpp.register_plugin("xep_0352")
    await start(client, server)
    await wait(client.session_started.wait(), f"session_start of {local}/{resource}")
    assert client.xmpp.plugin["xep_0352"].enabled, "the server did not offer <csi/>"
    await client.roster_items()
    client.xmpp.send_presence()
    return client


def test_an_inactive_client_gets_messages_at_once_and_the_latest_presence_when_active(server) -> None:
    async def scenario() -> None:
        async with clients(
            connect_csi(server, "alice", "phone"), connect(server, "bob", "pc"), connect(server, "carol", "pc")
        ) as (alice, bob, carol):
            await make_mutual(alice, bob)
            await make_mutual(alice, carol)
            await alice.presence_from(BOB)
            await alice.presence_from(CAROL)
            await alice.ping_server()
            drain(alice.presences)

            alice.xmpp.plugin["xep_0352"].send_inactive()
            await alice.ping_server()
            body = f"urgent {uuid.uuid4()}"
            bob.send_message(str(alice.jid), body)
            assert (await alice.next_message("a message while inactive"))["body"] == body

            # bob's change reaches the engine before carol's (his ping is answered after his presence was
            # submitted), so the order alice is later told in is known.
            bob.xmpp.send_presence(pshow="away")
            await bob.ping_server()
            carol.xmpp.send_presence(pshow="dnd")
            carol.xmpp.send_presence(pshow="xa")
            await carol.ping_server()
            await asyncio.sleep(1.0)
            await alice.ping_server()
            assert drain(alice.presences) == [], "presence reached an inactive client"

            alice.xmpp.plugin["xep_0352"].send_active()
            await alice.presence_from(BOB, "away")
            await alice.presence_from(CAROL, "xa")
            await alice.ping_server()
            rest = [(p["from"].bare, p["show"]) for p in drain(alice.presences)]
            assert rest == [], f"more than the latest presence per contact: {rest}"

            # Active again: presence flows at once.
            bob.xmpp.send_presence(pshow="chat")
            await alice.presence_from(BOB, "chat")

    run(scenario)
