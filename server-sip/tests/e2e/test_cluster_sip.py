"""SIP on a two-node cluster: PostgreSQL shared by both nodes, NATS between them (the XMPP suite's harness,
server-xmpp/tests/e2e/cluster.py), sipp as the phones and slixmpp as the XMPP clients.

With balanced placement alice is served by node a and bob by node b. A request sent to the node that does not
serve the user it is about (the sender for REGISTER/PUBLISH/MESSAGE, the watched user for SUBSCRIBE) gets
`302 Moved Temporarily` with a Contact naming the serving node's SIP address; sent there, it is served: a
watcher on one node sees the presence its contact PUBLISHed on the other, and MESSAGEs cross between a phone
registered on one node and an XMPP client on the other (over NATS).
"""

from __future__ import annotations

import asyncio
import re
from contextlib import contextmanager
from pathlib import Path

from cluster import Cluster, start_cluster
from conftest import SIP_READY_TIMEOUT, USERS, SippFactory, sip_options
from sipp import SippResult, expect_ok
from test_cluster import befriend, homes
from test_interop import Watcher, in_thread, sipp_ok, unique
from xmpp import clients, connect, run

ALICE, BOB = "alice@localhost", "bob@localhost"
AWAY = "<rpid:away/>"


@contextmanager
def sip_cluster(binary: Path, tmp_path: Path):
    """The running cluster (both SIP listeners answering) and a sipp factory for each node."""
    with start_cluster(binary, tmp_path / "cluster", USERS) as cluster:
        h = homes(cluster)
        assert h == {"alice": "a", "bob": "b", "carol": "a", "dave": "b"}, h
        for node in (cluster.a, cluster.b):
            cluster.wait_for(f"node {node.name} answering OPTIONS on its SIP port",
                             lambda: sip_options(node.sip_port), timeout=SIP_READY_TIMEOUT)
        on_a, on_b = SippFactory(tmp_path / "sipp-a"), SippFactory(tmp_path / "sipp-b")
        on_a.port, on_b.port = cluster.a.sip_port, cluster.b.sip_port
        try:
            yield cluster, on_a, on_b
        finally:
            on_a.cleanup()
            on_b.cleanup()


async def moved(factory: SippFactory, user: str, method: str, home, target: str | None = None) -> SippResult:
    """``user``'s REGISTER, or SUBSCRIBE to ``target``, sent to a node that does not serve the user it is about
    (``target`` for a SUBSCRIBE, ``user`` for a REGISTER): a 302 whose Contact is sip:<that user>@<home's SIP
    address> (the address the node advertises: `advertise_sip` of cluster.py)."""
    if method == "SUBSCRIBE":
        run_, about = factory("moved_subscribe", user, keys={"target": target}), target
    else:
        run_, about = factory("moved_register", user), user
    result = await sipp_ok(run_)
    assert [r.status for r in result.responses(method)] == [401, 302], result
    redirect = result.responses(method)[-1]
    contacts = [c for v in redirect.header_all("contact") for c in re.findall(r"<([^>]+)>", v)]
    assert contacts == [f"sip:{about}@127.0.0.1:{home.sip_port}"], (
        f"the 302 to {user}'s {method} must name {about} at node {home.name}'s SIP address:\n{redirect}"
    )
    return result


def test_watchers_on_either_node_see_presence_published_on_the_other(binary: Path, tmp_path: Path) -> None:
    """alice (node a) and bob (node b) are mutual contacts. Each phone registers and PUBLISHes (open, a note)
    on its own node. alice's SUBSCRIBE to bob sent to node a is redirected to node b, and bob's to alice sent
    to node b to node a; sent there, each watch gets NOTIFYs with the other's PIDF (open, the note), and a
    later publication (away, a new note) reaches the watcher on the other node too. A SUBSCRIBE to a user
    without an account gets 404."""
    with sip_cluster(binary, tmp_path) as (cluster, on_a, on_b):

        async def scenario() -> None:
            async with clients(connect(cluster.a, "alice"), connect(cluster.b, "bob")) as (alice, bob):
                await befriend(alice, bob)
            # From here on only the phones speak for alice and bob.
            await sipp_ok(on_a("interop_register", "alice"))
            await sipp_ok(on_b("interop_register", "bob"))
            notes = {"alice": unique("alice's desk phone on node a:"), "bob": unique("bob's desk phone on node b:")}
            await sipp_ok(on_a("interop_publish", "alice", keys={"basic": "open", "activities": "", "note": notes["alice"]}))
            await sipp_ok(on_b("interop_publish", "bob", keys={"basic": "open", "activities": "", "note": notes["bob"]}))

            # Each SUBSCRIBE goes to the node of the watched user.
            await moved(on_a, "alice", "SUBSCRIBE", cluster.b, "bob")
            await moved(on_b, "bob", "SUBSCRIBE", cluster.a, "alice")
            alice_watches_bob = await Watcher(on_b, "alice", "bob").start()
            bob_watches_alice = await Watcher(on_a, "bob", "alice").start()
            for watch, target in ((alice_watches_bob, "bob"), (bob_watches_alice, "alice")):
                doc = await watch.expect(f"{target}'s publication", basic="open", note=notes[target])
                assert doc["entity"] == f"sip:{target}@localhost", doc

            # A newer publication on bob's node reaches alice's watch; alice's, bob's.
            away = {u: unique(f"{u} stepped out:") for u in ("alice", "bob")}
            await sipp_ok(on_b("interop_publish", "bob", keys={"basic": "open", "activities": AWAY, "note": away["bob"]}))
            await sipp_ok(on_a("interop_publish", "alice", keys={"basic": "open", "activities": AWAY, "note": away["alice"]}))
            await alice_watches_bob.expect("bob away", basic="open", activities=("away",), note=away["bob"])
            await bob_watches_alice.expect("alice away", basic="open", activities=("away",), note=away["alice"])

            for watch in await asyncio.gather(alice_watches_bob.finish(), bob_watches_alice.finish()):
                final = watch.received("NOTIFY")[-1]
                assert final.header("subscription-state").startswith("terminated"), final

            # Nobody serves a user without an account, and no node would: 404, not a 503 to retry forever.
            unknown = await sipp_ok(on_a("subscribe_unknown", "alice", keys={"target": "nobody"}))
            assert [r.status for r in unknown.responses("SUBSCRIBE")] == [401, 404], unknown

        run(scenario, timeout=120)


def test_messages_cross_nodes_and_requests_are_sent_home(binary: Path, tmp_path: Path) -> None:
    """alice's phone, registered on node a, sends bob a MESSAGE; bob's XMPP client on node b gets it. bob
    answers from XMPP; alice's phone gets a SIP MESSAGE from node a. bob's REGISTER sent to node a is
    redirected to node b."""
    with sip_cluster(binary, tmp_path) as (cluster, on_a, on_b):

        async def scenario() -> None:
            async with clients(connect(cluster.b, "bob")) as (bob,):
                await bob.ping_server()
                phone = on_a("interop_message_receive", "alice", flag="registered",
                             ooc="interop_message_receive_ooc", timeout=40)
                phone.start()
                await in_thread(phone.wait_flag, "registered")

                text = unique("Hello bob on node b, alice's phone on node a:")
                sent = await sipp_ok(on_a("interop_message_send", "alice", keys={"target": "bob", "text": text}))
                assert [r.status for r in sent.responses("MESSAGE")] == [401, 200], sent
                msg = await bob.next_message("alice's SIP MESSAGE via NATS")
                assert msg["body"].strip() == text and msg["from"].bare == ALICE, msg

                reply = unique("Hello alice's phone, bob on XMPP on node b:")
                bob.send_message(ALICE, reply)
                result = await in_thread(phone.wait)
                expect_ok(result)
                got = result.received("MESSAGE")
                assert [m.body.strip() for m in got] == [reply], f"alice's phone:\n{result}"
                assert "sip:bob@localhost" in (got[0].header("from") or ""), got[0]
                assert "sip:alice@localhost" in (got[0].header("to") or ""), got[0]

                await moved(on_a, "bob", "REGISTER", cluster.b)
                await bob.ping_server()

        run(scenario, timeout=120)



def test_a_message_sent_to_the_wrong_node_follows_the_redirect(binary: Path, tmp_path: Path) -> None:
    """bob's phone sends alice (XMPP, node a) a MESSAGE at node a, which does not serve bob: 302 to node b.
    The phone sends the MESSAGE again to the Contact of the 302 (its Request-URI, RFC 3261 §8.1.3.4): node b
    takes it from bob and alice gets it over NATS -- the redirect keeps the recipient."""
    with sip_cluster(binary, tmp_path) as (cluster, on_a, on_b):

        async def scenario() -> None:
            async with clients(connect(cluster.a, "alice"), connect(cluster.b, "bob")) as (alice, bob):
                await alice.ping_server()
                text = unique("Hello alice, bob's phone via node a:")
                sent = await sipp_ok(on_a("message_follow_redirect", "bob", keys={"target": "alice", "text": text}))
                assert [r.status for r in sent.responses("MESSAGE")] == [401, 302, 401, 200], sent
                redirect = sent.responses("MESSAGE")[1]
                assert [c for v in redirect.header_all("contact") for c in re.findall(r"<([^>]+)>", v)] == [
                    f"sip:alice@127.0.0.1:{cluster.b.sip_port}"
                ], f"the 302 must keep the recipient and name node b:\n{redirect}"
                msg = await alice.next_message("bob's redirected MESSAGE")
                assert msg["body"].strip() == text and msg["from"].bare == BOB, msg
                await bob.ping_server()
                assert bob.messages.empty(), f"bob got his own message: {bob.messages.get_nowait()}"

        run(scenario, timeout=120)
