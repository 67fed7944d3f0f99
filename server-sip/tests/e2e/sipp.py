"""A small runner for the third-party SIP client SIPp (`sipp`, Debian package `sip-tester`).

One :class:`Sipp` is one sipp process running one call (``-m 1``) of one scenario from
``scenarios/`` against the server, in its own working directory, with its message trace
(``-trace_msg``) and error log (``-trace_err``) there. It runs either in the foreground
(:meth:`Sipp.run`) or in the background (:meth:`Sipp.start`, then :meth:`Sipp.wait`), e.g. for the
side that receives a NOTIFY or a MESSAGE. A scenario tells the test that it reached a point (say,
"registered") by creating a flag file, ``<exec command="touch [flag]"/>``; :meth:`Sipp.wait_flag`
waits for it.

Every wait is bounded: sipp itself gets ``-timeout`` (the whole run) and every scenario ``recv``
has a ``timeout``, and the Python side kills the process if it outlives its deadline, so no test
can hang. A failing run's :meth:`SippResult.describe` shows the command, exit status, sipp's error
log and every SIP message it sent and received.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SIPP = os.environ.get("SIPP_BIN", "sipp")
DOMAIN = "localhost"
#: Seconds sipp may run (its own ``-timeout``); the Python side allows a little more.
RUN_TIMEOUT = 20.0
#: Extra seconds beyond ``-timeout`` before the Python side kills sipp.
KILL_GRACE = 10.0
#: Seconds a test waits for a flag file from a background sipp.
FLAG_TIMEOUT = 15.0
#: Most characters of sipp's stdout screen quoted in a failure description.
SCREEN_TAIL = 3000

TRANSPORTS = {"udp": "u1", "tcp": "t1"}

# sipp's exit statuses (sipp(1)): 0 all calls succeeded, 1 a call failed, 97 exit on an internal
# command, 99 normal exit without a call, 255 (-1) fatal error, 254 (-2) fatal error binding a socket.
EXIT_MEANING = {
    0: "all calls succeeded",
    1: "the call failed (unexpected message, failed check, timeout)",
    97: "exit on internal command",
    99: "exited without processing a call",
    253: "fatal error (-3)",
    254: "fatal error binding a socket",
    255: "fatal error",
}


def sipp_path() -> str | None:
    return shutil.which(SIPP)


def free_local_port() -> int:
    """A port on 127.0.0.1 free for both UDP and TCP a moment ago (sipp binds both for t1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found on 127.0.0.1")


# -- SIP messages from sipp's message trace ----------------------------------------------------


@dataclass
class SipMessage:
    """One SIP message from the trace: whether sipp sent or received it, start line, headers, body."""

    sent: bool
    transport: str
    raw: str
    start: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""

    # Compact header forms (RFC 3261 §7.3.3, RFC 3265 §7.2) -> full names, lower case.
    COMPACT = {
        "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
        "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
        "o": "event", "u": "allow-events",
    }

    @classmethod
    def parse(cls, sent: bool, transport: str, raw: str) -> "SipMessage":
        msg = cls(sent=sent, transport=transport, raw=raw)
        head, sep, body = raw.replace("\r\n", "\n").partition("\n\n")
        msg.body = body if sep else ""
        lines = head.lstrip("\n").split("\n")
        msg.start = lines[0].strip() if lines else ""
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and msg.headers:  # folded continuation line
                name, value = msg.headers[-1]
                msg.headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                msg.headers.append((cls.COMPACT.get(name, name), value.strip()))
        return msg

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int | None:
        if not self.is_response:
            return None
        try:
            return int(self.start.split()[1])
        except (IndexError, ValueError):
            return None

    @property
    def method(self) -> str:
        """The request's method, or the CSeq method of a response."""
        if self.is_response:
            cseq = self.header("cseq") or ""
            return cseq.split()[-1] if cseq.split() else ""
        return self.start.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive name), or None."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def __str__(self) -> str:
        return self.raw


_ENTRY = re.compile(
    r"^-{10,} [^\n]*\n"
    r"(?P<transport>[A-Z]+) message (?P<dir>sent|received)[^\n]*\n\n",
    re.MULTILINE,
)


def parse_trace(text: str) -> list[SipMessage]:
    """Splits sipp's ``-trace_msg`` file into messages, in order."""
    matches = list(_ENTRY.finditer(text))
    out = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        raw = text[m.end():end]
        out.append(SipMessage.parse(m["dir"] == "sent", m["transport"], raw.rstrip("\n") + "\n"))
    return out


# -- one sipp run ------------------------------------------------------------------------------


@dataclass
class SippResult:
    name: str
    cmd: list[str]
    returncode: int | None
    workdir: Path
    timed_out: bool = False

    def _read(self, fname: str) -> str:
        try:
            return (self.workdir / fname).read_text(errors="replace")
        except OSError:
            return ""

    @property
    def errors(self) -> str:
        return self._read("errors.log")

    @property
    def trace(self) -> str:
        return self._read("messages.log")

    @property
    def logs(self) -> str:
        return self._read("logs.log")

    @property
    def screen(self) -> str:
        return self._read("stdout.txt")

    @property
    def messages(self) -> list[SipMessage]:
        return parse_trace(self.trace)

    def received(self, method: str | None = None, status: int | None = None) -> list[SipMessage]:
        """Messages sipp received, optionally only requests of ``method`` / responses ``status``."""
        out = [m for m in self.messages if not m.sent]
        if method is not None:
            out = [m for m in out if not m.is_response and m.method == method]
        if status is not None:
            out = [m for m in out if m.status == status]
        return out

    def sent(self, method: str | None = None) -> list[SipMessage]:
        out = [m for m in self.messages if m.sent]
        if method is not None:
            out = [m for m in out if not m.is_response and m.method == method]
        return out

    def responses(self, method: str | None = None) -> list[SipMessage]:
        """Responses sipp received (to its requests), optionally to ``method`` only."""
        out = [m for m in self.messages if not m.sent and m.is_response]
        if method is not None:
            out = [m for m in out if m.method == method]
        return out

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        rc = self.returncode
        meaning = EXIT_MEANING.get(rc if rc is None or rc >= 0 else rc & 0xFF, "")
        parts = [
            f"sipp run {self.name!r} in {self.workdir}",
            "command: " + " ".join(self.cmd),
            f"exit status: {rc}" + (f" ({meaning})" if meaning else "")
            + (" -- killed by the test after its deadline" if self.timed_out else ""),
            "--- sipp error log (-trace_err) ---",
            # sipp writes its entries without line breaks between them
            re.sub(r"(?<!^)(?<!\n)(\d{4}-\d\d-\d\d\t)", r"\n\1", self.errors.strip()) or "<empty>",
        ]
        if self.logs.strip():
            parts += ["--- scenario log actions (-trace_logs) ---", self.logs.strip()]
        parts += ["--- SIP messages sipp sent (>>>) and received (<<<) ---"]
        msgs = self.messages
        if not msgs:
            parts.append("<none>")
        for m in msgs:
            arrow = ">>>" if m.sent else "<<<"
            parts.append(f"{arrow} {m.transport} {'sent' if m.sent else 'received'}\n{m.raw.rstrip()}")
        screen = self.screen.strip()
        if screen:
            parts += ["--- end of sipp's screen (stdout/stderr) ---", screen[-SCREEN_TAIL:]]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.describe()


class Sipp:
    """One sipp process (one call of one scenario) against the server on 127.0.0.1:``server_port``.

    ``keys`` become ``-key NAME VALUE`` (``[NAME]`` in the scenario); ``user`` is also ``[user]``
    and, with ``password``, the digest credentials of ``[authentication]`` (``-au``/``-ap``);
    ``auth_user`` overrides the digest user name. ``flag`` names the flag file the scenario creates
    (passed as ``[flag]``; wait for it with :meth:`wait_flag`). ``ooc`` names the out-of-call scenario
    (``-oocsf``) that handles requests with an unknown Call-ID, e.g. a MESSAGE the server forks
    to a registered binding.
    """

    def __init__(
        self,
        server_port: int,
        scenario: str,
        workdir: Path,
        *,
        transport: str = "udp",
        user: str | None = None,
        password: str | None = None,
        auth_user: str | None = None,
        keys: dict[str, str] | None = None,
        ooc: str | None = None,
        timeout: float = RUN_TIMEOUT,
        name: str | None = None,
        local_port: int | None = None,
        flag: str | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {sorted(TRANSPORTS)}, not {transport!r}")
        self.server_port = server_port
        self.scenario = scenario
        self.transport = transport
        self.name = name or scenario
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=False)
        self.timeout = timeout
        self.local_port = local_port or free_local_port()
        self.proc: subprocess.Popen | None = None
        self.result: SippResult | None = None
        self._deadline = 0.0

        all_keys = {"domain": DOMAIN}
        if user is not None:
            all_keys["user"] = user
        if flag is not None:
            all_keys["flag"] = self.flag(flag)
        all_keys.update(keys or {})
        cmd = [
            sipp_path() or SIPP,
            f"127.0.0.1:{server_port}",
            "-sf", str(SCENARIOS / f"{scenario}.xml"),
            "-m", "1",
            "-t", TRANSPORTS[transport],
            "-i", "127.0.0.1",
            "-p", str(self.local_port),
            # The whole run is bounded; a run that hits it counts as failed.
            "-timeout", f"{int(timeout)}s",
            "-timeout_error",
            # No keyboard, and no default behaviours (no BYE/CANCEL sent when a call aborts).
            "-nostdin",
            "-nd",
            "-trace_err", "-error_file", str(self.workdir / "errors.log"),
            "-trace_msg", "-message_file", str(self.workdir / "messages.log"),
            "-trace_logs", "-log_file", str(self.workdir / "logs.log"),
        ]
        if ooc:
            cmd += ["-oocsf", str(SCENARIOS / f"{ooc}.xml")]
        if user is not None and password is not None:
            cmd += ["-au", auth_user or user, "-ap", password]
        for k, v in all_keys.items():
            cmd += ["-key", k, str(v)]
        self.cmd = cmd

    # -- flags ---------------------------------------------------------------------------------

    def flag(self, name: str) -> str:
        """The path of flag file ``name`` in the working directory (pass it with keys)."""
        return str(self.workdir / f"{name}.flag")

    def wait_flag(self, name: str, timeout: float = FLAG_TIMEOUT) -> None:
        """Waits until the scenario created flag ``name``; AssertionError (with the run so far)
        if sipp exits first or the flag does not appear within ``timeout`` seconds."""
        path = Path(self.flag(name))
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc is not None and self.proc.poll() is not None:
                result = self.wait(1)
                if path.exists():
                    return
                raise AssertionError(
                    f"sipp exited before reaching {name!r}:\n{result.describe()}"
                )
            if time.monotonic() > deadline:
                result = self.stop()
                raise AssertionError(
                    f"sipp did not reach {name!r} within {timeout:.0f} s:\n{result.describe()}"
                )
            time.sleep(0.05)

    # -- the process ---------------------------------------------------------------------------

    def start(self) -> "Sipp":
        assert self.proc is None, "already started"
        out = open(self.workdir / "stdout.txt", "wb")
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: exec'd helpers die with it
            )
        finally:
            out.close()
        self._deadline = time.monotonic() + self.timeout + KILL_GRACE
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Waits for sipp to exit (at most ``timeout`` s, else until its own deadline) and returns
        the result; kills it if it is still running then."""
        if self.result is not None:
            return self.result
        assert self.proc is not None, "not started"
        limit = self._deadline - time.monotonic()
        if timeout is not None:
            limit = min(limit, timeout)
        timed_out = False
        try:
            self.proc.wait(timeout=max(limit, 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill()
        self.result = SippResult(self.name, self.cmd, self.proc.returncode, self.workdir, timed_out)
        return self.result

    def run(self) -> SippResult:
        """Runs to completion in the foreground."""
        return self.start().wait()

    def stop(self) -> SippResult:
        """Ends a background run now (SIGKILL to its process group) and returns what it saw."""
        if self.result is not None:
            return self.result
        if self.proc is None:
            self.result = SippResult(self.name, self.cmd, None, self.workdir)
            return self.result
        timed_out = self.proc.poll() is None
        if timed_out:
            self._kill()
        self.result = SippResult(self.name, self.cmd, self.proc.returncode, self.workdir, timed_out)
        return self.result

    def _kill(self) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def expect_ok(*results: SippResult) -> None:
    """Asserts every run succeeded; the failure message shows what each failing sipp saw."""
    bad = [r for r in results if not r.ok]
    if bad:
        raise AssertionError("\n\n".join(r.describe() for r in bad))
