"""A small SIP user agent over TLS (Python's ``ssl``), for the SIP over TLS tests.

Why not sipp: Debian's sipp (sip-tester 3.6.1, ``sipp -v`` says ``-SCTP-PCAP-RTPSTREAM``, no ``-TLS``)
is built without OpenSSL, and ``-t l1`` stops with "To use a TLS transport you must compile SIPp
with OpenSSL". This client does what the sipp scenarios do over UDP/TCP (REGISTER, PUBLISH,
SUBSCRIBE, MESSAGE with digest authentication, answering the server's NOTIFYs and MESSAGEs)
over one TLS connection that verifies the server's certificate, and records every message both
ways so a test can check what went over the wire (Via transport, Contact schemes).

Every wait is bounded: ``WAIT`` seconds per response or expected request.
"""

from __future__ import annotations

import hashlib
import queue
import re
import select
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: seconds a response, or an expected request from the server, may take
WAIT = 10.0
#: The longest the reader holds the connection for one read (seconds).
READ_SLICE = 0.05
#: most bytes one message may have here (the server's own limit is 32 KiB)
MAX_MESSAGE = 64 * 1024


@dataclass
class Msg:
    """One SIP message: start line, headers (name lower-cased, in order), body."""

    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split()[1]) if not self.is_request else 0

    @property
    def method(self) -> str:
        return self.start.split()[0] if self.is_request else ""

    @property
    def uri(self) -> str:
        return self.start.split()[1] if self.is_request else ""

    def get(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __str__(self) -> str:
        head = "\n".join(f"{n}: {v}" for n, v in self.headers)
        return f"{self.start}\n{head}\n\n{self.text()}"


COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "e": "content-encoding", "o": "event", "k": "supported"}


def parse(raw: bytes) -> Msg:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    msg = Msg(lines[0])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        msg.headers.append((COMPACT.get(name, name), value.strip()))
    msg.body = body
    return msg


def client_context(cafile: Path, *, cert: Path | None = None, key: Path | None = None,
                   max_tls12: bool = False) -> ssl.SSLContext:
    """A context that verifies the server against ``cafile`` (the name checked is ``localhost``),
    optionally presenting a client certificate; ``max_tls12`` caps it at TLS 1.2 as older phones
    (and pjsua2's bundled OpenSSL 1.0.2) are."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile))
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


class TlsSip:
    """One SIP user agent on one TLS connection to 127.0.0.1:``port``, as ``user``."""

    def __init__(self, port: int, ctx: ssl.SSLContext, user: str, password: str | None = None,
                 *, domain: str = "localhost") -> None:
        self.user, self.password, self.domain = user, password, domain
        raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        # OpenSSL objects must not be used by two threads at once, and a TLS 1.3 server's session tickets
        # arrive just as the first request goes out: the reader and the writers take turns under
        # ``_lock``, and the reader holds it only for a short bounded read, never while waiting.
        self.sock.settimeout(READ_SLICE)
        self.version = self.sock.version()
        self.local = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sent: list[Msg] = []
        self.received: list[Msg] = []
        self._responses: queue.Queue[Msg] = queue.Queue()
        self._requests: queue.Queue[Msg] = queue.Queue()
        self._seen_requests: list[Msg] = []
        self._lock = threading.Lock()
        self._cseq = 0
        self.tag = uuid.uuid4().hex[:10]
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"tlssip-{user}", daemon=True)
        self._reader.start()

    # -- wire ----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        with self._lock:
            # Writes wait as long as any step of a test; the short timeout is the reader's.
            self.sock.settimeout(WAIT)
            try:
                self.sock.sendall(data)
            finally:
                self.sock.settimeout(READ_SLICE)

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                readable, _, _ = select.select([self.sock], [], [], READ_SLICE)
                if not readable and not self.sock.pending():
                    continue
                with self._lock:
                    try:
                        chunk = self.sock.recv(65536)
                    except (TimeoutError, ssl.SSLWantReadError):
                        continue  # a record only partly here, or one that carried no data
                if not chunk:
                    break
                buf += chunk
                while True:
                    buf = buf.lstrip(b"\r\n")  # keep-alives
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buf) > MAX_MESSAGE:
                            raise ValueError("header block too long")
                        break
                    head = parse(buf[:end + 4])
                    length = int(head.get("content-length") or 0)
                    if len(buf) < end + 4 + length:
                        break
                    msg = parse(buf[:end + 4 + length])
                    buf = buf[end + 4 + length:]
                    self.received.append(msg)
                    if msg.is_request:
                        self._answer(msg)
                        self._requests.put(msg)
                    else:
                        self._responses.put(msg)
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def _answer(self, req: Msg) -> None:
        """NOTIFY and MESSAGE from the server are answered 200, as a phone would."""
        lines = [f"SIP/2.0 200 OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            for v in req.all(name):
                if name == "to" and "tag=" not in v:
                    v = f"{v};tag={self.tag}"
                lines.append(f"{name.title()}: {v}")
        lines.append("Content-Length: 0")
        out = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.sent.append(parse(out))
        try:
            self._write(out)
        except OSError:
            pass

    def close(self) -> None:
        # shutdown wakes the reader thread out of recv(); close alone would leave it blocked
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self._reader.join(WAIT)

    # -- requests ------------------------------------------------------------------------------

    def request(self, method: str, uri: str, *, headers: dict[str, str] | None = None,
                body: str = "", to: str | None = None, call_id: str | None = None,
                to_tag: str | None = None, contact: str | None = None,
                authenticate: bool = True) -> Msg:
        """Sends a request and returns its final response; a 401 is answered once with MD5 digest
        credentials when the agent has a password and ``authenticate`` is set."""
        call_id = call_id or uuid.uuid4().hex
        auth = None
        for _ in range(2):
            self._cseq += 1
            branch = "z9hG4bK" + uuid.uuid4().hex[:16]
            to_uri = to or f"sip:{self.user}@{self.domain}"
            lines = [
                f"{method} {uri} SIP/2.0",
                f"Via: SIP/2.0/TLS {self.local};branch={branch};rport",
                "Max-Forwards: 70",
                f"From: <sip:{self.user}@{self.domain}>;tag={self.tag}",
                f"To: <{to_uri}>" + (f";tag={to_tag}" if to_tag else ""),
                f"Call-ID: {call_id}",
                f"CSeq: {self._cseq} {method}",
                f"Contact: <{contact or f'sips:{self.user}@{self.local}'}>",
            ]
            for k, v in (headers or {}).items():
                lines.append(f"{k}: {v}")
            if auth:
                lines.append(f"Authorization: {auth}")
            data = body.encode()
            lines.append(f"Content-Length: {len(data)}")
            out = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
            self.sent.append(parse(out))
            self._write(out)
            resp = self.response(branch)
            if resp.status == 401 and authenticate and self.password and auth is None:
                auth = self._digest(resp, method, uri)
                continue
            return resp
        return resp

    def response(self, branch: str, timeout: float = WAIT) -> Msg:
        """The final response of the transaction ``branch``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user}: no final response for {branch} within {timeout} s;"
                                     f" received:\n" + "\n---\n".join(map(str, self.received)))
            try:
                msg = self._responses.get(timeout=left)
            except queue.Empty:
                continue
            if branch in (msg.get("via") or "") and msg.status >= 200:
                return msg

    def expect_request(self, pred, what: str, timeout: float = WAIT) -> Msg:
        """The first request from the server (already seen or coming) for which ``pred`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self._seen_requests:
                if pred(msg):
                    self._seen_requests.remove(msg)
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user}: no {what} within {timeout} s; received:\n"
                                     + "\n---\n".join(map(str, self.received)))
            try:
                self._seen_requests.append(self._requests.get(timeout=left))
            except queue.Empty:
                continue

    def _digest(self, challenge: Msg, method: str, uri: str) -> str:
        """RFC 7616 digest credentials (MD5, qop=auth) for the MD5 challenge of a 401."""
        header = next((h for h in challenge.all("www-authenticate")
                       if "MD5" in h.upper() and "SHA-256" not in h.upper()),
                      challenge.get("www-authenticate") or "")
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', header))
        realm, nonce = params["realm"], params["nonce"]
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"

        def md5(s: str) -> str:
            return hashlib.md5(s.encode()).hexdigest()

        ha1 = md5(f"{self.user}:{realm}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        resp = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        return (f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", nc={nc}, qop=auth')
