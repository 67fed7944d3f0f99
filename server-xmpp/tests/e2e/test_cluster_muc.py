"""Group chat in a two-node cluster (issue 15), with real PostgreSQL, NATS and slixmpp: a room lives on its home
node (rendezvous hashing of its address over the node names, computed here as the server does), users of the
other node join it through their own node and talk both ways, the room service of either node lists it (issue
17), and a persistent room is served, configuration intact, by the peer of its home node once that node has
stopped (its occupants find out by XEP-0410 self-ping and rejoin through their own node)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

from slixmpp import JID
from slixmpp.exceptions import IqError

from cluster import Cluster, start_cluster
from test_muc import codes, create, groupchat_from, join, muc, with_muc
from xmpp import DOMAIN, WAIT, clients, connect, run, wait, wait_until

USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3", "dave": "dave-pw-4"}
SERVICE = f"conference.{DOMAIN}"
NODES = ("a", "b")


def room_home(room: str, nodes=NODES) -> str:
    """The home node of a room, as `presence_core::cluster::room_home` picks it: the node with the highest
    weight, the weight being the first 8 bytes (big-endian) of SHA-256 over node name, a zero byte, room."""
    def weight(node: str) -> tuple[int, str]:
        digest = hashlib.sha256(node.encode() + b"\0" + room.lower().encode()).digest()
        return int.from_bytes(digest[:8], "big"), node

    return max(nodes, key=weight)


def room_on(node: str, prefix: str) -> JID:
    """The first room `<prefix><n>@conference…` whose home is `node`."""
    for i in range(1000):
        room = f"{prefix}{i}@{SERVICE}"
        if room_home(room) == node:
            return JID(room)
    raise AssertionError(f"no room homed on {node}")


def homes(cluster: Cluster) -> dict[str, str | None]:
    return {j.split("@")[0]: h for j, h in cluster.placement().items()}


def settled(cluster: Cluster) -> Cluster:
    """The harness waits for the placement in PostgreSQL; each node reads it into memory at its next reload
    (every second with the test timers). Until then a node may not know a user created after it started, and
    refuses the user's sign-in; one reload period later both know everyone."""
    time.sleep(1.5)
    return cluster


def test_users_on_two_nodes_share_a_room_homed_on_one_of_them(binary: Path, tmp_path: Path) -> None:
    with start_cluster(binary, tmp_path, USERS) as cluster:
        settled(cluster)
        h = homes(cluster)
        assert h["alice"] == "a" and h["bob"] == "b", h
        # One room homed on each user's node: each is served there and reached from the other node.
        for owner_node in NODES:
            room = room_on(owner_node, f"team-{owner_node}-")

            async def scenario() -> None:
                async with clients(connect(cluster.a, "alice"), connect(cluster.b, "bob")) as (alice, bob):
                    for c in (alice, bob):
                        with_muc(c)
                    first, second = (alice, bob) if owner_node == "a" else (bob, alice)
                    await create(first, room, roomname="Team")
                    pres, _subject, occupants, _history = await join(second, "second", room)
                    assert 110 in codes(pres), pres
                    assert [p["from"].resource for p in occupants] == ["owner", "second"], occupants

                    alice.xmpp.send_message(mto=room, mbody="from node a", mtype="groupchat")
                    for c in (alice, bob):
                        who = "owner" if first is alice else "second"
                        msg = await groupchat_from(c, who, f"alice's message at {c.jid}")
                        assert msg["body"] == "from node a", msg
                    bob.xmpp.send_message(mto=room, mbody="from node b", mtype="groupchat")
                    for c in (alice, bob):
                        who = "owner" if first is bob else "second"
                        msg = await groupchat_from(c, who, f"bob's message at {c.jid}")
                        assert msg["body"] == "from node b", msg

                    # disco#info of the room answers across the nodes too.
                    disco = second.xmpp.plugin["xep_0030"]
                    info = await wait(disco.get_info(jid=room, local=False, timeout=WAIT), "room info")
                    assert ("conference", "text") in {(c, t) for c, t, _, _ in info["disco_info"]["identities"]}
                    # So does the service's disco#items: each node lists the room, whichever node serves it (the
                    # home told the other node before the messages above, on the same NATS subject).
                    for c in (alice, bob):
                        items = await wait(c.xmpp.plugin["xep_0030"].get_items(jid=JID(SERVICE), local=False,
                                                                               timeout=WAIT), "the service's rooms")
                        listed = {(str(j), name) for j, _node, name in items["disco_items"]["items"]}
                        assert (str(room), "Team") in listed, (c.jid, items)

            run(scenario)


def occupant_id(stanza) -> str | None:
    el = stanza.xml.find("{urn:xmpp:occupant-id:0}occupant-id")
    return None if el is None else el.get("id")


def test_a_persistent_room_survives_its_home_node_stopping(binary: Path, tmp_path: Path) -> None:
    with start_cluster(binary, tmp_path, USERS) as cluster:
        settled(cluster)
        a, b = cluster.a, cluster.b
        room = room_on("a", "kept-")

        async def scenario() -> None:
            async with clients(connect(b, "bob")) as (bob,):
                with_muc(bob)
                async with clients(connect(a, "alice")) as (alice,):
                    with_muc(alice)
                    await create(alice, room, roomname="Kept room", persistentroom="1", roomdesc="stays")
                    first, *_ = await join(bob, "bob", room)
                    alice.xmpp.send_message(mto=room, mbody="before the stop", mtype="groupchat")
                    msg = await groupchat_from(bob, "owner", "alice's message before the stop")
                    assert msg["body"] == "before the stop"
                    # Self-ping through bob's node reaches the room on node a: he is in it.
                    await wait(bob.xmpp.plugin["xep_0199"].send_ping(JID(f"{room}/bob"), timeout=WAIT),
                               "self-ping across the nodes")
                assert await asyncio.to_thread(a.stop) == 0, "node a exits cleanly on SIGTERM"
                await asyncio.to_thread(
                    cluster.wait_for, "alice served by b", lambda: homes(cluster).get("alice") == "b", 15)

                # XEP-0410: bob's client learns by self-ping that it is no longer in the room (now served by b,
                # read from PostgreSQL, without the occupants of node a's memory) and rejoins, through b.
                async def ping_refused() -> bool:
                    try:
                        await bob.xmpp.plugin["xep_0199"].send_ping(JID(f"{room}/bob"), timeout=WAIT)
                        return False
                    except IqError as e:
                        return e.condition == "not-acceptable"

                await wait_until(ping_refused, "the self-ping answered not-acceptable by node b")
                pres, _subject, _occupants, history = await join(bob, "bob", room, maxstanzas=5)
                assert 201 not in codes(pres), "the room was not created anew"
                assert [m["body"] for m in history] == ["before the stop"], history
                # Both nodes use one occupant-id key file, so bob keeps his XEP-0421 id across the move.
                assert occupant_id(pres) and occupant_id(pres) == occupant_id(first), (first, pres)
                disco = bob.xmpp.plugin["xep_0030"]
                info = await wait(disco.get_info(jid=room, local=False, timeout=WAIT), "room info")
                assert "muc_persistent" in info["disco_info"]["features"], info
                assert "Kept room" in {name for _, _, _, name in info["disco_info"]["identities"]}, info

                # Its owner, now served by b too, still owns it: the form shows what was set on node a.
                async with clients(connect(b, "alice")) as (alice,):
                    with_muc(alice)
                    await join(alice, "owner", room)
                    form = await wait(muc(alice).get_room_config(room, timeout=WAIT), "the configuration form")
                    values = form.get_values()
                    assert values["muc#roomconfig_roomname"] == "Kept room", values
                    assert values["muc#roomconfig_roomdesc"] == "stays", values
                    assert values["muc#roomconfig_persistentroom"] in (True, "1"), values
                    alice.xmpp.send_message(mto=room, mbody="after the stop", mtype="groupchat")
                    # The history bob got on rejoining is queued before it.
                    while (msg := await groupchat_from(bob, "owner", "alice's message after the stop"))["body"] \
                            == "before the stop":
                        pass
                    assert msg["body"] == "after the stop", msg

        run(scenario, timeout=120)


def test_a_room_follows_its_home_node_through_a_crash_and_the_fallback(binary: Path, tmp_path: Path) -> None:
    with start_cluster(binary, tmp_path, USERS, automatic_fallback=True) as cluster:
        settled(cluster)
        a, b = cluster.a, cluster.b
        room = room_on("a", "crash-")

        async def ping_refused(client) -> bool:
            try:
                await client.xmpp.plugin["xep_0199"].send_ping(JID(f"{room}/bob"), timeout=WAIT)
                return False
            except IqError as e:
                return e.condition == "not-acceptable"

        async def say(bob, body: str) -> None:
            bob.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
            while (await groupchat_from(bob, "bob", f"the echo of {body!r}"))["body"] != body:
                pass

        async def scenario() -> None:
            async with clients(connect(b, "bob")) as (bob,):
                with_muc(bob)
                async with clients(connect(a, "alice")) as (alice,):
                    with_muc(alice)
                    await create(alice, room, roomname="Crash room", persistentroom="1")
                    await join(bob, "bob", room)
                await asyncio.to_thread(a.kill)
                await asyncio.to_thread(
                    cluster.wait_for, "alice served by b", lambda: homes(cluster).get("alice") == "b", 30)
                # The room died with node a's memory; node b serves it from PostgreSQL, and bob rejoins there.
                await wait_until(lambda: ping_refused(bob), "bob's self-ping refused by node b", timeout=30)
                await join(bob, "bob", room)
                await say(bob, "said on b")

                # Node a comes back. What is said before the fallback is kept by b in PostgreSQL, after a read
                # the rooms at its start: a must read them again when it takes its rooms back.
                released = asyncio.get_running_loop().create_future()
                bob.xmpp.add_event_handler(
                    "muc::%s::presence" % room,
                    lambda p: released.done() or (332 in codes(p) and released.set_result(p)),
                )
                await asyncio.to_thread(a.start)
                await say(bob, "said while a was back")
                await asyncio.to_thread(
                    cluster.wait_for, "alice served by a again", lambda: homes(cluster).get("alice") == "a", 60)
                # Node b lets the room go: its occupants hear it shut down (332) and rejoin.
                pres = await wait(released, "node b letting the room go (332)")
                assert pres["type"] == "unavailable" and 110 in codes(pres), pres
                # Rejoining through b reaches the room on a again, with everything said on b.
                _pres, _subject, _occupants, history = await join(bob, "bob", room, maxstanzas=10)
                assert [m["body"] for m in history] == ["said on b", "said while a was back"], history
                await say(bob, "back on a")

        try:
            run(scenario, timeout=150)
        except BaseException:
            print("NODE B:\n" + b._stderr()[-6000:])
            print("NODE A:\n" + a._stderr()[-6000:])
            raise
