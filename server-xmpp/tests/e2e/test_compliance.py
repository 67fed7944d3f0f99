"""Compliance archiving (``[compliance]``) against a PostgreSQL the test starts: every message alice sends bob,
online or offline, is a row of ``compliance_messages`` with the right columns. In ``required`` mode, with
PostgreSQL stopped, alice's message bounces with a ``wait`` error and bob receives nothing; once PostgreSQL is
back, messages flow and are archived again. In ``best_effort`` mode a stopped PostgreSQL stops nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from conftest import Server, free_port, write_config
from services import Postgres
from xmpp import DOMAIN, Client, clients, connect, run, wait

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
COLUMNS = "extract(epoch FROM sent_at)::bigint, sender, array_to_string(recipients, ','), " \
          "coalesce(room, '-'), coalesce(message_id, '-'), kind, body"


@pytest.fixture
def postgres():
    with Postgres() as pg:
        yield pg


def serve(binary: Path, tmp_path: Path, url: str, mode: str) -> Server:
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        tables=f'[compliance]\nenabled = true\nurl = "{url}"\nmode = "{mode}"\npool = 2\n',
    )
    srv.add_user("alice", "alice-secret-1")
    srv.add_user("bob", "bob-secret-2")
    return srv


def send(client: Client, to: str, body: str, mid: str) -> None:
    m = client.xmpp.make_message(mto=to, mbody=body, mtype="chat")
    m["id"] = mid
    m.send()


def rows(pg: Postgres, db: str) -> list[list[str]]:
    out = pg.psql(db, f"SELECT {COLUMNS} FROM compliance_messages ORDER BY seq").stdout
    return [line.split("|") for line in out.splitlines() if line]


def wait_rows(pg: Postgres, db: str, n: int) -> list[list[str]]:
    found: list[list[str]] = []
    for _ in range(100):
        found = rows(pg, db)
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {n} compliance rows, found {found}")


def message_errors(client: Client) -> asyncio.Queue:
    """Message errors: slixmpp reports a bounce without a <body/> only as 'message_error'."""
    q: asyncio.Queue = asyncio.Queue()
    client.xmpp.add_event_handler("message_error", q.put_nowait)
    return q


def test_messages_online_and_offline_are_archived_and_required_mode_holds_back_while_postgres_is_down(
    binary: Path, tmp_path: Path, postgres: Postgres
) -> None:
    db = f"archive_{uuid.uuid4().hex[:8]}"
    url = postgres.url(db)
    srv = serve(binary, tmp_path, url, "required")
    tag = uuid.uuid4().hex[:8]
    started = int(time.time())
    srv.start()
    try:
        # Bob offline: the message is held, and archived.
        async def offline() -> str:
            async with clients(connect(srv, "alice")) as (alice,):
                send(alice, BOB, f"offline {tag}", "c1")
                await alice.ping_server()
                return str(alice.jid)

        alice_jid = run(offline)

        # Bob online: he gets the held one, then a live one; both archived once.
        async def online() -> None:
            async with clients(connect(srv, "bob"), connect(srv, "alice")) as (bob, alice):
                held = await bob.next_message("the held message")
                assert held["body"] == f"offline {tag}"
                send(alice, BOB, f"online {tag}", "c2")
                live = await bob.next_message("the live message")
                assert live["body"] == f"online {tag}"

        run(online)
        got = wait_rows(postgres, db, 2)
        assert len(got) == 2, got
        for row, (mid, body) in zip(got, [("c1", f"offline {tag}"), ("c2", f"online {tag}")]):
            sent_at, sender, recipients, room, message_id, kind, text = row
            assert started - 5 <= int(sent_at) <= int(time.time()) + 5, row
            assert sender.startswith(f"{ALICE}/"), row
            assert recipients == BOB, row
            assert room == "-", row
            assert (message_id, kind, text) == (mid, "chat", body), row
        assert got[0][1] == alice_jid

        # PostgreSQL goes away: alice's message bounces with a wait error and bob gets nothing.
        async def outage() -> None:
            async with clients(connect(srv, "bob"), connect(srv, "alice")) as (bob, alice):
                bounces = message_errors(alice)
                postgres.stop()
                try:
                    send(alice, BOB, f"unarchived {tag}", "c3")
                    err = await wait(bounces.get(), "the bounce of the message that could not be archived", 30)
                    assert err["error"]["type"] == "wait", err
                    assert err["error"]["condition"] == "internal-server-error", err
                    assert err["id"] == "c3", err
                finally:
                    await asyncio.get_running_loop().run_in_executor(None, postgres.start)
                # Back: the next message flows; it is the first bob sees since the outage began.
                send(alice, BOB, f"after {tag}", "c4")
                msg = await bob.next_message("the message after PostgreSQL came back")
                assert msg["body"] == f"after {tag}", msg
                assert bob.messages.empty(), "nothing else reached bob"

        run(outage, timeout=120)
        got = wait_rows(postgres, db, 3)
        assert [r[6] for r in got] == [f"offline {tag}", f"online {tag}", f"after {tag}"], got
    finally:
        srv.stop()


def test_best_effort_mode_delivers_while_postgres_is_down(
    binary: Path, tmp_path: Path, postgres: Postgres
) -> None:
    db = f"archive_{uuid.uuid4().hex[:8]}"
    url = postgres.url(db)
    srv = serve(binary, tmp_path, url, "best_effort")
    tag = uuid.uuid4().hex[:8]
    srv.start()
    try:
        async def scenario() -> None:
            async with clients(connect(srv, "bob"), connect(srv, "alice")) as (bob, alice):
                bounces = message_errors(alice)
                send(alice, BOB, f"first {tag}", "b1")
                assert (await bob.next_message("the first message"))["body"] == f"first {tag}"
                await asyncio.get_running_loop().run_in_executor(None, wait_rows, postgres, db, 1)
                postgres.stop()
                try:
                    send(alice, BOB, f"during {tag}", "b2")
                    assert (await bob.next_message("the message while PostgreSQL is down"))["body"] == f"during {tag}"
                    await alice.ping_server()
                    assert bounces.empty(), "best effort: the sender hears of no failure"
                finally:
                    await asyncio.get_running_loop().run_in_executor(None, postgres.start)
                send(alice, BOB, f"after {tag}", "b3")
                assert (await bob.next_message("the message after"))["body"] == f"after {tag}"

        run(scenario, timeout=120)
        # The message written while PostgreSQL was down is lost to the archive (and counted); the others are there.
        got = wait_rows(postgres, db, 2)
        assert [r[6] for r in got] == [f"first {tag}", f"after {tag}"], got
    finally:
        srv.stop()
