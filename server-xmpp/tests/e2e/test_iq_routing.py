"""End-to-end IQ routing between clients (RFC 6120 §8.5.3) with slixmpp's xep_0199, xep_0030 and xep_0092
plugins: a request to another client's full JID reaches that client and its answer comes back; a request to a
resource nobody holds is answered by the server with service-unavailable."""

from __future__ import annotations

from slixmpp import JID
from slixmpp.exceptions import IqError

from conftest import Server
from xmpp import DOMAIN, WAIT, clients, connect, run, wait

BOB = f"bob@{DOMAIN}"


def test_requests_to_another_clients_full_jid_are_answered_by_that_client(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob", "laptop")) as (alice, bob):
            bob.xmpp.plugin["xep_0030"].add_feature("urn:example:bob-feature")
            alice.xmpp.register_plugin("xep_0092")

            rtt = await wait(
                alice.xmpp.plugin["xep_0199"].ping(JID(f"{BOB}/laptop"), timeout=WAIT), "a ping to bob's client"
            )
            assert rtt is not None and rtt >= 0
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(f"{BOB}/laptop"), timeout=WAIT),
                "disco#info of bob's client",
            )
            assert "urn:example:bob-feature" in info["disco_info"]["features"], info
            version = await wait(
                alice.xmpp.plugin["xep_0092"].get_version(JID(f"{BOB}/laptop"), timeout=WAIT),
                "bob's client version",
            )
            # bob's client answers (slixmpp's own name), not the server ("presenced").
            assert version["software_version"]["name"] == "Slixmpp", version
            assert version["from"] == JID(f"{BOB}/laptop"), version

            try:
                await wait(
                    alice.xmpp.plugin["xep_0030"].get_info(jid=JID(f"{BOB}/nowhere"), timeout=WAIT),
                    "disco#info of a resource nobody holds",
                )
            except IqError as e:
                assert e.iq["error"]["condition"] == "service-unavailable", e.iq
                assert e.iq["from"] == JID(f"{BOB}/nowhere"), e.iq
            else:
                raise AssertionError("a request to a missing resource was answered")

    run(scenario)
