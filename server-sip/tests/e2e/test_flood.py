"""One authenticated account floods the server with state-creating requests (issue 16, bounded per-user state).

Alice's phones (each one TCP connection: one endpoint, the flow the caps count per) pipeline far more initial
PUBLISHes (each a new entity tag), initial SUBSCRIBEs (each a new dialog) and REGISTERs of new contacts than the
default ``[limits]`` caps allow:

- publications: 8 per endpoint, 32 per user; subscriptions: 256 per endpoint, 512 per user; bindings: 4 per
  endpoint, 16 per user.

The first requests up to each cap get ``200``, every further one ``403`` (a final refusal, no Retry-After: the
cap does not lift by waiting), with a reason naming the device's or the user's cap. What alice already holds can
still be refreshed, modified, re-registered and re-subscribed, also over another of her flows; bob, flooding
nothing, is served at once during and after the flood; the server stays up. With the publication caps raised,
one user's 5,000 publications are all accepted and the newest one still speaks (the publication index).

The client is a raw socket with MD5 digest rather than sipp: sipp runs one call after another, each with its own
401 round trip, while a flood pipelines requests on one flow, and the test must choose which flow (endpoint)
each request goes over. All clients share 127.0.0.1, so the per-address byte rate (tested in
``test_shutdown_and_limits.py``) is off here: these caps must hold without it.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import USERS, make_server, running, sip_options

DOMAIN = "localhost"
WINDOW = 64  # requests in flight on one flow
TIMEOUT = 10.0  # seconds any one answer may take (a bound against hanging, not a speed target)

# The shipped defaults (server_sip::caps::StateCaps::default, [limits] in examples/src/config.rs).
PUB_ENDPOINT, PUB_USER = 8, 32
SUB_ENDPOINT, SUB_USER = 256, 512
BIND_ENDPOINT, BIND_USER = 4, 16


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def __str__(self) -> str:
        lines = [f"SIP/2.0 {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, vs in self.headers.items() for v in vs]
        return "\n".join(lines)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def pidf(user: str, note: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@{DOMAIN}">'
        f'<tuple id="t"><status><basic>open</basic></status></tuple><note>{note}</note></presence>'
    ).encode()


class Phone:
    """One endpoint of ``user``: a TCP connection that sends requests with digest credentials (MD5,
    qop=auth, one nonce for all, as phones do), pipelines them, and answers the server's NOTIFYs with 200."""

    def __init__(self, port: int, user: str) -> None:
        self.user = user
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""
        self.nc = 0
        self.challenge: dict[str, str] | None = None
        self.answers: dict[str, Answer] = {}
        self.notify_bodies: list[bytes] = []
        self.contact = f"<sip:{user}@127.0.0.1:{self.local_port};transport=tcp>"

    def close(self) -> None:
        self.sock.close()

    # -- sending ------------------------------------------------------------------------------

    def _authorization(self, method: str, uri: str) -> str | None:
        if self.challenge is None:
            return None
        self.nc += 1
        realm, nonce = self.challenge["realm"], self.challenge["nonce"]
        nc, cnonce = f"{self.nc:08x}", uuid.uuid4().hex[:8]
        ha1 = md5(f"{self.user}:{realm}:{USERS[self.user]}")
        ha2 = md5(f"{method}:{uri}")
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        return (
            f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"'
        )

    def send(self, method: str, uri: str, headers: list[str], body: bytes = b"",
             call_id: str | None = None, to: str | None = None, cseq: int = 1) -> str:
        """Sends one request; returns its Call-ID (answers are collected by it)."""
        call_id = call_id or f"flood-{uuid.uuid4().hex}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/TCP 127.0.0.1:{self.local_port};branch=z9hG4bK-{uuid.uuid4().hex}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{DOMAIN}>;tag=f{uuid.uuid4().hex[:8]}",
            f"To: {to or f'<{uri}>'}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            *headers,
        ]
        auth = self._authorization(method, uri)
        if auth:
            lines.append(f"Authorization: {auth}")
        lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return call_id

    def publish(self, note: str = "flooding", if_match: str | None = None, body: bool = True) -> str:
        uri = f"sip:{self.user}@{DOMAIN}"
        headers = ["Event: presence", "Expires: 3600"]
        if if_match:
            headers.append(f"SIP-If-Match: {if_match}")
        if body:
            headers.append("Content-Type: application/pidf+xml")
        return self.send("PUBLISH", uri, headers, pidf(self.user, note) if body else b"")

    def subscribe(self, target: str, dialog: tuple[str, str] | None = None) -> str:
        """An initial SUBSCRIBE, or with ``dialog`` (Call-ID, the server's To tag) a refresh in it."""
        uri = f"sip:{target}@{DOMAIN}"
        headers = ["Event: presence", "Expires: 600", f"Contact: {self.contact}"]
        if dialog is None:
            return self.send("SUBSCRIBE", uri, headers)
        call_id, tag = dialog
        return self.send("SUBSCRIBE", uri, headers, call_id=call_id, to=f"<{uri}>;tag={tag}", cseq=2)

    def register(self, contacts: list[str]) -> str:
        uri = f"sip:{DOMAIN}"
        headers = [f"Contact: <{c}>" for c in contacts] + ["Expires: 600"]
        return self.send("REGISTER", uri, headers, to=f"<sip:{self.user}@{DOMAIN}>")

    # -- receiving ----------------------------------------------------------------------------

    def _read_message(self) -> tuple[str, dict[str, list[str]], bytes, bytes]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length = int((headers.get("content-length") or ["0"])[0])
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            rest += chunk
        self.buf = rest[length:]
        return lines[0], headers, head, rest[:length]

    def _pump(self) -> None:
        """Reads one message: an answer is filed by Call-ID, a request (NOTIFY) gets 200."""
        first, headers, _, body = self._read_message()
        if first.startswith("SIP/2.0 "):
            _, code, reason = (first.split(" ", 2) + [""])[:3]
            call_id = headers["call-id"][0]
            # 100 Trying is provisional; only final answers count.
            if int(code) >= 200:
                self.answers[call_id] = Answer(int(code), reason, headers)
            return
        self.notify_bodies.append(body)
        reply = ["SIP/2.0 200 OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            reply += [f"{name}: {v}" for v in headers.get(name, [])]
        reply.append("Content-Length: 0")
        self.sock.sendall(("\r\n".join(reply) + "\r\n\r\n").encode())

    def notify_with(self, text: bytes) -> bytes:
        """Reads until a NOTIFY whose body holds ``text`` has come; returns that body."""
        while True:
            for body in self.notify_bodies:
                if text in body:
                    return body
            self.notify_bodies.clear()
            self._pump()

    def answer(self, call_id: str) -> Answer:
        while call_id not in self.answers:
            self._pump()
        return self.answers.pop(call_id)

    def authenticate(self) -> None:
        """An OPTIONS-free way to get the nonce: a REGISTER without credentials gets 401 and its challenge."""
        a = self.answer(self.send("REGISTER", f"sip:{DOMAIN}", [], to=f"<sip:{self.user}@{DOMAIN}>"))
        assert a.status == 401, a
        md5_challenge = next(c for c in a.headers["www-authenticate"] if "SHA-256" not in c)
        self.challenge = dict(re.findall(r'(\w+)="([^"]*)"', md5_challenge))

    def flood(self, requests: list) -> list[Answer]:
        """Sends the requests (callables returning a Call-ID) pipelined, WINDOW at a time without waiting for
        answers; returns the answers in the order the requests went. (A client that never reads would be cut
        off by the server as a slow consumer: its queue for one connection is bounded.)"""
        out: list[Answer] = []
        for start in range(0, len(requests), WINDOW):
            ids = [r() for r in requests[start:start + WINDOW]]
            out += [self.answer(i) for i in ids]
        return out


def connect(server, user: str) -> Phone:
    p = Phone(server.sip_port, user)
    p.authenticate()
    return p


def statuses(answers: list[Answer]) -> list[int]:
    return [a.status for a in answers]


def assert_refused(answers: list[Answer], whose: str) -> None:
    for a in answers:
        assert a.status == 403, a
        assert a.header("retry-after") is None, f"a cap is a final refusal, not a 503-like one: {a}"
        assert f"for this {whose}" in a.reason, a


@pytest.fixture
def flood_server(binary: Path, tmp_path: Path):
    """The default caps; no per-address rate (every client here is 127.0.0.1)."""
    yield from running(make_server(binary, tmp_path / "server", tables="[limits]\nsip_rate = 0"))


def test_publications_are_capped_and_old_ones_still_refresh(flood_server) -> None:
    phones = [connect(flood_server, "alice") for _ in range(PUB_USER // PUB_ENDPOINT + 1)]
    bob = connect(flood_server, "bob")
    try:
        first, rest, last = phones[0], phones[1:-1], phones[-1]
        # A flood on one flow: only that endpoint's allowance is accepted, in order.
        flood_n = 1000
        during: list[Answer] = []

        def bob_publishes() -> None:
            during.append(bob.answer(bob.publish("bob during the flood")))

        bob_thread = threading.Thread(target=bob_publishes)
        half = flood_n // 2
        answers = first.flood([lambda i=i: first.publish(f"flood {i}") for i in range(half)])
        bob_thread.start()
        answers += first.flood([lambda i=i: first.publish(f"flood {i}") for i in range(half, flood_n)])
        bob_thread.join(TIMEOUT)
        assert statuses(answers[:PUB_ENDPOINT]) == [200] * PUB_ENDPOINT
        assert_refused(answers[PUB_ENDPOINT:], "device")
        assert statuses(during) == [200], "bob, flooding nothing, is served during alice's flood"
        # Her other devices have their own allowance up to the user's cap (which the last of them reaches
        # together with its own); past it, any new flow is refused.
        for p in rest:
            got = p.flood([p.publish] * (PUB_ENDPOINT + 3))
            assert statuses(got[:PUB_ENDPOINT]) == [200] * PUB_ENDPOINT
            assert_refused(got[PUB_ENDPOINT:], "user" if p is rest[-1] else "device")
        assert_refused(last.flood([last.publish] * 20), "user")
        # What she holds still refreshes (no body) and modifies (a body), over its own flow and over another.
        etag = answers[0].header("sip-etag")
        refreshed = first.answer(first.publish(if_match=etag, body=False))
        assert refreshed.status == 200, refreshed
        modified = last.answer(last.publish("moved", if_match=refreshed.header("sip-etag")))
        assert modified.status == 200, modified
        removed_tag = answers[1].header("sip-etag")
        removal = first.send(
            "PUBLISH", f"sip:alice@{DOMAIN}",
            ["Event: presence", "Expires: 0", f"SIP-If-Match: {removed_tag}"],
        )
        assert first.answer(removal).status == 200
        # The removal freed one place of the user's: the next new one fits (on a flow under its own cap).
        assert last.answer(last.publish("one more")).status == 200
        assert_refused([last.answer(last.publish("and no more"))], "user")
        # Bob after the flood, and the server is up.
        assert bob.answer(bob.publish("bob after")).status == 200
        assert sip_options(flood_server.sip_port) is not None
        assert flood_server.proc is not None and flood_server.proc.poll() is None
    finally:
        for p in [*phones, bob]:
            p.close()


def test_subscriptions_are_capped_and_dialogs_still_refresh(flood_server) -> None:
    phones = [connect(flood_server, "alice") for _ in range(SUB_USER // SUB_ENDPOINT + 1)]
    bob = connect(flood_server, "bob")
    try:
        first = phones[0]
        watch_bob = lambda p: (lambda: p.subscribe("bob"))  # noqa: E731
        answers = first.flood([watch_bob(first)] * (SUB_ENDPOINT + 100))
        assert statuses(answers[:SUB_ENDPOINT]) == [200] * SUB_ENDPOINT
        assert_refused(answers[SUB_ENDPOINT:], "device")
        for p in phones[1:-1]:
            got = p.flood([watch_bob(p)] * (SUB_ENDPOINT + 5))
            assert statuses(got[:SUB_ENDPOINT]) == [200] * SUB_ENDPOINT
            assert_refused(got[SUB_ENDPOINT:], "user" if p is phones[-2] else "device")
        last = phones[-1]
        assert_refused(last.flood([watch_bob(last)] * 10), "user")
        # A SUBSCRIBE within an existing dialog is a refresh: never refused, over any of her flows.
        ok = answers[0]
        to_tag = re.search(r";tag=([^;>\s]+)", ok.header("to") or "")
        assert to_tag, ok
        call_id = ok.header("call-id")
        for p in (first, last):
            again = p.answer(p.subscribe("bob", dialog=(call_id, to_tag.group(1))))
            assert again.status == 200, again
        # Bob is unaffected: his own subscription is accepted at once.
        assert bob.answer(bob.subscribe("alice")).status == 200
        assert sip_options(flood_server.sip_port) is not None
        assert flood_server.proc is not None and flood_server.proc.poll() is None
    finally:
        for p in [*phones, bob]:
            p.close()


def test_bindings_are_capped_and_bound_contacts_still_reregister(flood_server) -> None:
    phones = [connect(flood_server, "alice") for _ in range(BIND_USER // BIND_ENDPOINT + 1)]
    bob = connect(flood_server, "bob")
    try:
        first = phones[0]

        def contact(p: Phone, i: int) -> str:
            return f"sip:alice-{p.local_port}-{i}@127.0.0.1:{p.local_port};transport=tcp"

        def new_contact(p: Phone, i: int):
            return lambda: p.register([contact(p, i)])

        answers = first.flood([new_contact(first, i) for i in range(200)])
        assert statuses(answers[:BIND_ENDPOINT]) == [200] * BIND_ENDPOINT
        assert_refused(answers[BIND_ENDPOINT:], "device")
        # A REGISTER is applied whole or not at all: one bound contact beside a new one is refused too.
        assert_refused([first.answer(first.register([contact(first, 0), contact(first, 999)]))], "device")
        for p in phones[1:-1]:
            got = p.flood([new_contact(p, i) for i in range(BIND_ENDPOINT + 2)])
            assert statuses(got[:BIND_ENDPOINT]) == [200] * BIND_ENDPOINT
            assert_refused(got[BIND_ENDPOINT:], "user" if p is phones[-2] else "device")
        last = phones[-1]
        assert_refused(last.flood([new_contact(last, i) for i in range(10)]), "user")
        # Re-registering bound contacts is never refused, over their flow or another (a NAT rebinding).
        again = first.answer(first.register([contact(first, 0), contact(first, 1)]))
        assert again.status == 200, again
        assert len(again.headers.get("contact", [])) == BIND_USER, again
        moved = last.answer(last.register([contact(first, 2)]))
        assert moved.status == 200, moved
        # Bob registers at once.
        mine = bob.answer(bob.register([f"sip:bob@127.0.0.1:{bob.local_port};transport=tcp"]))
        assert mine.status == 200, mine
        assert sip_options(flood_server.sip_port) is not None
        assert flood_server.proc is not None and flood_server.proc.poll() is None
    finally:
        for p in [*phones, bob]:
            p.close()


@pytest.fixture
def raised_cap_server(binary: Path, tmp_path: Path):
    """Caps raised far above the defaults, so that one user can hold thousands of publications."""
    tables = (
        "[limits]\nsip_rate = 0\n"
        f"sip_publications_per_user = {RAISED_CAP}\nsip_publications_per_endpoint = {RAISED_CAP}\n"
    )
    yield from running(make_server(binary, tmp_path / "server", tables=tables))


RAISED_CAP = 10_000
MANY = 5_000


def test_thousands_of_publications_of_one_user_keep_the_newest_speaking(raised_cap_server) -> None:
    """The publication index under a flood the caps let through: every one of MANY initial PUBLISHes of one
    user is accepted, a watcher then sees the newest one's note, and removing the newest makes the one before
    it speak. (Before the index each PUBLISH cost time in proportion to the user's publications.)"""
    alice = connect(raised_cap_server, "alice")
    bob = connect(raised_cap_server, "bob")
    try:
        answers = alice.flood([lambda i=i: alice.publish(f"note {i}") for i in range(MANY)])
        assert statuses(answers) == [200] * MANY
        assert len({a.header("sip-etag") for a in answers}) == MANY, "every publication has its own tag"
        assert bob.answer(bob.subscribe("alice")).status == 200
        bob.notify_with(f"note {MANY - 1}<".encode())
        newest = answers[-1].header("sip-etag")
        removal = alice.send(
            "PUBLISH", f"sip:alice@{DOMAIN}",
            ["Event: presence", "Expires: 0", f"SIP-If-Match: {newest}"],
        )
        assert alice.answer(removal).status == 200
        bob.notify_with(f"note {MANY - 2}<".encode())
        assert sip_options(raised_cap_server.sip_port) is not None
    finally:
        alice.close()
        bob.close()
