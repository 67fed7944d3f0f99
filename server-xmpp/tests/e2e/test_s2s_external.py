"""Federation authenticated with certificates: SASL EXTERNAL (RFC 6120 §6.4 and §13.7.1.2, XEP-0178) between two
presenced that trust one CA (``[s2s] ca_file``), over STARTTLS and over direct TLS (XEP-0368), and dialback
(XEP-0220) where a certificate does not prove its domain.

The test makes its own CA and domain certificates with the openssl command line; each server uses its domain's
certificate as its TLS identity (``[xmpp] tls_cert``/``tls_key``), which it also shows to peers as its client
certificate on its outbound streams.
"""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import Server, free_port, write_config
from test_s2s import PASSWORD, Domain, subscribe_both_ways
from xmpp import run


@dataclass
class CertServer(Server):
    """A presenced whose TLS identity is a configured certificate chain (nothing is generated)."""

    chain_file: Path = Path()

    @property
    def cert(self) -> Path:
        return self.chain_file


class CaDomain(Domain):
    """A domain served with a CA-issued certificate (for ``cert_name``) and trusting ``ca``."""

    def __init__(self, binary: Path, root: Path, name: str, ca: "Ca", cert_name: str):
        root.mkdir()
        self.name = name
        self.s2s_port = free_port()
        self.ca = ca
        self.cert_name = cert_name
        self.key, self.chain = ca.issue(root, cert_name)
        self.server = CertServer(binary=binary, root=root, port=free_port(), chain_file=self.chain)

    def configure(self, routes: dict[str, Domain], deny: tuple[str, ...] = (), direct: bool = False) -> None:
        """``direct``: peers reach this server only on its direct-TLS port (XEP-0368), and it reaches them so."""
        scheme = "tls://" if direct else ""
        s2s = [
            f'{"tls_bind" if direct else "bind"} = "127.0.0.1:{self.s2s_port}"',
            'idle_timeout = "60s"',
            'connect_timeout = "5s"',
            f'ca_file = "{self.ca.cert}"',
            "[s2s.routes]",
            *(f'"{d.name}" = "{scheme}127.0.0.1:{d.s2s_port}"' for d in routes.values()),
        ]
        srv = self.server
        write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                     domain=self.name, xmpp=(f'tls_cert = "{self.chain}"', f'tls_key = "{self.key}"'),
                     s2s=tuple(s2s))
        for local in ("alice", "bob"):
            jid = f"{local}@{self.name}"
            out = srv.cli("user", "add", jid, "--password-stdin", stdin=PASSWORD + "\n")
            assert jid in out.stdout, out.stdout

    def client_tls(self) -> ssl.SSLContext:
        """Users trust the CA; a certificate issued to another name is accepted from their own server only
        because that test is about its peers' view of it."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca.cert))
        ctx.check_hostname = self.cert_name == self.name
        return ctx

    def log(self) -> str:
        return self.server.stderr_path.read_text(errors="replace")


class Ca:
    """A CA made with openssl, issuing server certificates whose only DNS-ID is the name asked for."""

    def __init__(self, root: Path):
        root.mkdir()
        self.root = root
        self.key = root / "ca.key"
        self.cert = root / "ca.pem"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=presenced test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")

    def issue(self, into: Path, name: str) -> tuple[Path, Path]:
        """A key and a chain file (leaf, then CA) for DNS name ``name``, usable by servers and clients."""
        key, csr, leaf, chain = (into / f"{name}.{ext}" for ext in ("key", "csr", "pem", "chain.pem"))
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        ext = into / f"{name}.ext"
        ext.write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth,clientAuth\n"
                       "keyUsage=critical,digitalSignature\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                "-out", leaf, "-days", "2", "-extfile", ext)
        chain.write_text(leaf.read_text() + self.cert.read_text())
        return key, chain


def openssl(*args) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"openssl {args[0]} failed: {done.stderr}"


def chat(a: Domain, b: Domain) -> None:
    """alice@a and bob@b subscribe to each other, see each other's presence and exchange messages."""

    async def scenario():
        alice = await a.connect("alice")
        bob = await b.connect("bob")
        try:
            await subscribe_both_ways(alice, bob)
            alice.xmpp.send_presence(pshow="away", pstatus="certified")
            seen = await bob.presence_from(a.jid("alice"), show="away")
            assert seen["status"] == "certified"
            alice.send_message(b.jid("bob"), "hello over EXTERNAL")
            msg = await bob.next_message("alice's message")
            assert msg["body"] == "hello over EXTERNAL" and msg["from"].bare == a.jid("alice")
            bob.send_message(a.jid("alice"), "hello back")
            msg = await alice.next_message("bob's message")
            assert msg["body"] == "hello back" and msg["from"].bare == b.jid("bob")
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run(scenario)


def start(*domains: Domain):
    started = []
    for d in domains:
        d.server.start()
        started.append(d)
    return started


def test_peers_with_certificates_from_a_trusted_ca_authenticate_with_sasl_external(binary: Path, tmp_path: Path):
    ca = Ca(tmp_path / "ca")
    a = CaDomain(binary, tmp_path / "a", "a.localhost", ca, "a.localhost")
    b = CaDomain(binary, tmp_path / "b", "b.localhost", ca, "b.localhost")
    a.configure({"b": b})
    b.configure({"a": a})
    started = []
    try:
        started = start(a, b)
        chat(a, b)
    finally:
        for d in started:
            d.server.stop()
    # Each server took the other's stream on its certificate alone, and opened its own with EXTERNAL.
    for here, there in ((a, b), (b, a)):
        log = here.log()
        assert f"inbound stream authenticated (SASL EXTERNAL) peer={there.name}" in log, log
        assert f"outbound stream authenticated domain={there.name} method=SASL EXTERNAL" in log, log
        assert "authenticated (dialback)" not in log, log


def test_sasl_external_over_direct_tls(binary: Path, tmp_path: Path):
    ca = Ca(tmp_path / "ca")
    a = CaDomain(binary, tmp_path / "a", "a.localhost", ca, "a.localhost")
    b = CaDomain(binary, tmp_path / "b", "b.localhost", ca, "b.localhost")
    a.configure({"b": b}, direct=True)
    b.configure({"a": a}, direct=True)
    started = []
    try:
        started = start(a, b)
        chat(a, b)
    finally:
        for d in started:
            d.server.stop()
    # The certificate shown in the direct-TLS handshake is the one EXTERNAL was offered for.
    for here, there in ((a, b), (b, a)):
        log = here.log()
        assert f"inbound stream authenticated (SASL EXTERNAL) peer={there.name}" in log, log
        assert f"outbound stream authenticated domain={there.name} method=SASL EXTERNAL" in log, log


def test_a_certificate_for_another_domain_falls_back_to_dialback(binary: Path, tmp_path: Path):
    ca = Ca(tmp_path / "ca")
    a = CaDomain(binary, tmp_path / "a", "a.localhost", ca, "a.localhost")
    # b.localhost shows a certificate from the trusted CA, but issued to another name.
    b = CaDomain(binary, tmp_path / "b", "b.localhost", ca, "wrong.localhost")
    a.configure({"b": b})
    b.configure({"a": a})
    started = []
    try:
        started = start(a, b)
        chat(a, b)
    finally:
        for d in started:
            d.server.stop()
    a_log, b_log = a.log(), b.log()
    # a.localhost is not offered EXTERNAL for b's certificate: b authenticated with dialback.
    assert "inbound stream authenticated (dialback) peer=b.localhost" in a_log, a_log
    assert "authenticated (SASL EXTERNAL) peer=b.localhost" not in a_log, a_log
    assert "outbound stream authenticated domain=a.localhost method=dialback" in b_log, b_log
    # a's own certificate is good, so its stream to b used EXTERNAL.
    assert "inbound stream authenticated (SASL EXTERNAL) peer=a.localhost" in b_log, b_log
    assert "outbound stream authenticated domain=b.localhost method=SASL EXTERNAL" in a_log, a_log


def raw_stream(port: int, ca: Ca, key: Path, chain: Path, claimed: str) -> ssl.SSLSocket:
    """A direct-TLS connection to a.localhost's s2s port showing the certificate ``chain``, opening a stream
    from ``claimed``; returns it after the stream features."""
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.load_cert_chain(str(chain), str(key))
    ctx.set_alpn_protocols(["xmpp-server"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname="a.localhost")
    tls.sendall(f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                f"xmlns:stream='http://etherx.jabber.org/streams' from='{claimed}' to='a.localhost' "
                f"version='1.0'>".encode())
    return tls


def read_until(tls: ssl.SSLSocket, end: bytes) -> bytes:
    got = b""
    while end not in got:
        chunk = tls.recv(4096)
        assert chunk, f"closed before {end!r}: {got!r}"
        got += chunk
    return got


def test_external_is_offered_only_for_the_certificates_domain_and_only_as_that_domain(binary: Path, tmp_path: Path):
    ca = Ca(tmp_path / "ca")
    a = CaDomain(binary, tmp_path / "a", "a.localhost", ca, "a.localhost")
    a.configure({}, direct=True)
    peer = tmp_path / "peer"
    peer.mkdir()
    key, chain = ca.issue(peer, "b.localhost")
    a.server.start()
    try:
        auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>%s</auth>"
        # A certificate for b.localhost, on a stream claiming c.localhost: no EXTERNAL, and asking anyway fails.
        with raw_stream(a.s2s_port, ca, key, chain, "c.localhost") as tls:
            features = read_until(tls, b"</stream:features>")
            assert b"EXTERNAL" not in features and b"dialback" in features, features
            tls.sendall(auth % b"=")
            reply = read_until(tls, b"</failure>")
            assert b"<not-authorized" in reply, reply
        # The same certificate claiming b.localhost: EXTERNAL offered, but not to act as another domain.
        with raw_stream(a.s2s_port, ca, key, chain, "b.localhost") as tls:
            features = read_until(tls, b"</stream:features>")
            assert b"<mechanism>EXTERNAL</mechanism>" in features, features
            tls.sendall(auth % base64.b64encode(b"c.localhost"))
            reply = read_until(tls, b"</failure>")
            assert b"<invalid-authzid" in reply, reply
            tls.sendall(auth % base64.b64encode(b"b.localhost"))
            reply = read_until(tls, b"/>")
            assert b"<success" in reply, reply
    finally:
        a.server.stop()
    assert "inbound stream authenticated (SASL EXTERNAL) peer=b.localhost" in a.log()
    assert "peer=c.localhost" not in a.log()
