"""End-to-end tests of presenced's SIP service, driven by the third-party client SIPp.

Each test starts a fresh server (``server`` fixtures, conftest.py) and runs sipp scenarios from
``scenarios/`` against it (runner: sipp.py). sipp checks what it can itself (``<ereg
check_it="true">`` on headers and bodies, the expected response codes); the tests then check the
message trace sipp wrote (every SIP message it sent and received) for what a regular expression
cannot say well (PIDF structure, entity-tags that must differ, bindings that must be gone).
Malformed and over-size requests are sent from a raw Python socket, since sipp only sends
well-formed SIP.

Transports: UDP and TCP on the same port; most tests run over both.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from conftest import USERS
from sipp import SippResult, expect_ok

TRANSPORTS = ["udp", "tcp"]
OTHER = {"udp": "tcp", "tcp": "udp"}

NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
NS_RPID = "urn:ietf:params:xml:ns:pidf:rpid"
NS_WINFO = "urn:ietf:params:xml:ns:watcherinfo"

# The <note> a watcher sees while alice is on the phone: presence composition (presence-core
# compose, rule 5) shows this system text then, not the publication's own note.
PHONE_NOTE = "On the phone"
RAW_TIMEOUT = 5.0  # seconds a raw-socket test waits for an answer

transports = pytest.mark.parametrize("transport", TRANSPORTS)


# -- helpers -----------------------------------------------------------------------------------


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def pidf(body: str) -> dict:
    """The parts of a PIDF document the tests look at."""
    try:
        root = ET.fromstring(body.strip().encode())
    except ET.ParseError as e:
        raise AssertionError(f"NOTIFY body is not well-formed XML ({e}):\n{body}") from None
    assert root.tag == f"{{{NS_PIDF}}}presence", f"not a PIDF <presence> document:\n{body}"
    return {
        "entity": root.get("entity"),
        "basic": [b.text.strip() for b in root.iter(f"{{{NS_PIDF}}}basic") if b.text],
        # RPID activities inside a data-model <person> (RFC 4479, RFC 4480)
        "activities": [
            local(a.tag)
            for person in root.iter(f"{{{NS_DM}}}person")
            for acts in person.iter(f"{{{NS_RPID}}}activities")
            for a in acts
        ],
        "notes": [(n.text or "").strip() for n in root.iter() if local(n.tag) == "note"],
    }


def notifies(run: SippResult) -> list:
    return run.received("NOTIFY")


def tag_of(header: str | None) -> str | None:
    m = re.search(r";\s*tag=([^;>\s]+)", header or "")
    return m.group(1) if m else None


def run_port(run: SippResult) -> int:
    """The local port a sipp run used (its -p)."""
    return int(run.cmd[run.cmd.index("-p") + 1])


def contact_uris(msg) -> list[str]:
    """The URIs of every Contact of a message (several per header allowed)."""
    out = []
    for value in msg.header_all("contact"):
        out += re.findall(r"<([^>]+)>", value)
    return out


def raw_request(port: int, transport: str, data: bytes, *, head_first: int | None = None) -> str:
    """Sends raw bytes to the server and returns its first answer (decoded), "" if none came
    within RAW_TIMEOUT. With ``head_first`` over TCP, the first ``head_first`` bytes go first and
    the rest only if the server has not answered within a second (a server may refuse an
    over-size message from its Content-Length alone)."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(RAW_TIMEOUT)
        if transport == "udp":
            s.sendto(data, ("127.0.0.1", port))
            try:
                return s.recv(65535).decode(errors="replace")
            except TimeoutError:
                return ""
        s.connect(("127.0.0.1", port))
        if head_first:
            s.sendall(data[:head_first])
            s.settimeout(1.0)
            try:
                first = s.recv(65535)
                if first:
                    return _read_tcp_message(s, first)
            except TimeoutError:
                pass
            s.settimeout(RAW_TIMEOUT)
            try:
                s.sendall(data[head_first:])
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            s.sendall(data)
        try:
            return _read_tcp_message(s, s.recv(65535))
        except (TimeoutError, ConnectionResetError):
            return ""


def _read_tcp_message(s: socket.socket, buf: bytes) -> str:
    """Reads on until one whole SIP message (head and Content-Length body) is in ``buf``."""
    deadline = time.monotonic() + RAW_TIMEOUT
    while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
        more = s.recv(65535)
        if not more:
            break
        buf += more
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
    need = int(m.group(1)) if m else 0
    while len(body) < need and time.monotonic() < deadline:
        more = s.recv(65535)
        if not more:
            break
        body += more
    return (head + b"\r\n\r\n" + body).decode(errors="replace")


def raw_message(method: str, transport: str, *, lines: list[str] | None = None,
                drop: tuple[str, ...] = (), body: bytes = b"",
                content_length: int | None = None) -> bytes:
    """A request from a raw socket (To/From sip:sipp@localhost); ``lines`` replace or add
    headers, ``drop`` removes headers by name."""
    branch = "z9hG4bK-raw-" + uuid.uuid4().hex[:16]
    headers = {
        "Via": f"SIP/2.0/{transport.upper()} 127.0.0.1:9;branch={branch};rport",
        "Max-Forwards": "70",
        "From": "<sip:sipp@localhost>;tag=raw1",
        "To": "<sip:localhost>",
        "Call-ID": f"raw-{uuid.uuid4().hex}",
        "CSeq": f"1 {method}",
    }
    for line in lines or []:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    for name in drop:
        headers.pop(name, None)
    if body:
        headers.setdefault("Content-Type", "text/plain")
    headers["Content-Length"] = str(len(body) if content_length is None else content_length)
    head = f"{method} sip:localhost SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def status_line(answer: str) -> tuple[int, str]:
    first = answer.split("\r\n", 1)[0]
    m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", first)
    assert m, f"no SIP response from the server; got {answer!r}"
    return int(m.group(1)), m.group(2)


# -- OPTIONS, unknown and unsupported methods ---------------------------------------------------


@transports
def test_options_200_with_allow(sipp, transport):
    run = sipp("options", transport=transport).run()
    expect_ok(run)
    (ok,) = run.responses("OPTIONS")
    allow = {m.strip().upper() for v in ok.header_all("allow") for m in v.split(",")}
    assert {"REGISTER", "PUBLISH", "SUBSCRIBE", "MESSAGE", "OPTIONS"} <= allow, ok


@transports
def test_unknown_method_501(sipp, transport):
    expect_ok(sipp("unknown_method", transport=transport).run())


@transports
def test_invite_405_with_allow(sipp, transport):
    run = sipp("invite", transport=transport).run()
    expect_ok(run)
    (resp,) = run.responses("INVITE")[-1:]
    assert resp.status == 405, resp
    allow = {m.strip().upper() for v in resp.header_all("allow") for m in v.split(",")}
    assert allow and "INVITE" not in allow, f"Allow must list the methods supported, not INVITE:\n{resp}"


# -- REGISTER and digest authentication ---------------------------------------------------------


@transports
def test_register_with_md5_digest(sipp, transport):
    run = sipp("register", "alice", transport=transport).run()
    expect_ok(run)
    sent = run.sent("REGISTER")
    responses = run.responses("REGISTER")
    assert [r.status for r in responses] == [401, 200, 200], run

    # The challenge: realm localhost, qop auth; SHA-256 and MD5 offered (RFC 8760). (Their order is
    # not checked: sipp 3.6.1 can only answer when the MD5 one comes first, see README.md.)
    challenges = responses[0].header_all("www-authenticate")
    assert challenges, responses[0]
    for c in challenges:
        assert re.search(r'realm="localhost"', c), c
        assert re.search(r'qop="?[^"]*\bauth\b', c), c
        assert re.search(r"nonce=", c), c
    algorithms = [
        (re.search(r"algorithm=\"?([A-Za-z0-9-]+)", c) or [None, "MD5"])[1].upper() for c in challenges
    ]
    assert "MD5" in algorithms and "SHA-256" in algorithms, challenges

    # sipp answered with MD5 for user alice (the local part), realm localhost.
    auth = sent[1].header("authorization")
    assert auth and 'username="alice"' in auth and "algorithm=MD5" in auth, sent[1]

    # The 200 lists the new binding with an expiry; after Expires: 0 it is gone.
    mine = f"sip:alice@127.0.0.1:{run_port(run)}"
    bound = responses[1]
    listed = [c for c in bound.header_all("contact") if mine in c]
    assert listed, f"200 OK does not list the binding {mine}:\n{bound}"
    m = re.search(r";\s*expires=(\d+)", listed[0])
    assert m and 0 < int(m.group(1)) <= 300, f"binding without a valid expires:\n{bound}"
    removed = responses[2]
    assert not any(mine in uri for uri in contact_uris(removed)), (
        f"binding {mine} still listed after Expires: 0:\n{removed}"
    )



@transports
def test_register_wrong_password_403(sipp, transport):
    run = sipp("register_forbidden", "alice", password="not-alices-password", transport=transport).run()
    expect_ok(run)


@transports
def test_register_with_another_users_credentials_403(sipp, transport):
    # Valid credentials, but bob's, for a REGISTER of alice's AOR.
    run = sipp(
        "register_forbidden", "alice", auth_user="bob", password=USERS["bob"], transport=transport
    ).run()
    expect_ok(run)


# -- PUBLISH ------------------------------------------------------------------------------------


@transports
def test_publish_initial_refresh_modify_remove(sipp, transport):
    run = sipp("publish", "alice", transport=transport).run()
    expect_ok(run)
    responses = run.responses("PUBLISH")
    assert [r.status for r in responses] == [401, 200, 200, 200, 200, 412], run
    initial, refresh, modify, remove = responses[1:5]
    etags = [r.header("sip-etag") for r in (initial, refresh, modify)]
    assert all(etags), run
    # RFC 3903 §6: every successful refresh or modification gets a new entity-tag.
    assert etags[0] != etags[1] and etags[1] != etags[2], f"entity-tags must change: {etags}"
    for r in (initial, refresh, modify):
        assert int(r.header("expires")) > 0, r
    assert remove.header("expires") in (None, "0"), remove


@transports
def test_publish_unknown_etag_412(sipp, transport):
    expect_ok(sipp("publish_unknown_etag", "alice", transport=transport).run())


@transports
def test_publish_unknown_event_489(sipp, transport):
    run = sipp("publish_bad_event", "alice", transport=transport).run()
    expect_ok(run)
    assert run.responses("PUBLISH")[-1].status == 489, run


# -- SUBSCRIBE / NOTIFY -------------------------------------------------------------------------


def check_watch_run(run: SippResult, watcher: str) -> None:
    """What watch_alice.xml saw, beyond its own checks: PIDF documents, dialog, states."""
    expect_ok(run)
    subs = run.sent("SUBSCRIBE")
    ok = [r for r in run.responses("SUBSCRIBE") if r.status == 200]
    assert len(ok) == 3, run
    to_tag = tag_of(ok[0].header("to"))
    my_tag = tag_of(subs[0].header("from"))
    got = notifies(run)
    assert len(got) >= 4, run  # initial, >= 1 change, after refresh, terminated
    for n in got:
        assert n.header("call-id") == subs[0].header("call-id"), n
        assert tag_of(n.header("from")) == to_tag, f"NOTIFY From tag is not the dialog's:\n{n}"
        assert tag_of(n.header("to")) == my_tag, f"NOTIFY To tag is not the watcher's:\n{n}"
        assert n.header("event").split(";")[0].strip() == "presence", n
        assert f"sip:{watcher}@localhost" in n.header("to"), n
    cseqs = [int(n.header("cseq").split()[0]) for n in got]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs), f"NOTIFY CSeqs not increasing: {cseqs}"

    first = pidf(got[0].body)
    assert first["entity"] == "sip:alice@localhost", got[0]
    assert first["basic"] and set(first["basic"]) == {"closed"}, got[0]

    phone = [n for n in got[1:-1] if "on-the-phone" in pidf(n.body)["activities"]]
    assert phone, f"no NOTIFY with <rpid:on-the-phone/> in a <dm:person>:\n{run}"
    doc = pidf(phone[0].body)
    assert doc["entity"] == "sip:alice@localhost", phone[0]
    assert "open" in doc["basic"], phone[0]
    assert PHONE_NOTE in doc["notes"], phone[0]

    assert got[-1].header("subscription-state").startswith("terminated"), got[-1]


def start_watcher(sipp, user: str, transport: str):
    """A background watch_alice.xml run for ``user``, subscribed (initial NOTIFY seen) on return."""
    run = sipp("watch_alice", user, transport=transport, flag="subscribed").start()
    run.wait_flag("subscribed")
    return run


def publish_on_the_phone(sipp, transport: str) -> SippResult:
    run = sipp("publish_on_the_phone", "alice", transport=transport).run()
    expect_ok(run)
    return run


@transports
def test_subscribe_notifies_publications(sipp, transport):
    # bob watches alice over `transport`; alice publishes over the other one.
    bob = start_watcher(sipp, "bob", transport)
    publish_on_the_phone(sipp, OTHER[transport])
    check_watch_run(bob.wait(), "bob")


@transports
def test_second_watcher_sees_the_change_too(sipp, transport):
    bob = start_watcher(sipp, "bob", transport)
    carol = start_watcher(sipp, "carol", OTHER[transport])
    publish_on_the_phone(sipp, transport)
    results = [bob.wait(), carol.wait()]
    expect_ok(*results)
    check_watch_run(results[0], "bob")
    check_watch_run(results[1], "carol")


@transports
def test_watcher_info_lists_active_watcher(sipp, transport):
    bob = start_watcher(sipp, "bob", transport)
    winfo = sipp("winfo_bob_active", "alice", transport=transport).run()
    # Let bob's scenario finish (it waits for alice on the phone) before judging either run.
    publish_on_the_phone(sipp, transport)
    bob_run = bob.wait()
    expect_ok(winfo, bob_run)
    first = notifies(winfo)[0]
    root = ET.fromstring(first.body.strip().encode())
    assert local(root.tag) == "watcherinfo" and root.tag.startswith(f"{{{NS_WINFO}}}"), first
    lists = [w for w in root.iter(f"{{{NS_WINFO}}}watcher-list")
             if w.get("resource") == "sip:alice@localhost" and w.get("package") == "presence"]
    assert lists, f"no watcher-list for sip:alice@localhost, package presence:\n{first}"
    watchers = {(w.text or "").strip(): w.get("status") for w in lists[0].iter(f"{{{NS_WINFO}}}watcher")}
    assert watchers.get("sip:bob@localhost") == "active", first
    assert notifies(winfo)[-1].header("subscription-state").startswith("terminated"), winfo


# -- MESSAGE ------------------------------------------------------------------------------------


def start_receiver(sipp, user: str, transport: str):
    """A background message_receive.xml run: registered on return, waiting for one MESSAGE."""
    run = sipp("message_receive", user, transport=transport, flag="registered",
               ooc="message_receive_ooc").start()
    run.wait_flag("registered")
    return run


def check_received(run: SippResult, text: str) -> None:
    expect_ok(run)
    got = run.received("MESSAGE")
    assert len(got) == 1, f"expected exactly one MESSAGE:\n{run}"
    assert got[0].body.strip() == text, got[0]
    ok = [m for m in run.sent() if m.is_response and m.status == 200 and m.method == "MESSAGE"]
    assert ok, f"sipp did not answer the MESSAGE 200 OK:\n{run}"


@transports
def test_message_delivered_to_registered_contact(sipp, transport):
    alice = start_receiver(sipp, "alice", transport)
    bob = sipp("message_send", "bob", transport=transport, keys={"target": "alice"}).run()
    expect_ok(bob)
    check_received(alice.wait(), f"Hello alice, this is bob over {transport.upper()}")


def test_message_forked_to_every_binding(sipp):
    # alice registered twice, once over UDP and once over TCP: both bindings get the MESSAGE.
    over_udp = start_receiver(sipp, "alice", "udp")
    over_tcp = start_receiver(sipp, "alice", "tcp")
    bob = sipp("message_send", "bob", transport="udp", keys={"target": "alice"}).run()
    expect_ok(bob)
    results = [over_udp.wait(), over_tcp.wait()]
    expect_ok(*results)
    for r in results:
        check_received(r, "Hello alice, this is bob over UDP")


@transports
def test_message_nobody_registered_no_offline_storage_480(server_no_offline, sipp_factory, transport):
    sipp_factory.port = server_no_offline.sip_port
    run = sipp_factory("message_send_unavailable", "bob", transport=transport,
                       keys={"target": "carol"}).run()
    expect_ok(run)


@transports
def test_message_nobody_registered_offline_storage_200_then_delivered(server_offline, sipp_factory,
                                                                       transport):
    # The 200 alone does not show the MESSAGE was kept: alice has no binding when bob sends it,
    # so it can reach her only if it was stored, when she registers afterwards.
    sipp_factory.port = server_offline.sip_port
    bob = sipp_factory("message_send", "bob", transport=transport, keys={"target": "alice"}).run()
    expect_ok(bob)
    alice = start_receiver(sipp_factory, "alice", transport)
    check_received(alice.wait(), f"Hello alice, this is bob over {transport.upper()}")


# -- malformed and over-size requests (raw socket) ----------------------------------------------

#: Malformed requests (what is wrong -> the request); the 400's reason phrase must name it.
MALFORMED = {
    "cseq": lambda t: raw_message("OPTIONS", t, lines=["CSeq: one OPTIONS"]),
    "call-id": lambda t: raw_message("OPTIONS", t, drop=("Call-ID",)),
    "content-length": lambda t: raw_message("OPTIONS", t, content_length=-5),
}


@transports
@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_request_400(server, transport, what):
    answer = raw_request(server.sip_port, transport, MALFORMED[what](transport))
    code, reason = status_line(answer)
    assert code == 400, answer
    assert what in reason.lower(), f"400 reason phrase should say what is wrong ({what}): {reason!r}"


@transports
def test_oversize_request_513(server, transport):
    body = b"x" * (40 * 1024)  # over the 32 KiB limit
    data = raw_message("OPTIONS", transport, body=body)
    answer = raw_request(server.sip_port, transport, data, head_first=len(data) - len(body))
    code, reason = status_line(answer)
    assert code == 513, answer


# -- RFC 3261 / RFC 3581 response details -------------------------------------------------------


@transports
def test_every_response_carries_a_to_tag(sipp, transport):
    """RFC 3261 §8.2.6.2: to a request without a To tag the UAS adds one to every response but a
    100 (Trying), whatever the status: OPTIONS 200, 501, 405, 403, PUBLISH 200/412, 489..."""
    runs = [
        sipp("options", transport=transport).run(),
        sipp("unknown_method", transport=transport).run(),
        sipp("invite", transport=transport).run(),
        sipp("register_forbidden", "alice", password="not-alices-password", transport=transport).run(),
        sipp("publish", "alice", transport=transport).run(),
        sipp("publish_bad_event", "alice", transport=transport).run(),
    ]
    expect_ok(*runs)
    missing = [
        f"{m.start}  (to {m.method}; To: {m.header('to')})"
        for r in runs for m in r.responses() if m.status != 100 and not tag_of(m.header("to"))
    ]
    assert not missing, "responses without a To tag (RFC 3261 §8.2.6.2):\n" + "\n".join(missing)


def test_udp_response_via_gets_rport_and_received(server):
    """RFC 3581 §4: a request whose top Via has an empty rport gets a response whose Via has
    rport=<source port> and received=<source address>, sent back to that address and port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(RAW_TIMEOUT)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        # sent-by says port 9, as behind a NAT; the response must come to the real source port.
        s.sendto(raw_message("OPTIONS", "udp"), ("127.0.0.1", server.sip_port))
        answer = s.recv(65535).decode(errors="replace")
    code, _ = status_line(answer)
    assert code == 200, answer
    via = re.search(r"(?im)^(?:via|v)[ \t]*:[ \t]*([^\r\n]*)", answer).group(1)
    assert re.search(rf";\s*rport={port}\b", via), f"Via without rport={port}: {via}"
    assert re.search(r";\s*received=127\.0\.0\.1\b", via), f"Via without received=127.0.0.1: {via}"
