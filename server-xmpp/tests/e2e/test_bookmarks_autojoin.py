"""End-to-end room bookmarks (XEP-0402) with autojoin: one client of a user bookmarks a room with XEP-0402's
publish-options (persist_items, max_items=max, send_last_published_item=never, access_model=whitelist); another
session of the same user that advertises `urn:xmpp:bookmarks:1+notify` gets the event, reads the conference from it
(and from the node's items) and enters the room under the bookmarked nickname."""

from __future__ import annotations

from slixmpp import JID
from slixmpp.plugins.xep_0060.stanza import Item
from slixmpp.xmlstream import ET

from conftest import Server
from test_muc import codes, create, join, with_muc
from test_pep import BOOKMARKS, interested, publish_options, with_pep
from xmpp import DOMAIN, WAIT, clients, connect, run, wait

ALICE = f"alice@{DOMAIN}"
ROOM = JID(f"bookmarked@conference.{DOMAIN}")
NS_BOOKMARKS = "urn:xmpp:bookmarks:1"


def conference(item) -> tuple[str, str, str | None]:
    """(room, autojoin, nick) of a bookmark item."""
    conf = item.xml.find(f"{{{NS_BOOKMARKS}}}conference")
    assert conf is not None, item
    nick = conf.find(f"{{{NS_BOOKMARKS}}}nick")
    return item["id"], conf.get("autojoin", "false"), None if nick is None else nick.text


def test_a_bookmark_with_autojoin_reaches_the_users_other_session_which_joins(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice", "desk"), connect(server, "bob")) as (desk, bob):
            with_pep(desk)
            with_muc(bob)
            await create(bob, ROOM, roomname="Bookmarked")
            phone = await interested(server, "alice", "phone", (BOOKMARKS,))
            try:
                with_muc(phone.client)
                bookmark = ET.fromstring(
                    f"<conference xmlns='{NS_BOOKMARKS}' autojoin='true' name='Bookmarked'>"
                    "<nick>alice-phone</nick></conference>"
                )
                await wait(
                    desk.xmpp.plugin["xep_0060"].publish(
                        None, BOOKMARKS, id=str(ROOM), payload=bookmark,
                        options=publish_options(**{
                            "pubsub#persist_items": "true",
                            "pubsub#max_items": "max",
                            "pubsub#send_last_published_item": "never",
                            "pubsub#access_model": "whitelist",
                        }),
                        timeout=WAIT),
                    "publishing the bookmark",
                )
                event = await phone.event("the bookmark at alice's phone")
                assert event["from"] == JID(ALICE), event
                assert event["pubsub_event"]["items"]["node"] == BOOKMARKS, event
                room, autojoin, nick = conference(event["pubsub_event"]["items"]["item"])
                assert (room, autojoin, nick) == (str(ROOM), "true", "alice-phone"), event

                # A client that was offline reads the node instead; the same bookmark is there.
                got = await wait(
                    phone.client.xmpp.plugin["xep_0060"].get_items(JID(ALICE), BOOKMARKS, timeout=WAIT),
                    "the bookmarks",
                )
                items = [conference(i) for i in got["pubsub"]["items"] if isinstance(i, Item)]
                assert items == [(str(ROOM), "true", "alice-phone")], got

                pres, _, occupants, _ = await join(phone.client, nick, JID(room))
                assert 110 in codes(pres), pres
                assert sorted(p["from"].resource for p in occupants) == ["alice-phone", "owner"], occupants
            finally:
                await phone.client.disconnect()

    run(scenario)
