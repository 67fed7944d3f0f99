"""SIP over TLS (``[sip] tls_bind``, RFC 3261 §26.2): registration, publication, subscriptions and
MESSAGE over TLS connections with the server's certificate verified, ``sips:`` URIs, the 416 for
a ``sips:`` request over a hop that is not TLS, and trusted call-control peers known by their
client certificate (``[sip] trusted_peer_subjects`` + ``client_ca_file``).

Clients: ``tlssip.py`` (Python's ``ssl``; Debian's sipp is built without TLS, see there) and
pjsua2 softphones over TLS (``pjagent.py``/``pjsua.py``; pjsua2's bundled OpenSSL 1.0.2 speaks TLS
1.2 at most). The server's certificate is the one it generates for ``localhost`` in its data
directory, as for XMPP. Test certificates for call-control peers are made with the ``openssl``
command. Every wait is bounded (``tlssip.WAIT``, ``pjsua.WAIT``, ``TLS_READY_TIMEOUT``).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import USERS, SipServer, free_port, write_config
from pjsua import PjAgents
from tlssip import TlsSip, client_context

#: seconds for the TLS port to accept once UDP and TCP answer
TLS_READY_TIMEOUT = 10.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pidf(entity: str, basic: str, *, note: str = "", activity: str = "") -> str:
    person = (f'<dm:person id="p1"><rpid:activities>{activity}</rpid:activities></dm:person>'
              if activity else "")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
        f'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{entity}">'
        f'<tuple id="t1"><status><basic>{basic}</basic></status>'
        + (f"<note>{note}</note>" if note else "")
        + f"</tuple>{person}</presence>"
    )


def start_tls_server(binary: Path, root: Path, *sip_lines: str) -> SipServer:
    """A started server with SIP over TLS on a free loopback port (``srv.tls_sip_port``)."""
    srv = SipServer(binary=binary, root=root, port=free_port(), sip_port=free_port(udp_too=True))
    srv.tls_sip_port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    write_config(srv.config, srv.data_dir, srv.port, srv.sip_port,
                 sip=(f'tls_bind = "127.0.0.1:{srv.tls_sip_port}"', *sip_lines),
                 http_port=srv.http_port)
    for local, password in USERS.items():
        srv.add_user(local, password)
    srv.start()
    deadline = time.monotonic() + TLS_READY_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", srv.tls_sip_port), timeout=0.5).close()
            return srv
        except OSError:
            if time.monotonic() > deadline:
                srv.stop()
                pytest.fail(f"the SIP TLS port {srv.tls_sip_port} did not accept within "
                            f"{TLS_READY_TIMEOUT} s; server output:\n{srv._stderr()}")
            time.sleep(0.1)


@pytest.fixture
def tls_server(binary: Path, tmp_path: Path):
    srv = start_tls_server(binary, tmp_path / "server")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tls_clients():
    """Makes :class:`TlsSip` agents and closes them at teardown."""
    made: list[TlsSip] = []

    def make(*args, **kw) -> TlsSip:
        agent = TlsSip(*args, **kw)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


def notify_with(text: str):
    def pred(m) -> bool:
        return m.method == "NOTIFY" and text in m.text()
    return pred


def top_via(m) -> str:
    return (m.get("via") or "").split(",")[0]


# -- SIP over TLS -------------------------------------------------------------------------------


def test_register_publish_subscribe_notify_and_message_over_tls(tls_server, tls_clients):
    """alice and bob each on a TLS connection that verified the server's generated certificate:
    alice REGISTERs (sips: Contact) and PUBLISHes a note; bob SUBSCRIBEs to sips:alice. Every
    answer comes back on the requester's connection; the NOTIFYs and bob's MESSAGE to alice
    reach them over their own TLS connections (the flow they opened), with Via TLS and the TLS
    listener in Via and Contact (sips: for a sips: dialog, sip:;transport=tls otherwise)."""
    srv = tls_server
    tls = srv.tls_sip_port
    ctx = client_context(srv.cert)
    alice = tls_clients(tls, ctx, "alice", USERS["alice"])
    bob = tls_clients(tls, ctx, "bob", USERS["bob"])
    assert alice.version in ("TLSv1.2", "TLSv1.3"), alice.version

    reg = alice.request("REGISTER", "sips:localhost", headers={"Expires": "300"})
    assert reg.status == 200, reg
    assert top_via(reg).startswith("SIP/2.0/TLS "), reg
    assert f"sips:alice@{alice.local}" in (reg.get("contact") or ""), reg

    sub = bob.request("SUBSCRIBE", "sips:alice@localhost", to="sips:alice@localhost",
                      headers={"Event": "presence", "Expires": "300",
                               "Accept": "application/pidf+xml"})
    assert sub.status == 200, sub
    assert sub.get("contact") == f"<sips:127.0.0.1:{tls}>", sub
    first = bob.expect_request(notify_with("<basic>open</basic>"), "NOTIFY of registered alice")
    assert first.uri == f"sips:bob@{bob.local}", first
    assert top_via(first).startswith(f"SIP/2.0/TLS 127.0.0.1:{tls};"), first
    assert first.get("contact") == f"<sips:127.0.0.1:{tls}>", first

    note = unique("Desk over TLS")
    pub = alice.request("PUBLISH", "sip:alice@localhost",
                        headers={"Event": "presence", "Expires": "300",
                                 "Content-Type": "application/pidf+xml"},
                        body=pidf("sip:alice@localhost", "open", note=note))
    assert pub.status == 200 and pub.get("sip-etag"), pub
    bob.expect_request(notify_with(note), "NOTIFY with alice's note")

    # A dialog whose subscriber is sip: (not sips:) over TLS: our Contact says transport=tls.
    carol = tls_clients(tls, ctx, "carol", USERS["carol"])
    sub2 = carol.request("SUBSCRIBE", "sip:alice@localhost", to="sip:alice@localhost",
                         contact=f"sip:carol@{carol.local};transport=tls",
                         headers={"Event": "presence", "Expires": "300"})
    assert sub2.status == 200, sub2
    assert sub2.get("contact") == f"<sip:127.0.0.1:{tls};transport=tls>", sub2
    n2 = carol.expect_request(notify_with(note), "carol's NOTIFY")
    assert top_via(n2).startswith("SIP/2.0/TLS "), n2

    text = unique("hello over TLS")
    sent = bob.request("MESSAGE", "sip:alice@localhost", to="sip:alice@localhost",
                       headers={"Content-Type": "text/plain"}, body=text)
    assert sent.status == 200, sent
    got = alice.expect_request(lambda m: m.method == "MESSAGE" and m.text() == text,
                               "bob's MESSAGE on alice's TLS connection")
    assert top_via(got).startswith(f"SIP/2.0/TLS 127.0.0.1:{tls};"), got

    ping = alice.request("OPTIONS", "sips:localhost", authenticate=False)
    assert ping.status == 200, ping


def test_a_tls12_only_client_is_served(tls_server, tls_clients):
    """A client that cannot go past TLS 1.2 (older phones; pjsua2's OpenSSL 1.0.2) completes the
    handshake and registers: the listener keeps TLS 1.2 enabled."""
    ctx = client_context(tls_server.cert, max_tls12=True)
    alice = tls_clients(tls_server.tls_sip_port, ctx, "alice", USERS["alice"])
    assert alice.version == "TLSv1.2", alice.version
    reg = alice.request("REGISTER", "sip:localhost", headers={"Expires": "60"})
    assert reg.status == 200, reg


def raw_exchange(transport: str, port: int, data: bytes) -> bytes:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(5.0)
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        return s.recv(65536)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sips_request_over_a_hop_that_is_not_tls_is_refused_416(tls_server, transport):
    """A sips: Request-URI asks for TLS on every hop (RFC 3261 §26.2.2): over UDP or TCP it is
    refused with 416 before anything else (no challenge, no state), and the same request with a
    sip: Request-URI is served."""
    port = tls_server.sip_port
    for uri, status in (("sips:alice@localhost", b"416"), ("sip:alice@localhost", b"200")):
        branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        req = (
            f"OPTIONS {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:9;branch={branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:x@localhost>;tag=1\r\n"
            f"To: <{uri}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        answer = raw_exchange(transport, port, req)
        assert answer.startswith(b"SIP/2.0 " + status), (uri, answer)


# -- trusted call-control peers by client certificate --------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def make_certs(d: Path) -> dict[str, tuple[Path, Path]]:
    """A test CA and client certificates it issues: ``pbx`` (DNS pbx.example.com, listed),
    ``phone`` (DNS phone.example.com, not listed); and ``rogue``, self-signed for pbx.example.com
    (no CA behind it). Returns name -> (cert, key); the CA as ``ca``."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=presenced test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    certs = {"ca": (d / "ca.pem", d / "ca.key")}
    for name, dns in (("pbx", "pbx.example.com"), ("phone", "phone.example.com")):
        (d / f"{name}.ext").write_text(
            f"subjectAltName=DNS:{dns}\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={dns}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
        certs[name] = (d / f"{name}.pem", d / f"{name}.key")
    openssl("req", "-x509", *ec, "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2",
            "-subj", "/CN=pbx.example.com", "-addext", "subjectAltName=DNS:pbx.example.com", cwd=d)
    certs["rogue"] = (d / "rogue.pem", d / "rogue.key")
    return certs


@pytest.fixture
def cert_server(binary: Path, tmp_path: Path):
    certs = make_certs(tmp_path / "certs")
    srv = start_tls_server(binary, tmp_path / "server",
                           'trusted_peer_subjects = ["pbx.example.com"]',
                           f'client_ca_file = "{certs["ca"][0]}"')
    try:
        yield srv, certs
    finally:
        srv.stop()


def test_trusted_peer_by_client_certificate_publishes_line_state(cert_server, tls_clients):
    """With a client CA configured, phones without a certificate still register. A call-control
    peer whose CA-issued certificate names a listed subject (pbx.example.com) PUBLISHes alice's
    line state without credentials: 200, and bob's SIP watcher sees alice on the phone. The same
    PUBLISH from a CA-issued but unlisted certificate, or from no certificate, is challenged
    (401), and alice stays off the phone; a certificate the CA did not issue fails the handshake."""
    srv, certs = cert_server
    tls = srv.tls_sip_port
    plain = client_context(srv.cert)
    alice = tls_clients(tls, plain, "alice", USERS["alice"])
    reg = alice.request("REGISTER", "sip:localhost", headers={"Expires": "300"})
    assert reg.status == 200, reg
    bob = tls_clients(tls, plain, "bob", USERS["bob"])
    sub = bob.request("SUBSCRIBE", "sip:alice@localhost", to="sip:alice@localhost",
                      headers={"Event": "presence", "Expires": "300"})
    assert sub.status == 200, sub
    bob.expect_request(notify_with("<basic>open</basic>"), "NOTIFY of registered alice")

    line = pidf("sip:alice@localhost", "open", activity="<rpid:on-the-phone/>")
    publish = {"Event": "presence", "Expires": "300", "Content-Type": "application/pidf+xml"}

    for name in ("phone", None):
        ctx = client_context(srv.cert, cert=certs[name][0], key=certs[name][1]) if name else plain
        other = tls_clients(tls, ctx, name or "nocert")
        refused = other.request("PUBLISH", "sip:alice@localhost", headers=publish, body=line,
                                to="sip:alice@localhost")
        assert refused.status == 401, (name, refused)
    time.sleep(0.5)
    assert not any(m.method == "NOTIFY" and "on-the-phone" in m.text() for m in bob.received), (
        "an untrusted PUBLISH changed alice's line")

    with pytest.raises((ssl.SSLError, ConnectionError)):
        rogue = client_context(srv.cert, cert=certs["rogue"][0], key=certs["rogue"][1],
                               max_tls12=True)
        tls_clients(tls, rogue, "rogue")

    pbx_ctx = client_context(srv.cert, cert=certs["pbx"][0], key=certs["pbx"][1])
    pbx = tls_clients(tls, pbx_ctx, "pbx")
    accepted = pbx.request("PUBLISH", "sip:alice@localhost", headers=publish, body=line,
                           to="sip:alice@localhost")
    assert accepted.status == 200, accepted
    seen = bob.expect_request(notify_with("on-the-phone"), "NOTIFY of alice on the phone")
    assert "<basic>open</basic>" in seen.text(), seen


# -- pjsua2 over TLS ----------------------------------------------------------------------------


def buddy(uri: str, status: str):
    def pred(ev: dict) -> bool:
        return ev.get("ev") == "buddy" and ev.get("uri") == uri and ev.get("status") == status
    pred.__qualname__ = f"buddy({uri!r}, {status!r})"
    return pred


@pytest.fixture
def pj_tls(tls_server, tmp_path: Path):
    agents = PjAgents(tmp_path / "pjsua", tls_server.tls_sip_port, dict(USERS))
    try:
        yield tls_server, agents
    finally:
        agents.cleanup()


def test_pjsua2_softphones_over_tls(pj_tls):
    """Two pjsua2 softphones over TLS 1.2, verifying the server's generated certificate (the CA
    file is that certificate, the proxy host ``localhost`` its name): both register, publish
    online and watch each other as buddies (each sees the other online), and exchange MESSAGEs
    both ways (answered 200, delivered). Every request of theirs went over TLS (their logs)."""
    srv, agents = pj_tls
    env = {"PJ_TLS_CA": str(srv.cert)}
    alice = agents("alice", transport="tls", env=env)
    bob = agents("bob", transport="tls", env=env)
    for agent in (alice, bob):
        agent.do(cmd="status", state="online")
    alice.do(cmd="buddy", user="bob")
    bob.do(cmd="buddy", user="alice")
    alice.expect(buddy("sip:bob@localhost", "online"))
    bob.expect(buddy("sip:alice@localhost", "online"))

    for sender, receiver, to in ((bob, alice, "alice"), (alice, bob, "bob")):
        text = unique(f"{sender.user} to {to} over TLS")
        sender.do(cmd="im", user=to, text=text)
        status = sender.expect(ev="im_status")
        assert status["code"] == 200, sender.describe(f"MESSAGE to {to}: {status}")
        receiver.expect(lambda e, t=text: e.get("ev") == "im" and e.get("body") == t)

    for agent in (alice, bob):
        log = agent.log.read_text(errors="replace")
        for method in ("REGISTER", "PUBLISH", "SUBSCRIBE", "MESSAGE"):
            assert f"Request msg {method}/cseq=" in log, agent.describe(f"no {method} in the log")
        assert "SIP/2.0/TLS" in log and "SIP/2.0/UDP" not in log and "SIP/2.0/TCP" not in log, (
            agent.describe("a request went over something else than TLS"))
