"""presenced on the PostgreSQL store (``[store] kind = "postgres"``): accounts made with the CLI, a message
held for an offline user, and a restart with the data directory wiped, after which the message is still
delivered: the stored state lives in PostgreSQL, not in the node."""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest

from conftest import Server, free_port, write_config
from services import Nats, Postgres, port_accepts
from xmpp import DOMAIN, clients, connect, run

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


@pytest.fixture
def postgres():
    with Postgres() as pg:
        yield pg


def test_offline_message_is_kept_in_postgres_across_a_restart(
    binary: Path, tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.url("presenced")
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        tables=f'[store]\nkind = "postgres"\nurl = "{url}"\npool = 2\n',
    )
    srv.add_user("alice", "alice-secret-1")
    srv.add_user("bob", "bob-secret-2")
    assert srv.list_users() == [ALICE, BOB]
    # The accounts are rows an operator can read.
    assert postgres.psql("presenced", "SELECT jid FROM accounts ORDER BY jid").stdout.split() == [ALICE, BOB]

    text = f"held in postgres {uuid.uuid4()}"
    srv.start()
    try:
        async def send() -> None:
            async with clients(connect(srv, "alice")) as (alice,):
                alice.send_message(BOB, text)
                # Barrier: a later stanza of the same session was answered, so the message was handled.
                await alice.ping_server()

        run(send)
        held = 0
        for _ in range(50):
            held = int(postgres.psql("presenced", f"SELECT count(*) FROM offline WHERE owner = '{BOB}'").stdout)
            if held:
                break
            time.sleep(0.1)
        assert held == 1, "the message for offline bob is a row in PostgreSQL"
    finally:
        srv.stop()

    # Nothing of the store is on the node: wipe its data directory (TLS material included) and start again.
    assert not (srv.data_dir / "presenced.redb").exists()
    shutil.rmtree(srv.data_dir)
    srv.start()
    try:
        async def receive() -> None:
            async with clients(connect(srv, "bob")) as (bob,):
                msg = await bob.next_message("the held message after the restart")
                assert msg["body"] == text
                assert msg["from"].bare == ALICE

        run(receive, timeout=120)
    finally:
        srv.stop()


def test_nats_service_starts_and_stops() -> None:
    """The NATS harness the cluster suites use: listening while open, gone after."""
    with Nats() as nats:
        port = nats.port
        assert nats.url == f"nats://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            assert s.recv(4096).startswith(b"INFO "), "NATS greets with INFO"
    assert not port_accepts(port)
