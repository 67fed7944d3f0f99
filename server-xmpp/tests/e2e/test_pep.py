"""End-to-end Personal Eventing Protocol (XEP-0163) against `presenced serve`, with slixmpp's own plugins:
avatars (XEP-0084) notified to a subscribed contact and read back, private PEP storage (XEP-0223) that another
user cannot read, bookmarks (XEP-0402), an OMEMO-style device list published open with publish-options and read
by a stranger, a conflicting publish refused with precondition-not-met, and the account's disco#info.

Notifications by interest (XEP-0163 §4.3.3/§4.3.4): clients that advertise `NODE+notify` in their entity
capabilities (XEP-0115, slixmpp's caps plugin) get their contacts' items of NODE without subscribing, and the last
item when they come online; strangers get nothing; the server asks each caps `ver` once and serves later clients
with the same caps from its cache."""

from __future__ import annotations

import asyncio

from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0060.stanza import Item
from slixmpp.plugins.xep_0084.stanza import MetaData
from slixmpp.xmlstream import ET

from conftest import Server
from xmpp import DOMAIN, WAIT, Client, clients, connect, make_mutual, run, wait, wait_until

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
PUBSUB = "http://jabber.org/protocol/pubsub"
DEVICES = "eu.siacs.conversations.axolotl.devicelist"
BOOKMARKS = "urn:xmpp:bookmarks:1"


def with_pep(client: Client) -> Client:
    for plugin in ("xep_0004", "xep_0060", "xep_0163", "xep_0084", "xep_0223", "xep_0402"):
        client.xmpp.register_plugin(plugin)
    return client


def publish_options(**fields: str) -> object:
    """A XEP-0060 publish-options form with ``fields`` (``pubsub#`` prefixed by the caller)."""
    form = ET.Element("{jabber:x:data}x", type="submit")
    for var, value in {"FORM_TYPE": f"{PUBSUB}#publish-options", **fields}.items():
        field = ET.SubElement(form, "{jabber:x:data}field", var=var)
        ET.SubElement(field, "{jabber:x:data}value").text = value
    from slixmpp.plugins.xep_0004.stanza import Form

    return Form(xml=form)


def payload(xml: str) -> ET.Element:
    return ET.fromstring(xml)


async def refused(aw, what: str) -> IqError:
    try:
        await wait(aw, what)
    except IqError as e:
        return e
    raise AssertionError(f"{what} was not refused")


async def subscribe_to_presence(watcher: Client, owner: Client, owner_jid: str) -> None:
    """`watcher` asks for `owner`'s presence; the server approves it (automatic authorization is on)."""
    watcher.xmpp.send_presence(pto=owner_jid, ptype="subscribe")

    async def granted() -> bool:
        sub = (await owner.roster_items()).get(str(watcher.jid.bare), {}).get("subscription")
        return sub in ("from", "both")

    await wait_until(granted, f"{owner_jid} to share presence with {watcher.jid.bare}")


def test_account_disco_advertises_pep(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(ALICE), local=False, timeout=WAIT),
                "disco#info of alice's account",
            )
            identities = {(c, t) for c, t, _, _ in info["disco_info"]["identities"]}
            assert ("pubsub", "pep") in identities, identities
            assert ("account", "registered") in identities, identities
            features = set(info["disco_info"]["features"])
            for f in ("publish", "publish-options", "auto-create", "access-presence", "access-open",
                      "access-whitelist", "retrieve-items", "retract-items", "delete-nodes",
                      "create-nodes", "config-node", "persistent-items"):
                assert f"{PUBSUB}#{f}" in features, (f, features)
            server_info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(DOMAIN), local=False, timeout=WAIT),
                "disco#info of the server",
            )
            assert f"{PUBSUB}#publish" in set(server_info["disco_info"]["features"])

    run(scenario)


def test_avatar_metadata_reaches_a_subscribed_contact_who_then_reads_the_data(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            with_pep(alice)
            with_pep(bob)
            await subscribe_to_presence(bob, alice, ALICE)
            events: asyncio.Queue = asyncio.Queue()
            bob.xmpp.add_event_handler("pubsub_publish", events.put_nowait)

            data = b"\x89PNG not really an image"
            avatar_id = alice.xmpp.plugin["xep_0084"].generate_id(data)
            await wait(alice.xmpp.plugin["xep_0084"].publish_avatar(data, timeout=WAIT), "avatar data")
            first = {"id": avatar_id, "type": "image/png", "bytes": len(data)}
            await wait(
                alice.xmpp.plugin["xep_0084"].publish_avatar_metadata(first, timeout=WAIT),
                "avatar metadata",
            )

            result = await wait(
                bob.xmpp.plugin["xep_0060"].subscribe(JID(ALICE), MetaData.namespace, timeout=WAIT),
                "bob subscribing to alice's avatar metadata",
            )
            assert result["pubsub"]["subscription"]["subscription"] == "subscribed", result
            # The last item comes at once to the new subscriber.
            msg = await wait(events.get(), "the last metadata item")
            assert msg["from"] == JID(ALICE), msg
            assert msg["pubsub_event"]["items"]["node"] == MetaData.namespace, msg

            # A new avatar: bob is notified, and reads the data the metadata points to.
            data = b"\x89PNG another picture"
            avatar_id = alice.xmpp.plugin["xep_0084"].generate_id(data)
            await wait(alice.xmpp.plugin["xep_0084"].publish_avatar(data, timeout=WAIT), "avatar data")
            second = {"id": avatar_id, "type": "image/png", "bytes": len(data)}
            await wait(
                alice.xmpp.plugin["xep_0084"].publish_avatar_metadata(second, timeout=WAIT),
                "new avatar metadata",
            )
            # Bob's client also advertises avatar metadata+notify (slixmpp's avatar plugin adds the interest), so
            # the first item may have come twice: once for the subscription, once for the interest.
            async def notification():
                while True:
                    msg = await events.get()
                    if msg["pubsub_event"]["items"]["item"]["id"] == avatar_id:
                        return msg

            msg = await wait(notification(), "the metadata notification")
            item = msg["pubsub_event"]["items"]["item"]
            info = item["avatar_metadata"]["info"]
            assert info["id"] == avatar_id and int(info["bytes"]) == len(data), msg

            got = await wait(
                bob.xmpp.plugin["xep_0084"].retrieve_avatar(JID(ALICE), avatar_id, timeout=WAIT),
                "bob reading the avatar data",
            )
            assert got["from"] == JID(ALICE), got
            assert got["pubsub"]["items"]["item"]["avatar_data"]["value"] == data, got

    run(scenario)


def test_private_pep_storage_is_for_its_owner_only(server: Server) -> None:
    node = "urn:example:private-notes"

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            with_pep(alice)
            with_pep(bob)
            # Bob has a presence subscription, which a whitelist node does not care about.
            await subscribe_to_presence(bob, alice, ALICE)
            notes = payload(f"<notes xmlns='{node}'>buy milk</notes>")
            from slixmpp.xmlstream import ElementBase

            class Notes(ElementBase):
                namespace = node
                name = "notes"
                plugin_attrib = "notes"

            stored = Notes(xml=notes)
            await wait(alice.xmpp.plugin["xep_0223"].store(stored, node=node, id="current", timeout=WAIT),
                       "storing private data")
            async with clients(connect(server, "alice", "phone")) as (phone,):
                with_pep(phone)
                got = await wait(phone.xmpp.plugin["xep_0223"].retrieve(node, timeout=WAIT),
                                 "reading it back on another device")
                items = list(got["pubsub"]["items"])
                assert len(items) == 1 and items[0]["id"] == "current", got
                assert "buy milk" in str(got), got
            err = await refused(
                bob.xmpp.plugin["xep_0060"].get_items(JID(ALICE), node, timeout=WAIT),
                "bob reading alice's private node",
            )
            assert err.iq["error"]["condition"] == "forbidden", err.iq

    run(scenario)


def test_bookmarks_keep_every_conference(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            with_pep(alice)
            xep_0223 = alice.xmpp.plugin["xep_0223"]
            xep_0223.node_profiles[BOOKMARKS] = {
                "pubsub#max_items": "max",
                "pubsub#send_last_published_item": "never",
            }
            from slixmpp.plugins.xep_0402.stanza import Conference

            for room, name in (("team", "Team"), ("lounge", "Lounge")):
                conf = Conference()
                conf["name"] = name
                conf["autojoin"] = True
                conf["nick"] = "alice"
                await wait(
                    xep_0223.store(conf, node=BOOKMARKS, id=f"{room}@conference.{DOMAIN}", timeout=WAIT),
                    f"bookmarking {room}",
                )
            got = await wait(
                alice.xmpp.plugin["xep_0060"].get_items(JID(ALICE), BOOKMARKS, timeout=WAIT),
                "the bookmarks",
            )
            rooms = {i["id"]: i["conference"]["name"] for i in got["pubsub"]["items"]}
            assert rooms == {f"team@conference.{DOMAIN}": "Team", f"lounge@conference.{DOMAIN}": "Lounge"}, got

    run(scenario)


def test_an_open_device_list_is_read_by_a_stranger_and_conflicting_options_are_refused(server: Server) -> None:
    devices = f"<list xmlns='eu.siacs.conversations.axolotl'><device id='4242'/></list>"

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "carol")) as (alice, carol):
            with_pep(alice)
            with_pep(carol)
            pubsub = alice.xmpp.plugin["xep_0060"]
            await wait(
                pubsub.publish(None, DEVICES, id="current", payload=payload(devices),
                               options=publish_options(**{"pubsub#access_model": "open"}), timeout=WAIT),
                "publishing the device list",
            )
            # Carol shares no presence with alice, and the open node lets her read it anyway.
            got = await wait(
                carol.xmpp.plugin["xep_0060"].get_items(JID(ALICE), DEVICES, max_items=1, timeout=WAIT),
                "carol reading the device list",
            )
            assert "4242" in str(got), got

            err = await refused(
                pubsub.publish(None, DEVICES, id="current", payload=payload(devices),
                               options=publish_options(**{"pubsub#access_model": "whitelist"}), timeout=WAIT),
                "a publish whose options conflict with the node",
            )
            error = err.iq.xml.find("{jabber:client}error")
            assert error is not None and error.get("type") == "cancel", err.iq
            assert error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None, err.iq
            assert error.find(f"{{{PUBSUB}#errors}}precondition-not-met") is not None, err.iq

            # A presence node, by contrast, is closed to her.
            await wait(pubsub.publish(None, "urn:example:mood", id="current",
                                      payload=payload("<mood xmlns='urn:example:mood'/>"), timeout=WAIT),
                       "publishing a presence-access node")
            err = await refused(
                carol.xmpp.plugin["xep_0060"].get_items(JID(ALICE), "urn:example:mood", timeout=WAIT),
                "carol reading a presence-access node",
            )
            assert err.iq["error"]["condition"] == "forbidden", err.iq

    run(scenario)


def test_nodes_survive_a_restart(server: Server) -> None:
    async def publish() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            with_pep(alice)
            await wait(
                alice.xmpp.plugin["xep_0060"].publish(
                    None, DEVICES, id="current",
                    payload=payload("<list xmlns='eu.siacs.conversations.axolotl'><device id='7'/></list>"),
                    options=publish_options(**{"pubsub#access_model": "open"}), timeout=WAIT),
                "publishing",
            )

    run(publish)
    server.stop()
    server.start()

    async def read() -> None:
        async with clients(connect(server, "bob")) as (bob,):
            with_pep(bob)
            got = await wait(bob.xmpp.plugin["xep_0060"].get_items(JID(ALICE), DEVICES, timeout=WAIT),
                             "the device list after a restart")
            assert "device id=\"7\"" in str(got) or "device id='7'" in str(got), got

    run(read)


# ------------------------------------------------------------------------------------------------
# +notify interests from entity capabilities
# ------------------------------------------------------------------------------------------------

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"


class Interested:
    """A connected client whose caps advertise ``NODE+notify`` for each of its nodes, with the PEP events it got
    and the number of the server's disco#info queries about its caps."""

    def __init__(self, client: Client):
        self.client = client
        self.events: asyncio.Queue = asyncio.Queue()
        self.caps_queries = 0
        client.xmpp.add_event_handler("pubsub_publish", self.events.put_nowait)

        def count(stanza):
            query = stanza.xml.find(f"{{{NS_DISCO_INFO}}}query")
            if stanza.name == "iq" and stanza["type"] == "get" and query is not None and query.get("node") \
                    and stanza["from"] == JID(DOMAIN):
                self.caps_queries += 1
            return stanza

        client.xmpp.add_filter("in", count)

    async def event(self, what: str):
        return await wait(self.events.get(), what)

    async def nothing_more(self, what: str) -> None:
        """Nothing arrived: a roster get goes through the engine behind any notification meant for the client, so
        its answer is a barrier; a short grace covers the shell's own writes."""
        await self.client.roster_items()
        await asyncio.sleep(0.3)
        assert self.events.empty(), f"{what}: {self.events.get_nowait()}"


async def interested(server: Server, local: str, resource: str, nodes: tuple[str, ...]) -> Interested:
    """Connects ``local`` without initial presence, sets up caps with ``NODE+notify`` for ``nodes``, then sends
    the initial presence that carries them."""
    client = await connect(server, local, resource, priority=None)
    for plugin in ("xep_0004", "xep_0060", "xep_0115", "xep_0163"):
        client.xmpp.register_plugin(plugin)
    watched = Interested(client)
    for node in nodes:
        client.xmpp.plugin["xep_0030"].add_feature(f"{node}+notify")
    await wait(client.xmpp.plugin["xep_0115"].update_caps(broadcast=False), "caps of the client")
    ver = await client.xmpp.plugin["xep_0115"].get_verstring()
    assert ver, "slixmpp computed no caps ver"
    client.xmpp.send_presence()
    return watched


async def publish_devices(alice: Client, device: str) -> None:
    await wait(
        alice.xmpp.plugin["xep_0060"].publish(
            None, DEVICES, id="current",
            payload=payload(f"<list xmlns='eu.siacs.conversations.axolotl'><device id='{device}'/></list>"),
            timeout=WAIT),
        f"alice publishing device {device}",
    )


def device_of(msg) -> str:
    assert msg["from"] == JID(ALICE), msg
    assert msg["pubsub_event"]["items"]["node"] == DEVICES, msg
    return msg["pubsub_event"]["items"]["item"].xml.find(
        "{eu.siacs.conversations.axolotl}list/{eu.siacs.conversations.axolotl}device").get("id")


def test_contacts_that_advertise_notify_get_events_strangers_do_not_and_caps_are_asked_once(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob"), connect(server, "carol")) as (
                alice, bob0, carol0):
            with_pep(alice)
            await make_mutual(alice, bob0)
            await make_mutual(alice, carol0)
            await bob0.disconnect()
            await carol0.disconnect()
            bob = await interested(server, "bob", "phone", (DEVICES,))
            carol = await interested(server, "carol", "pc", ())
            dave = await interested(server, "dave", "pc", (DEVICES,))
            try:
                # The server asked bob's client what its caps mean; the answer gives no interests until then, so
                # wait for it before publishing.
                await wait_until(_async(lambda: bob.caps_queries == 1), "the server's caps query to bob")
                await asyncio.sleep(0.5)

                await publish_devices(alice, "1")
                assert device_of(await bob.event("the device list at bob")) == "1"
                await carol.nothing_more("carol advertised no interest")
                await dave.nothing_more("dave is no contact of alice")

                # A second client with the same caps is served from the server's cache: no query, yet its interests
                # are known at once (the last item comes), and later events follow.
                tablet = await interested(server, "bob", "tablet", (DEVICES,))
                try:
                    assert device_of(await tablet.event("the last device list at bob's tablet")) == "1"
                    assert tablet.caps_queries == 0, "the caps ver was asked for again"
                    assert bob.caps_queries == 1
                    await publish_devices(alice, "2")
                    assert device_of(await tablet.event("the device list at bob's tablet")) == "2"
                    assert device_of(await bob.event("the device list at bob's phone")) == "2"
                finally:
                    await tablet.client.disconnect()
                await dave.nothing_more("dave is still no contact")
            finally:
                for c in (bob, carol, dave):
                    await c.client.disconnect()

    run(scenario)


def test_a_contact_coming_online_with_notify_gets_the_last_item(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob0):
            with_pep(alice)
            await make_mutual(alice, bob0)
            await bob0.disconnect()
            # Published while bob is offline.
            await publish_devices(alice, "41")
            await publish_devices(alice, "42")
            bob = await interested(server, "bob", "phone", (DEVICES,))
            try:
                msg = await bob.event("alice's last device list when bob came online")
                assert device_of(msg) == "42"
                await bob.nothing_more("only the last item")
            finally:
                await bob.client.disconnect()

    run(scenario)


def _async(check):
    async def run_check() -> bool:
        return check()

    return run_check
