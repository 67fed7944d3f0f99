"""End-to-end In-Band Registration (XEP-0077) against `presenced serve`, with slixmpp's own plugin and its
`register` flow: with `[xmpp] registration = true` a new client creates its account before authenticating and
signs in with it, changes its password, and removes its account; a taken username gets <conflict/>, a second
account from the same address within `registration_interval` gets <resource-constraint/>; with the default
configuration the stream feature is not offered and a registration attempt ends the stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from conftest import USERS, Server, free_port, write_config
from xmpp import DOMAIN, WAIT, Client, make_client, run, start, wait

NS_FEATURE = "http://jabber.org/features/iq-register"


@pytest.fixture
def reg_server(binary: Path, tmp_path: Path):
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        xmpp=("registration = true", 'registration_interval = "1h"'),
    )
    for local, password in USERS.items():
        srv.add_user(local, password)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def registering(server: Server, local: str, password: str) -> tuple[Client, list[object], list[ET.Element]]:
    """A client that registers ``local`` with ``password`` when the server offers it, then signs in; returns it,
    what the registration ended with (True, or the IqError) and the stream features it saw."""
    client = make_client(server, local, password=password)
    client.xmpp.register_plugin("xep_0077")
    client.xmpp.plugin["xep_0077"].force_registration = True
    outcome: list[object] = []
    features: list[ET.Element] = []

    def seen(stanza):
        if stanza.name == "features":
            features.append(stanza.xml)
        return stanza

    client.xmpp.add_filter("in", seen)

    async def register(_form) -> None:
        iq = client.xmpp.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = client.xmpp.boundjid.user
        iq["register"]["password"] = password
        try:
            await iq.send(timeout=WAIT)
            outcome.append(True)
        except IqError as e:
            outcome.append(e)
            client.xmpp.disconnect()

    client.xmpp.add_event_handler("register", register)
    return client, outcome, features


async def sign_in(server: Server, local: str, password: str) -> Client:
    client = make_client(server, local, password=password)
    client.xmpp.register_plugin("xep_0077")
    await start(client, server)
    done = asyncio.ensure_future(asyncio.wait(
        [asyncio.ensure_future(client.session_started.wait()), asyncio.ensure_future(client.auth_failed.wait())],
        return_when=asyncio.FIRST_COMPLETED,
    ))
    await wait(done, f"sign-in of {local}")
    return client


def test_a_new_user_registers_changes_the_password_and_leaves(reg_server: Server) -> None:
    async def scenario() -> None:
        client, outcome, features = registering(reg_server, "newbie", "first-pass-1")
        await start(client, reg_server)
        await wait(client.session_started.wait(), "newbie's first session")
        assert outcome == [True], outcome
        # Offered after TLS, before authentication.
        assert any(f.find(f"{{{NS_FEATURE}}}register") is not None for f in features), features
        assert f"newbie@{DOMAIN}" in reg_server.list_users()
        await wait(client.xmpp.plugin["xep_0077"].change_password("second-pass-2", timeout=WAIT), "password change")
        client.xmpp.disconnect()
        await wait(client.disconnected.wait(), "newbie's disconnect")

        old = await sign_in(reg_server, "newbie", "first-pass-1")
        assert old.auth_failed.is_set() and not old.session_started.is_set()
        old.xmpp.disconnect()
        new = await sign_in(reg_server, "newbie", "second-pass-2")
        assert new.session_started.is_set()
        # Removal: the result, then the stream ends; the account is gone.
        await wait(new.xmpp.plugin["xep_0077"].cancel_registration(timeout=WAIT), "account removal")
        await wait(new.disconnected.wait(), "the stream to end after the removal")
        assert f"newbie@{DOMAIN}" not in reg_server.list_users()
        gone = await sign_in(reg_server, "newbie", "second-pass-2")
        assert gone.auth_failed.is_set()
        gone.xmpp.disconnect()

    run(scenario)


def test_taken_names_conflict_and_registrations_are_rate_limited(reg_server: Server) -> None:
    async def scenario() -> None:
        taken, outcome, _ = registering(reg_server, "alice", "whatever-1")
        await start(taken, reg_server)
        await wait(taken.disconnected.wait(), "the refused registration")
        assert len(outcome) == 1 and isinstance(outcome[0], IqError), outcome
        assert outcome[0].iq["error"]["condition"] == "conflict", outcome[0].iq
        # alice's password is untouched.
        alice = await sign_in(reg_server, "alice", USERS["alice"])
        assert alice.session_started.is_set()
        alice.xmpp.disconnect()

        first, outcome, _ = registering(reg_server, "first", "pass-one-1")
        await start(first, reg_server)
        await wait(first.session_started.wait(), "first's session")
        assert outcome == [True]
        first.xmpp.disconnect()
        second, outcome, _ = registering(reg_server, "second", "pass-two-2")
        await start(second, reg_server)
        await wait(second.disconnected.wait(), "the rate-limited registration")
        assert len(outcome) == 1 and isinstance(outcome[0], IqError), outcome
        assert outcome[0].iq["error"]["condition"] == "resource-constraint", outcome[0].iq
        assert f"second@{DOMAIN}" not in reg_server.list_users()

    run(scenario)


def test_default_config_neither_offers_nor_serves_registration(server: Server) -> None:
    async def scenario() -> None:
        client, outcome, features = registering(server, "sneaky", "pass-3-xyz")
        await start(client, server)
        await wait(client.disconnected.wait(), "the stream to end")
        assert not client.session_started.is_set()
        assert features and all(f.find(f"{{{NS_FEATURE}}}register") is None for f in features), features
        assert outcome == [], outcome
        assert f"sneaky@{DOMAIN}" not in server.list_users()
        # Signed in, the namespace is not served either.
        alice = await sign_in(server, "alice", USERS["alice"])
        try:
            await wait(alice.xmpp.plugin["xep_0030"].get_info(jid=DOMAIN, local=False, timeout=WAIT), "disco")
            iq = alice.xmpp.Iq()
            iq["type"] = "get"
            iq.append(ET.fromstring("<query xmlns='jabber:iq:register'/>"))
            try:
                await iq.send(timeout=WAIT)
                raise AssertionError("registration served with the default config")
            except IqError as e:
                assert e.iq["error"]["condition"] == "service-unavailable", e.iq
        finally:
            alice.xmpp.disconnect()

    run(scenario)
