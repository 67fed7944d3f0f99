"""End-to-end entity capabilities of the server (XEP-0115) against `presenced serve`: slixmpp's own caps plugin
reads the `<c/>` stream feature, asks the server's disco#info for `node#ver` and accepts the answer only when its
hash is the advertised `ver`."""

from __future__ import annotations

from slixmpp import JID
from slixmpp.exceptions import IqError

from conftest import Server
from xmpp import DOMAIN, WAIT, clients, make_client, run, start, wait, wait_until

NODE = "https://presenced.example/caps"


def test_the_server_caps_ver_is_verified_by_slixmpp(server: Server) -> None:
    async def scenario() -> None:
        client = make_client(server, "alice", "caps")
        for plugin in ("xep_0004", "xep_0115"):
            client.xmpp.register_plugin(plugin)
        caps = client.xmpp.plugin["xep_0115"]

        async def connected():
            await start(client, server)
            await wait(client.session_started.wait(), "session start")
            return client

        async with clients(connected()) as (alice,):
            assert "caps" in alice.xmpp.features

            async def verified() -> bool:
                return bool(await caps.get_verstring(JID(DOMAIN)))

            # slixmpp assigns the ver to the server only after it hashed the node#ver answer to that same ver.
            await wait_until(verified, "slixmpp verified the server's caps")
            ver = await caps.get_verstring(JID(DOMAIN))
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(JID(DOMAIN), node=f"{NODE}#{ver}", timeout=WAIT),
                "disco#info of node#ver",
            )
            assert info["disco_info"]["node"] == f"{NODE}#{ver}"
            assert ("server", "im", None, "presenced") in info["disco_info"]["identities"]
            try:
                await wait(
                    alice.xmpp.plugin["xep_0030"].get_info(JID(DOMAIN), node=f"{NODE}#stale", timeout=WAIT),
                    "disco#info of a stale node#ver",
                )
                raise AssertionError("a stale node#ver was answered")
            except IqError as e:
                assert e.condition == "item-not-found"

    run(scenario)
