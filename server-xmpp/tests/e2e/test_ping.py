"""End-to-end XEP-0199 server pings: a silent session is pinged, and one that does not answer is
closed as dead, so its contacts see it go offline.

The servers here ping after 1 s of inbound silence and give 1 s for an answer (idle close at 3 s),
so a test sees several rounds in a few seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from conftest import USERS, Server, free_port, write_config
from xmpp import (
    DOMAIN,
    NS_STREAM,
    Client,
    RawStream,
    StreamSplitter,
    clients,
    connect,
    local_name,
    plain_auth,
    run,
    stream_error_condition,
    stream_header,
    wait,
)
from xmpp import make_mutual

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
NS_PING = "urn:xmpp:ping"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
PING_INTERVAL, PING_TIMEOUT, IDLE_TIMEOUT = 1.0, 1.0, 3.0
#: Scheduling slack on a busy two-core CI machine.
SLACK = 2.0


def ping_server(binary: Path, root: Path) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    srv = Server(binary=binary, root=root, port=free_port(), tls_port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        tls_port=srv.tls_port,
        xmpp=(
            f'ping_interval = "{int(PING_INTERVAL * 1000)}ms"',
            f'ping_timeout = "{int(PING_TIMEOUT * 1000)}ms"',
            f'idle_timeout = "{int(IDLE_TIMEOUT * 1000)}ms"',
        ),
    )
    for local, password in USERS.items():
        srv.add_user(local, password)
    return srv


def count_pings(client: Client) -> list[float]:
    """Records when the server's pings reach ``client`` (slixmpp's xep_0199 still answers them)."""
    seen: list[float] = []

    def inbound(stanza):
        if stanza.name == "iq" and stanza["type"] == "get" and stanza.xml.find(f"{{{NS_PING}}}ping") is not None:
            assert stanza["from"] == DOMAIN, stanza
            seen.append(time.monotonic())
        return stanza

    client.xmpp.add_filter("in", inbound)
    return seen


async def unavailable_from(client: Client, bare: str, timeout: float) -> None:
    async def get() -> None:
        while True:
            pres = await client.presences.get()
            if pres["type"] == "unavailable" and pres["from"].bare == bare:
                return

    await wait(get(), f"unavailable presence from {bare} at {client.jid}", timeout)


def test_a_client_that_answers_pings_stays_up_across_many_intervals(binary: Path, tmp_path: Path) -> None:
    srv = ping_server(binary, tmp_path / "srv")
    srv.start()
    try:
        async def scenario() -> None:
            async with clients(
                connect(srv, "alice", "quiet", direct_tls=True),
                connect(srv, "bob", "quiet"),
            ) as (alice, bob):
                pings = count_pings(alice), count_pings(bob)
                # Both stay silent far past the idle timeout; only their answers to pings are heard.
                await asyncio.sleep(IDLE_TIMEOUT + 3 * PING_INTERVAL)
                for client, seen in zip((alice, bob), pings):
                    assert not client.disconnected.is_set(), f"{client.jid} was disconnected"
                    assert len(seen) >= 3, f"{client.jid} was pinged {len(seen)} times"
                    gaps = [b - a for a, b in zip(seen, seen[1:])]
                    # Each ping comes about one interval after the last answer, never in a burst.
                    assert all(g > PING_INTERVAL * 0.5 for g in gaps), gaps
                text = f"e2e {uuid.uuid4()}"
                alice.send_message(f"{BOB}/quiet", text)
                assert (await bob.next_message("a message after the quiet spell"))["body"] == text
                await alice.ping_server()

        run(scenario)
    finally:
        srv.stop()


async def raw_sign_in(srv: Server, local: str, resource: str) -> RawStream:
    """Direct TLS, PLAIN, bind and initial presence by hand: a client whose silence we control."""
    raw = await RawStream.open_tls(srv)
    await raw.features()
    await raw.send(plain_auth(local, srv.users[local]))
    assert local_name(await raw.next_element("SASL success")) == "success"
    raw.splitter = StreamSplitter()
    await raw.send(stream_header())
    assert (await raw.next_element("post-auth features")).tag == f"{{{NS_STREAM}}}features"
    await raw.send(
        f"<iq type='set' id='b1'><bind xmlns='{NS_BIND}'><resource>{resource}</resource></bind></iq>".encode()
    )
    bound = await raw.next_element("the bind result")
    assert bound.get("type") == "result", bound
    await raw.send(b"<presence/>")
    return raw


def test_a_client_that_stops_answering_is_closed_and_goes_offline(binary: Path, tmp_path: Path) -> None:
    srv = ping_server(binary, tmp_path / "srv")
    srv.start()
    try:
        async def scenario() -> None:
            # Subscriptions first, with two slixmpp clients; then alice comes back as a raw client.
            async with clients(connect(srv, "alice", "setup"), connect(srv, "bob", "watch")) as (a0, bob):
                await make_mutual(a0, bob)
                await a0.disconnect()
                await unavailable_from(bob, ALICE, 10)

                raw = await raw_sign_in(srv, "alice", "gone")
                try:
                    await bob.presence_from(ALICE)
                    # From here alice says nothing, and does not answer the ping (she still reads, to
                    # see what the server sends).
                    silent_since = time.monotonic()
                    pinged = None
                    condition = None
                    while not raw.closed_by_server and not raw.eof:
                        try:
                            el = await raw.next_element("the server's ping and then its stream error",
                                                        timeout=PING_INTERVAL + PING_TIMEOUT + SLACK)
                        except AssertionError:
                            if raw.eof or raw.closed_by_server:
                                break
                            raise
                        if el.get("type") == "get" and el.find(f"{{{NS_PING}}}ping") is not None:
                            assert el.get("from") == DOMAIN and el.get("to") == f"{ALICE}/gone", el.attrib
                            assert el.get("id"), "a ping needs an id to be answered"
                            pinged = pinged or time.monotonic()
                        elif stream_error_condition(el):
                            condition = stream_error_condition(el)
                    closed_after = time.monotonic() - silent_since
                    assert pinged is not None, f"no ping before the close; received {raw.received!r}"
                    assert pinged - silent_since >= PING_INTERVAL * 0.5, "pinged before the interval"
                    assert condition == "connection-timeout", raw.received
                    assert closed_after <= PING_INTERVAL + PING_TIMEOUT + SLACK, closed_after
                    # The engine closed the session the normal way: bob sees alice go offline.
                    await unavailable_from(bob, ALICE, SLACK + 2)
                finally:
                    await raw.close()

        run(scenario)
    finally:
        srv.stop()


def test_a_client_that_answers_by_hand_or_with_an_error_stays_up(binary: Path, tmp_path: Path) -> None:
    """The answer may be a result or an error (a client without XEP-0199); either proves the client
    alive, and neither reaches the stanza translation (nothing comes back for it)."""
    srv = ping_server(binary, tmp_path / "srv")
    srv.start()
    try:
        async def scenario() -> None:
            raw = await raw_sign_in(srv, "carol", "manual")
            try:
                answered = 0
                start = time.monotonic()
                while time.monotonic() - start < IDLE_TIMEOUT + 2 * PING_INTERVAL:
                    el = await raw.next_element("a ping", timeout=PING_INTERVAL + SLACK)
                    assert stream_error_condition(el) is None, raw.received
                    if el.find(f"{{{NS_PING}}}ping") is None:
                        continue  # presence and the like
                    kind = "result" if answered % 2 == 0 else "error"
                    error = (
                        "<error type='cancel'><service-unavailable "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>" if kind == "error" else ""
                    )
                    await raw.send(
                        f"<iq type='{kind}' id='{el.get('id')}' to='{DOMAIN}'>{error}</iq>".encode()
                    )
                    answered += 1
                assert answered >= 3, answered
                assert not raw.eof and not raw.closed_by_server
            finally:
                await raw.close()

        run(scenario)
    finally:
        srv.stop()
