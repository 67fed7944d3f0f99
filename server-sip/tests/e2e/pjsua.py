"""The test side of the pjsua2 softphone agent (``pjagent.py``): one :class:`PjAgent` is one
pjsua2 user agent in its own process, commanded with JSON lines on its stdin, reporting JSON
events on its stdout (see pjagent.py for both vocabularies).

pjsua2 is never imported into the pytest process: its Endpoint is a per-process singleton and a
misuse aborts the process (an uncaught C++ exception), which must not take pytest with it.

Every wait is bounded: :meth:`PjAgent.expect` gives up after ``timeout`` seconds and raises with
every event seen, the agent's stderr and the path of its pjsua log (every SIP message in full);
:meth:`PjAgent.quit` waits ``QUIT_TIMEOUT`` seconds and then kills the process by pid.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

AGENT = Path(__file__).resolve().parent / "pjagent.py"
#: seconds an expected event may take (a REGISTER or SUBSCRIBE is two round trips: 401, then 200)
WAIT = 10.0
#: seconds for the agent to start and report "ready" (pjsua2's libInit is quick)
READY_TIMEOUT = 15.0
#: seconds ``quit`` waits for the agent to unregister and exit (it takes about 1.6 s) before a kill
QUIT_TIMEOUT = 10.0
#: most characters of the agent's stderr quoted in a failure
STDERR_TAIL = 3000

Event = dict
Pred = Callable[[Event], bool]


class AgentError(AssertionError):
    """An expected event did not come (or the agent died): the message says what was seen."""


class PjAgent:
    """One pjsua2 agent process for ``user``; its files live in ``root``."""

    def __init__(self, user: str, password: str, sip_port: int, root: Path, *,
                 transport: str = "udp", env: dict[str, str] | None = None,
                 name: str | None = None) -> None:
        self.user = user
        self.name = name or f"{user}-{transport}"
        root.mkdir(parents=True, exist_ok=True)
        self.log = root / f"pjsua-{self.name}.log"
        self.stderr_path = root / f"agent-{self.name}.stderr"
        self.events: list[Event] = []  # every event received, in order
        self._cursor = 0               # events before it were consumed by expect()
        self._queue: queue.Queue[Event] = queue.Queue()
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(AGENT), user, password, str(sip_port), str(self.log), transport],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, name=f"pjagent-{self.name}", daemon=True)
        self._reader.start()

    # -- events --------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "raw", "line": line}
            self._queue.put(ev)
        self._queue.put({"ev": "eof"})

    def _drain(self, timeout: float) -> bool:
        """Moves queued events to ``events``, waiting up to ``timeout`` for the first."""
        try:
            self.events.append(self._queue.get(timeout=max(timeout, 0.0)))
        except queue.Empty:
            return False
        while True:
            try:
                self.events.append(self._queue.get_nowait())
            except queue.Empty:
                return True

    def expect(self, pred: Pred | None = None, timeout: float = WAIT, **fields) -> Event:
        """The first event after the last one ``expect`` returned that satisfies ``pred`` and has
        every given field (``ev="reg", code=200``); raises :class:`AgentError` after ``timeout``."""
        def match(ev: Event) -> bool:
            return all(ev.get(k) == v for k, v in fields.items()) and (pred is None or pred(ev))

        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._cursor, len(self.events)):
                if match(self.events[i]):
                    self._cursor = i + 1
                    return self.events[i]
            self._cursor = len(self.events)
            if any(ev.get("ev") == "eof" for ev in self.events):
                raise AgentError(self.describe(f"agent exited before {fields or pred}"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError(self.describe(f"no event {fields or ''} {pred or ''} within {timeout} s"))
            self._drain(left)

    def expect_none(self, pred: Pred | None = None, within: float = 1.5, **fields) -> None:
        """Asserts that no event satisfying ``pred`` and ``fields`` comes within ``within`` seconds
        (for something that must not happen)."""
        try:
            ev = self.expect(pred, within, **fields)
        except AgentError:
            return
        raise AgentError(self.describe(f"unexpected event {ev}"))

    def send(self, **cmd) -> None:
        """Writes one command line (``send(cmd="buddy", user="bob")``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def do(self, timeout: float = WAIT, **cmd) -> Event:
        """Sends a command and waits for the agent to accept it (its "ok" event)."""
        self.send(**cmd)
        ev = self.expect(lambda e: e.get("ev") in ("ok", "error") and e.get("cmd") == cmd["cmd"], timeout)
        if ev["ev"] == "error":
            raise AgentError(self.describe(f"command {cmd} failed: {ev}"))
        return ev

    # -- life ----------------------------------------------------------------------------------

    def ready(self, timeout: float = READY_TIMEOUT) -> "PjAgent":
        self.expect(ev="ready", timeout=timeout)
        return self

    def register(self, timeout: float = WAIT) -> Event:
        """Waits for the account's REGISTER to succeed (pjsua registers by itself at start)."""
        ev = self.expect(lambda e: e.get("ev") == "reg", timeout)
        if ev.get("code") != 200:
            raise AgentError(self.describe(f"REGISTER answered {ev}"))
        return ev

    def ask_quit(self) -> None:
        """Sends quit and closes stdin (the agent then unregisters and exits), without waiting."""
        if self.proc.poll() is None and self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.send(cmd="quit")
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass

    def quit(self) -> None:
        """Asks the agent to unregister and exit; kills it by pid if it takes over QUIT_TIMEOUT."""
        self.ask_quit()
        try:
            self.proc.wait(QUIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(QUIT_TIMEOUT)
        self._reader.join(QUIT_TIMEOUT)
        if not self._stderr.closed:
            self._stderr.close()

    def describe(self, what: str) -> str:
        try:
            err = self.stderr_path.read_text(errors="replace")[-STDERR_TAIL:]
        except OSError:
            err = ""
        events = "\n".join(f"  {json.dumps(e)}" for e in self.events)
        return (f"pjsua2 agent {self.name}: {what}\nevents:\n{events}\n"
                f"stderr (tail):\n{err}\npjsua log (every SIP message): {self.log}")


class PjAgents:
    """Makes :class:`PjAgent`s for one test against ``port``, each with its files under ``root``,
    and stops every one at teardown (``cleanup``)."""

    def __init__(self, root: Path, port: int | None = None, passwords: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = port
        self.passwords = passwords or {}
        self.agents: list[PjAgent] = []

    def __call__(self, user: str, *, password: str | None = None, transport: str = "udp",
                 port: int | None = None, env: dict[str, str] | None = None,
                 registered: bool = True) -> PjAgent:
        """A started agent for ``user``, ready and (unless ``registered=False``) registered."""
        target = port or self.port
        assert target, "no server port: use the pj_agents fixture with a server"
        pw = password if password is not None else self.passwords[user]
        n = len(self.agents) + 1
        agent = PjAgent(user, pw, target, self.root, transport=transport, env=env,
                        name=f"{n:02d}-{user}-{transport}")
        self.agents.append(agent)
        agent.ready()
        if registered:
            agent.register()
        return agent

    def cleanup(self) -> None:
        for agent in self.agents:  # all unregister at once (each takes about 1.6 s)
            agent.ask_quit()
        for agent in self.agents:
            agent.quit()
