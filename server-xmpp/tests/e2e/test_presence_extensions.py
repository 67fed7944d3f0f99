"""End-to-end presence extensions: what a client puts in its presence besides show, status and priority (entity
capabilities, XEP-0115; an avatar hash, XEP-0153) reaches its contacts, also in the presence they get when they
sign in later (the server answers their probe with what it last broadcast)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conftest import Server
from xmpp import DOMAIN, clients, connect, make_mutual, run

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
HASH = "01b87fcd030b72895ff8e88db57ec525450f000d"


def decorated_presence(client) -> None:
    pres = client.xmpp.make_presence(pshow="away", pstatus="with caps")
    pres.append(ET.fromstring(
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/client' "
        "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>"))
    pres.append(ET.fromstring(f"<x xmlns='vcard-temp:x:update'><photo>{HASH}</photo></x>"))
    pres.send()


def extensions_of(pres) -> tuple[str | None, str | None]:
    caps = pres.xml.find("{http://jabber.org/protocol/caps}c")
    photo = pres.xml.find("{vcard-temp:x:update}x/{vcard-temp:x:update}photo")
    return (caps.get("ver") if caps is not None else None, photo.text if photo is not None else None)


def test_caps_and_avatar_hash_reach_contacts_live_and_on_probe(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob")) as (alice, bob):
            await make_mutual(alice, bob)
            decorated_presence(bob)
            pres = await alice.presence_from(BOB, "away")
            assert extensions_of(pres) == ("QgayPKawpkPSDYmwT/WM94uAlu0=", HASH), pres
            assert pres["status"] == "with caps"

            # A second device of alice signs in later: the probe's answer carries the same extensions.
            async with clients(connect(server, "alice", "tablet")) as (tablet,):
                pres = await tablet.presence_from(BOB, "away")
                assert extensions_of(pres) == ("QgayPKawpkPSDYmwT/WM94uAlu0=", HASH), pres

    run(scenario)
