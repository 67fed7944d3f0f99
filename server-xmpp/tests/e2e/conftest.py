"""Fixtures for the presenced end-to-end tests: binary, config, users, server process.

Everything that talks XMPP lives in ``xmpp.py``; this file only manages the server process.
Every wait here is bounded (see the ``*_TIMEOUT`` constants) so no test can hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import free_port, port_accepts  # noqa: E402,F401 (re-exported for the suites)
from xmpp import DOMAIN  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 20.0  # seconds for the server to accept TCP connections
STOP_TIMEOUT = 10.0  # seconds for a terminated server to exit
CLI_TIMEOUT = 30.0  # seconds for one `presenced user ...` command

#: The accounts every test server starts with: local part -> password.
USERS = {
    "alice": "alice-secret-1",
    "bob": "bob-secret-2",
    "carol": "carol-secret-3",
    "dave": "dave-secret-4",
}


def presenced_bin() -> Path:
    """The binary under test: $PRESENCED_BIN, else <repo>/target/release/presenced."""
    env = os.environ.get("PRESENCED_BIN")
    path = Path(env) if env else REPO / "target" / "release" / "presenced"
    return path.resolve()




def write_config(
    path: Path, data_dir: Path, port: int, sip_port: int, *, sip: tuple[str, ...] = (),
    tables: str = "", http_port: int | None = None, tls_port: int | None = None,
    xmpp: tuple[str, ...] = (), http_host: str = "127.0.0.1", http: tuple[str, ...] = (),
    s2s: tuple[str, ...] = (), domain: str = DOMAIN, **policy: bool,
) -> None:
    """The TOML config the tests use; only keys presenced knows (unknown keys are errors).

    The SIP listener gets its own free loopback port too, so it never needs the default 0.0.0.0:5060.
    The direct-TLS listener (XEP-0368) is on ``tls_port`` when given, else off, so it never needs the
    default 0.0.0.0:5223 either (parallel servers would collide there).
    Federation (``[s2s]``) listens only when ``s2s`` names a ``bind``: its default 0.0.0.0:5269 would be shared too;
    and it looks peers up in DNS only when ``s2s`` names a ``nameserver`` (the default is the system's).
    ``sip``, ``xmpp``, ``http`` and ``s2s`` add lines to those tables; ``tables`` is appended as further tables.
    The HTTP listener binds ``http_host`` (loopback unless a test needs another address).
    """
    lines = [
        f'domain = "{domain}"',
        f'data_dir = "{data_dir}"',
        "",
        "[xmpp]",
        f'c2s_bind = "127.0.0.1:{port}"',
        f'c2s_tls_bind = "127.0.0.1:{tls_port}"' if tls_port else 'c2s_tls_bind = "off"',
        *xmpp,
        "",
        "[http]",
        f'bind = "{http_host}:{http_port or free_port()}"',
        *http,
        "",
        "[sip]",
        f'bind = "127.0.0.1:{sip_port}"',
        # SIP over TLS defaults to 0.0.0.0:5061, which parallel servers would share: off unless a test asks.
        *(() if any(line.startswith("tls_bind") for line in sip) else ('tls_bind = "off"',)),
        *sip,
        "",
        "[s2s]",
        *(() if any(line.startswith("bind") for line in s2s) else ('bind = "off"',)),
        # Federation finds peers by DNS by default (the system's resolv.conf): tests ask no DNS but their own.
        *(() if any(line.startswith("nameserver") for line in s2s) else ('nameserver = "off"',)),
        *s2s,
    ]
    if policy:
        lines += ["", "[policy]"]
        lines += [f"{k} = {'true' if v else 'false'}" for k, v in policy.items()]
    if tables:
        lines += ["", tables.strip()]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Server:
    """One presenced instance: its files, port and (while running) its process."""

    binary: Path
    root: Path
    port: int
    http_port: int = field(default_factory=free_port)
    #: The direct-TLS (XEP-0368) port, when the config opens one (the ``server`` fixture's does).
    tls_port: int | None = None
    users: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    starts: int = 0
    #: Extra environment variables for `serve` (e.g. PRESENCED_FAULT_FILE); the CLI does not get them.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "presenced.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def cert(self) -> Path:
        """The self-signed certificate presenced generates on first start (no tls_cert configured)."""
        return self.data_dir / "tls" / "cert.pem"

    @property
    def stderr_path(self) -> Path:
        return self.root / f"server-{self.starts}.stderr"

    def jid(self, local: str) -> str:
        return f"{local}@{DOMAIN}"

    # -- the CLI ---------------------------------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Runs `presenced --config <cfg> ARGS...`; fails the test with its output when it fails."""
        cmd = [str(self.binary), "--config", str(self.config), *args]
        done = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=CLI_TIMEOUT
        )
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def add_user(self, local: str, password: str) -> None:
        """Creates an account; the password goes through stdin, never the command line."""
        out = self.cli("user", "add", self.jid(local), "--password-stdin", stdin=password + "\n")
        assert self.jid(local) in out.stdout, out.stdout
        self.users[local] = password

    def list_users(self) -> list[str]:
        return self.cli("user", "list").stdout.split()

    # -- the process -----------------------------------------------------------------------------

    def _stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.stderr_path}: {e}>"

    def start(self) -> None:
        """Starts `presenced --config cfg serve` and waits until the port accepts TCP connections.

        Fails (not errors out) with the server's exit status and stderr when it exits early or does
        not listen within START_TIMEOUT seconds.
        """
        assert self.proc is None, "server already running"
        self.starts += 1
        stderr = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [str(self.binary), "--config", str(self.config), "serve"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env={**os.environ, "RUST_BACKTRACE": "1", **self.env},
            )
        finally:
            stderr.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                pytest.fail(
                    f"presenced serve exited with status {code} before listening on "
                    f"127.0.0.1:{self.port}; its output (stderr and stdout):\n{self._stderr()}"
                )
            if port_accepts(self.port):
                break
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"presenced serve did not accept TCP connections on 127.0.0.1:{self.port} "
                    f"within {START_TIMEOUT:.0f} s; its output (stderr and stdout):\n{self._stderr()}"
                )
            time.sleep(0.1)
        # The certificate must exist by the time the listener is up (generated before binding).
        if not self.cert.is_file():
            pytest.fail(
                f"presenced listens but generated no certificate at {self.cert}; "
                f"its stderr:\n{self._stderr()}"
            )

    def stop(self) -> int | None:
        """Graceful stop: SIGTERM, then SIGKILL after STOP_TIMEOUT seconds.

        Returns the exit status (negative: killed by that signal), None if it was not running.
        """
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        return proc.returncode

    def kill(self) -> None:
        """Crash stop: SIGKILL (kill -9), no chance to flush anything."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)

    def restart_after_kill(self) -> None:
        """kill -9, then start again on the same data dir and port."""
        self.kill()
        self.start()


@pytest.fixture(scope="session")
def binary() -> Path:
    path = presenced_bin()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"presenced binary not found at {path}: run `cargo build --release --bin presenced` "
            "or set PRESENCED_BIN"
        )
    return path


@pytest.fixture
def server_files(binary: Path, tmp_path: Path) -> Server:
    """A configured, not yet started server with the USERS accounts created.

    Accounts are created before `serve` starts, since the CLI and the server share one database.
    """
    srv = Server(binary=binary, root=tmp_path, port=free_port(), tls_port=free_port())
    write_config(srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
                 tls_port=srv.tls_port)
    for local, password in USERS.items():
        srv.add_user(local, password)
    return srv


@pytest.fixture
def server(server_files: Server):
    """A running server (function scope: each test gets a fresh data dir and port)."""
    server_files.start()
    try:
        yield server_files
    finally:
        server_files.stop()


# -- a skipped test fails the run ----------------------------------------------------------------
#
# These suites exist to prove the real binary works with real clients. A test that skips (a
# pytest.skip in a fixture, a missing tool or binary handled by skipping, a skip mark left in)
# proves nothing, yet pytest's exit status would still be 0 and scripts/test would pass. So any
# skip turns a passing run into a failing one. Registered as conftest hooks (pytest.ini cannot
# express this); the SIP suite's conftest re-exports them.

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # An expected failure is reported as skipped too, with `wasxfail`; only real skips count.
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _skipped:
        terminalreporter.write_sep("=", "skipped tests fail this suite", red=True)
        for nodeid in _skipped:
            terminalreporter.write_line(f"SKIPPED (counts as a failure): {nodeid}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
