"""End-to-end External Service Discovery (XEP-0215) against `presenced serve`: the configured STUN and TURN
servers are listed (all, or by type), with fixed credentials or with time-limited ones made from a shared
secret as the TURN REST API describes (checked here with Python's own HMAC-SHA1), fresh credentials are given for
one service, and with no services configured the feature is neither advertised nor served.

slixmpp 1.17 has no XEP-0215 plugin, so the requests are built as plain IQs of slixmpp clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from slixmpp import JID
from slixmpp.exceptions import IqError

from conftest import USERS, Server, free_port, write_config
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

NS = "urn:xmpp:extdisco:2"
SECRET = "shared-with-coturn"

SERVICES = f"""
[[xmpp.external_services]]
type = "stun"
host = "stun.example.com"
port = 3478
transport = "udp"

[[xmpp.external_services]]
type = "turn"
host = "turn.example.com"
port = 3478
transport = "udp"
username = "fixed-user"
password = "fixed-pass"

[[xmpp.external_services]]
type = "turns"
host = "turn.example.com"
port = 5349
transport = "tcp"
secret = "{SECRET}"
ttl = "1h"
"""


@pytest.fixture
def extdisco_server(binary: Path, tmp_path: Path):
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    # The [[xmpp.external_services]] arrays belong to [xmpp], so they follow its other keys.
    write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port)
    text = srv.config.read_text().replace("\n[http]", SERVICES + "\n[http]", 1)
    srv.config.write_text(text)
    for local, password in USERS.items():
        srv.add_user(local, password)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def ask(client: Client, payload: str):
    iq = client.xmpp.make_iq_get(ito=JID(DOMAIN))
    iq.append(ET.fromstring(payload))
    result = await wait(iq.send(timeout=WAIT), payload)
    found = result.xml.find(f"{{{NS}}}services")
    return found if found is not None else result.xml.find(f"{{{NS}}}credentials")


def services(el) -> list[dict[str, str]]:
    return [dict(s.attrib) for s in el.findall(f"{{{NS}}}service")]


def test_configured_services_are_listed_with_credentials(extdisco_server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(extdisco_server, "alice")) as (alice,):
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(DOMAIN), local=False, timeout=WAIT),
                "the server's disco#info",
            )
            assert NS in info["disco_info"]["features"]
            listed = services(await ask(alice, f"<services xmlns='{NS}'/>"))
            assert [(s["type"], s["host"], s["port"]) for s in listed] == [
                ("stun", "stun.example.com", "3478"),
                ("turn", "turn.example.com", "3478"),
                ("turns", "turn.example.com", "5349"),
            ], listed
            stun, turn, turns = listed
            assert "username" not in stun and "restricted" not in stun, stun
            assert (turn["username"], turn["password"], turn["transport"]) == ("fixed-user", "fixed-pass", "udp")
            # Time-limited: "<expiry>:<user>", the password the HMAC-SHA1 of it under the shared secret.
            expiry, user = turns["username"].split(":", 1)
            assert user == f"alice@{DOMAIN}"
            assert 3500 < int(expiry) - time.time() <= 3600, turns
            expected = base64.b64encode(hmac.new(SECRET.encode(), turns["username"].encode(), hashlib.sha1).digest())
            assert turns["password"] == expected.decode(), turns
            assert turns["restricted"] == "1" and turns["expires"], turns
            # By type.
            only_turn = services(await ask(alice, f"<services xmlns='{NS}' type='turn'/>"))
            assert [s["port"] for s in only_turn] == ["3478"] and only_turn[0]["type"] == "turn"
            # Credentials for one service (§3.3).
            creds = services(await ask(
                alice, f"<credentials xmlns='{NS}'><service type='turns' host='turn.example.com'/></credentials>"
            ))
            assert len(creds) == 1 and creds[0]["port"] == "5349" and creds[0]["username"].endswith(f":alice@{DOMAIN}")
            try:
                await ask(alice, f"<credentials xmlns='{NS}'><service type='turn' host='nowhere'/></credentials>")
                raise AssertionError("credentials for an unknown service")
            except IqError as e:
                assert e.iq["error"]["condition"] == "item-not-found", e.iq

    run(scenario)


def test_without_services_extdisco_is_neither_advertised_nor_served(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(DOMAIN), local=False, timeout=WAIT),
                "the server's disco#info",
            )
            assert NS not in info["disco_info"]["features"]
            try:
                await ask(alice, f"<services xmlns='{NS}'/>")
                raise AssertionError("services served without any configured")
            except IqError as e:
                assert e.iq["error"]["condition"] == "service-unavailable", e.iq

    run(scenario)
