"""End-to-end avatar conversion (XEP-0398) against `presenced serve`, with slixmpp's own plugins: an avatar
published in PEP (XEP-0084) is a contact's vCard PHOTO (XEP-0054) and the hash in the owner's presence
(XEP-0153); a vCard PHOTO is published as PEP avatar data and metadata that another user reads; the server
advertises the conversion."""

from __future__ import annotations

import asyncio
import hashlib

from slixmpp import JID, Presence
from slixmpp.plugins.xep_0054.stanza import VCardTemp
from slixmpp.plugins.xep_0084.stanza import MetaData

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, make_mutual, run, wait

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
CONVERSION = "urn:xmpp:pep-vcard-conversion:0"
UPDATE = "vcard-temp:x:update"


def with_plugins(client: Client) -> Client:
    for plugin in ("xep_0004", "xep_0060", "xep_0163", "xep_0084", "xep_0054", "xep_0153"):
        client.xmpp.register_plugin(plugin)
    return client


def photo_hash(pres: Presence) -> str | None:
    """The XEP-0153 hash a presence carries (``""`` for an empty ``<photo/>``), ``None`` without one."""
    photos = pres.xml.findall(f"{{{UPDATE}}}x/{{{UPDATE}}}photo")
    assert len(photos) <= 1, f"one avatar hash at most: {pres}"
    return (photos[0].text or "") if photos else None


async def presence_with_hash(watcher: Client, bare: str, expected: str) -> Presence:
    """Waits for an available presence from ``bare`` whose avatar hash is ``expected``."""

    async def get() -> Presence:
        while True:
            pres = await watcher.presences.get()
            if pres["from"].bare == bare and pres["type"] != "unavailable" and photo_hash(pres) == expected:
                return pres

    return await wait(get(), f"presence of {bare} with avatar hash {expected} at {watcher.jid}")


def test_a_pep_avatar_is_the_vcard_photo_and_the_presence_hash(server: Server) -> None:
    image = b"\x89PNG\r\n\x1a\n a picture published in PEP"
    sha1 = hashlib.sha1(image).hexdigest()

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            with_plugins(alice)
            with_plugins(bob)
            await make_mutual(alice, bob)
            avatars = alice.xmpp.plugin["xep_0084"]
            assert avatars.generate_id(image) == sha1
            await wait(avatars.publish_avatar(image, timeout=WAIT), "avatar data")
            await wait(
                avatars.publish_avatar_metadata(
                    {"id": sha1, "type": "image/png", "bytes": len(image)}, timeout=WAIT
                ),
                "avatar metadata",
            )

            # The server announces the new hash in Alice's presence at once (she sent none since).
            await presence_with_hash(bob, ALICE, sha1)

            card = await wait(
                bob.xmpp.plugin["xep_0054"].get_vcard(JID(ALICE), local=False, timeout=WAIT),
                "bob reading alice's vCard",
            )
            photo = card["vcard_temp"]["PHOTO"]
            assert photo["TYPE"] == "image/png", card
            assert photo["BINVAL"] == image, card

            # Whatever Alice's client says about her avatar, her contacts get the server's hash.
            stale = alice.xmpp.Presence()
            stale["show"] = "away"
            stale["vcard_temp_update"]["photo"] = "0" * 40
            stale.send()
            pres = await presence_with_hash(bob, ALICE, sha1)
            assert pres["show"] == "away", pres

            # Empty metadata: no avatar any more, in presence and in the card.
            await wait(avatars.stop(timeout=WAIT), "disabling the avatar")
            await presence_with_hash(bob, ALICE, "")
            card = await wait(
                bob.xmpp.plugin["xep_0054"].get_vcard(JID(ALICE), local=False, timeout=WAIT),
                "alice's vCard after the avatar was removed",
            )
            assert card["vcard_temp"].xml.find("{vcard-temp}PHOTO") is None, card

    run(scenario)


def test_a_vcard_photo_is_published_as_a_pep_avatar(server: Server) -> None:
    image = b"GIF89a a picture set in a vCard"
    sha1 = hashlib.sha1(image).hexdigest()

    async def scenario() -> None:
        async with clients(
            connect(server, "alice"), connect(server, "bob"), connect(server, "carol")
        ) as (alice, bob, carol):
            for c in (alice, bob, carol):
                with_plugins(c)
            await make_mutual(alice, bob)
            events: asyncio.Queue = asyncio.Queue()
            alice.xmpp.add_event_handler("pubsub_publish", events.put_nowait)

            card = VCardTemp()
            card["FN"] = "Alice Liddell"
            card["PHOTO"]["TYPE"] = "image/gif"
            card["PHOTO"]["BINVAL"] = image
            await wait(alice.xmpp.plugin["xep_0054"].publish_vcard(card, timeout=WAIT), "publishing the card")

            # Alice's sessions are notified as if she had published the avatar herself.
            async def metadata_event():
                while True:
                    msg = await events.get()
                    if msg["pubsub_event"]["items"]["node"] == MetaData.namespace:
                        item = msg["pubsub_event"]["items"]["item"]
                        if item["id"] == sha1:
                            return item

            item = await wait(metadata_event(), "the metadata notification")
            info = item["avatar_metadata"]["info"]
            assert (info["id"], info["type"], int(info["bytes"])) == (sha1, "image/gif", len(image)), item
            await presence_with_hash(bob, ALICE, sha1)

            got = await wait(
                bob.xmpp.plugin["xep_0060"].get_items(JID(ALICE), MetaData.namespace, timeout=WAIT),
                "bob reading alice's avatar metadata",
            )
            [meta] = list(got["pubsub"]["items"])
            assert meta["id"] == sha1, got
            ns = MetaData.namespace
            info = meta.xml.find(f"{{{ns}}}metadata/{{{ns}}}info")
            assert info is not None and info.get("id") == sha1, got
            assert (info.get("type"), int(info.get("bytes"))) == ("image/gif", len(image)), got

            # The nodes the server made are open: Carol, no contact of Alice's, reads the picture too.
            for reader in (bob, carol):
                data = await wait(
                    reader.xmpp.plugin["xep_0084"].retrieve_avatar(JID(ALICE), sha1, timeout=WAIT),
                    f"{reader.jid.bare} reading alice's avatar data",
                )
                value = data["pubsub"]["items"]["item"]["avatar_data"]["value"]
                assert value == image, data
                assert hashlib.sha1(value).hexdigest() == sha1

            # The card keeps the rest, and its PHOTO comes back as it was set.
            back = await wait(
                carol.xmpp.plugin["xep_0054"].get_vcard(JID(ALICE), local=False, timeout=WAIT),
                "carol reading alice's vCard",
            )
            assert back["vcard_temp"]["FN"] == "Alice Liddell", back
            assert back["vcard_temp"]["PHOTO"]["BINVAL"] == image, back
            assert back["vcard_temp"]["PHOTO"]["TYPE"] == "image/gif", back

    run(scenario)


def test_the_server_advertises_the_conversion(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(DOMAIN), local=False, timeout=WAIT),
                "disco#info of the server",
            )
            assert CONVERSION in set(info["disco_info"]["features"]), info

    run(scenario)

