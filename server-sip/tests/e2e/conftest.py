"""Fixtures for the SIP end-to-end tests: a running ``presenced`` with its SIP listener, and sipp.

The server process management (config file, accounts through the CLI, start, stop) is the XMPP
suite's (``server-xmpp/tests/e2e/conftest.py``), loaded here under its own module name; this file
adds the SIP port and waits for it. Every wait is bounded (the ``*_TIMEOUT`` constants).
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
XMPP_E2E = REPO / "server-xmpp" / "tests" / "e2e"

sys.path.insert(0, str(HERE))
sys.path.insert(1, str(XMPP_E2E))


def _load_xmpp_conftest():
    # Loaded under another name than "conftest" so it never clashes with this file's module.
    name = "presenced_xmpp_e2e_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, XMPP_E2E / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_xmpp = _load_xmpp_conftest()
USERS: dict[str, str] = _xmpp.USERS
free_port = _xmpp.free_port
presenced_bin = _xmpp.presenced_bin
write_config = _xmpp.write_config
# A skipped test fails the run here too (why: the XMPP suite's conftest, where these hooks live).
pytest_runtest_logreport = _xmpp.pytest_runtest_logreport
pytest_terminal_summary = _xmpp.pytest_terminal_summary
pytest_sessionfinish = _xmpp.pytest_sessionfinish

from pjsua import PjAgents  # noqa: E402
from sipp import Sipp, sipp_path  # noqa: E402

SIP_READY_TIMEOUT = 20.0  # seconds for the SIP port to answer OPTIONS (UDP) and accept TCP


def sip_options(port: int, transport: str = "udp", timeout: float = 1.0) -> bytes | None:
    """Sends one OPTIONS to 127.0.0.1:port; the first bytes answered (None on no answer)."""
    branch = "z9hG4bK-ready-" + uuid.uuid4().hex[:12]
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind(("127.0.0.1", 0))
        if transport == "tcp":
            s.connect(("127.0.0.1", port))
        lport = s.getsockname()[1]
        msg = (
            f"OPTIONS sip:localhost SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:{lport};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:ready@localhost>;tag=ready\r\n"
            f"To: <sip:localhost>\r\n"
            f"Call-ID: ready-{branch}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()
        if transport == "udp":
            s.sendto(msg, ("127.0.0.1", port))
        else:
            s.sendall(msg)
        return s.recv(65535)
    except OSError:
        return None
    finally:
        s.close()


@dataclass
class SipServer(_xmpp.Server):
    """A presenced whose config has a SIP listener on 127.0.0.1:``sip_port``."""

    sip_port: int = 0

    def start(self) -> None:
        super().start()  # waits for the XMPP port (and the certificate)
        deadline = time.monotonic() + SIP_READY_TIMEOUT
        ready = {"udp": False, "tcp": False}
        while not all(ready.values()):
            for transport in ready:
                if not ready[transport]:
                    answer = sip_options(self.sip_port, transport, timeout=0.5)
                    ready[transport] = bool(answer and answer.startswith(b"SIP/2.0 "))
            if all(ready.values()):
                break
            code = self.proc.poll() if self.proc else None
            if code is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"presenced did not answer OPTIONS on 127.0.0.1:{self.sip_port} "
                    f"(udp answered: {ready['udp']}, tcp answered: {ready['tcp']}) within "
                    f"{SIP_READY_TIMEOUT:.0f} s (exit status {code}); its output:\n{self._stderr()}"
                )
            time.sleep(0.1)


def make_server(binary: Path, root: Path, *, trusted: bool = False, tables: str = "",
                **policy: bool) -> SipServer:
    """A configured server with the test users, not started. ``trusted`` makes 127.0.0.1 a trusted
    call-control peer (``[sip] trusted_peers``); ``tables`` are further config tables."""
    srv = SipServer(binary=binary, root=root, port=free_port(), sip_port=free_port(udp_too=True))
    root.mkdir(parents=True, exist_ok=True)
    sip = ('trusted_peers = ["127.0.0.1"]',) if trusted else ()
    write_config(srv.config, srv.data_dir, srv.port, srv.sip_port, sip=sip, tables=tables,
                 http_port=srv.http_port, **policy)
    for local, password in USERS.items():
        srv.add_user(local, password)
    return srv


def running(srv: SipServer):
    """Starts ``srv`` for a fixture to yield, and stops it afterwards."""
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def binary() -> Path:
    path = presenced_bin()
    if not path.is_file():
        pytest.fail(
            f"presenced binary not found at {path}: run `cargo build --bin presenced` and set "
            "PRESENCED_BIN"
        )
    return path


@pytest.fixture(scope="session", autouse=True)
def _sipp_installed() -> None:
    if sipp_path() is None:
        pytest.fail("sipp not found on PATH: install the sip-tester package (or set SIPP_BIN)")


@pytest.fixture
def server(binary: Path, tmp_path: Path):
    """A running server with the default policy (auto authorization, offline storage)."""
    yield from running(make_server(binary, tmp_path / "server"))


@pytest.fixture
def server_no_offline(binary: Path, tmp_path: Path):
    """A running server with ``[policy] offline_storage = false``."""
    yield from running(make_server(binary, tmp_path / "server", offline_storage=False))


@pytest.fixture
def server_offline(binary: Path, tmp_path: Path):
    """A running server with ``[policy] offline_storage = true``."""
    yield from running(make_server(binary, tmp_path / "server", offline_storage=True))


class SippFactory:
    """Makes :class:`Sipp` runs for one test, each in its own directory, and kills what is left."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs: list[Sipp] = []
        self.port: int | None = None

    def __call__(
        self, scenario: str, user: str | None = None, *, password: str | None = None,
        transport: str = "udp", port: int | None = None, **kw,
    ) -> Sipp:
        target_port = port or self.port
        assert target_port, "no server port: use the sipp fixture with a server"
        n = len(self.runs) + 1
        name = kw.pop("name", None) or f"{n:02d}-{scenario}-{user or 'anon'}-{transport}"
        if user is not None and password is None:
            password = USERS.get(user)
        run = Sipp(
            target_port, scenario, self.root / name, transport=transport, user=user,
            password=password, name=name, **kw,
        )
        self.runs.append(run)
        return run

    def cleanup(self) -> None:
        for run in self.runs:
            if run.proc is not None and run.result is None:
                run.stop()


@pytest.fixture
def sipp_factory(tmp_path: Path):
    factory = SippFactory(tmp_path / "sipp")
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def sipp(sipp_factory: SippFactory, server: SipServer) -> SippFactory:
    """Makes sipp runs against the default ``server``."""
    sipp_factory.port = server.sip_port
    return sipp_factory


@pytest.fixture
def pj_factory(tmp_path: Path):
    """Makes pjsua2 softphone agents (pjsua.py) for one test, with their logs under the test's
    tmp dir, and stops every one at teardown; set ``.port`` to the server's SIP port."""
    factory = PjAgents(tmp_path / "pjsua", passwords=USERS)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def pj_agents(server: SipServer, pj_factory: PjAgents) -> PjAgents:
    """Makes pjsua2 agents against the default ``server``: ``pj_agents("alice")`` is alice's
    softphone, started, registered over UDP (``transport="tcp"|"tls"`` for the others)."""
    # server comes first among the arguments so that it is set up first and stopped last: the
    # agents unregister from a live server at teardown
    pj_factory.port = server.sip_port
    return pj_factory
