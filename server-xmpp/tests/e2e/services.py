"""Third-party services the end-to-end tests start for themselves: PostgreSQL, NATS, Radicale (CalDAV) and OpenLDAP.

Each is a context manager that starts its server on a free loopback port in a temporary directory and
stops it by its pid on the way out; every wait is bounded. As in the Rust harness
(examples/tests/common/postgres.rs), PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root, so
as root they run as the ``postgres`` user through ``runuser`` on a directory handed to that user. A
missing installation fails with a message naming the Debian package to install; nothing is skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

START_TIMEOUT = 60.0  # seconds for a service to accept connections
STOP_TIMEOUT = 20.0  # seconds for a stopped service to exit


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Test ports come from below the ephemeral range, never from it. Why: a port the kernel picked for
# `bind(0)` and we then released is fair game for the next *outgoing* connection's local port (every
# client socket of every test draws from that range), so a server told to listen on it could find it
# taken (EADDRINUSE) in between. Below the range only explicit binds compete, and this process hands
# each port out once; the starting point differs per process so two suites side by side rarely meet.
_PORT_LOW = 15000
_PORT_HIGH = max(_PORT_LOW + 1000, min(_ephemeral_floor(), 32768))
_next_port = _PORT_LOW + (os.getpid() * 7919) % (_PORT_HIGH - _PORT_LOW)


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(udp_too: bool = False) -> int:
    """A TCP port on 127.0.0.1 (and UDP too if ``udp_too``) that is free, outside the ephemeral range,
    and not handed out before by this process."""
    global _next_port
    span = _PORT_HIGH - _PORT_LOW
    for _ in range(span):
        port = _next_port
        _next_port = _PORT_LOW + (_next_port + 1 - _PORT_LOW) % span
        if _bindable(port, socket.SOCK_STREAM) and (
            not udp_too or _bindable(port, socket.SOCK_DGRAM)
        ):
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {_PORT_LOW}..{_PORT_HIGH}")


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_pid(pid: int, sig: int, proc: subprocess.Popen | None) -> None:
    """Sends ``sig`` to ``pid`` and waits for it (then for ``proc``) to exit; SIGKILL after STOP_TIMEOUT."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            if proc is None:
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


class Postgres:
    """A throwaway PostgreSQL server: ``with Postgres() as pg: url = pg.url("mydb")``."""

    def __init__(self) -> None:
        self.bin = self._bin_dir()
        self.as_postgres = os.geteuid() == 0
        self.port = free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def _bin_dir() -> Path:
        found = sorted(
            (int(Path(d).parent.name), Path(d))
            for d in glob.glob("/usr/lib/postgresql/*/bin")
            if Path(d).parent.name.isdigit() and (Path(d) / "initdb").exists()
        )
        if not found:
            raise RuntimeError(
                "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the "
                "Debian package `postgresql` (scripts/test installs it)"
            )
        return found[-1][1]

    def _cmd(self, program: str, *args: str) -> list[str]:
        path = str(self.bin / program)
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return [*prefix, path, *args]

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def log(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace") if self.dir else ""
        except OSError as e:
            return f"<no log: {e}>"

    def __enter__(self) -> "Postgres":
        self.dir = Path(tempfile.mkdtemp(prefix="pg"))
        try:
            if self.as_postgres:
                shutil.chown(self.dir, "postgres", "postgres")
            init = subprocess.run(
                self._cmd("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8", "--no-locale"),
                capture_output=True, text=True, timeout=120,
            )
            if init.returncode != 0:
                raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def start(self) -> None:
        """Starts the server on the initialised data directory and waits until it accepts connections."""
        assert self.proc is None, "already running"
        with open(self.dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                self._cmd("postgres", "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"postgres exited with {code}:\n{self.log()}")
            if port_accepts(self.port) and self.psql("postgres", "SELECT 1", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not accept connections in {START_TIMEOUT:.0f} s:\n{self.log()}")
            time.sleep(0.1)

    def psql(self, db: str, sql: str, *, check: bool = True) -> subprocess.CompletedProcess:
        """Runs ``sql`` in database ``db`` as the superuser; tuples only, unaligned."""
        psql = self.bin / "psql"
        done = subprocess.run(
            [str(psql) if psql.exists() else "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", db, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr}")
        return done

    def url(self, dbname: str | None = None) -> str:
        """Creates a database (``dbname``, or a unique name) and returns its URL."""
        name = dbname or f"e2e_{uuid.uuid4().hex[:12]}"
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, by its pid), waiting until it has exited."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        pid = self._postmaster_pid() or proc.pid
        _stop_pid(pid, signal.SIGINT, proc)

    def _cleanup(self) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __exit__(self, *exc) -> None:
        self._cleanup()


class Nats:
    """A throwaway NATS server: ``with Nats() as nats: nats.url``."""

    def __init__(self, *, jetstream: bool = False) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            raise RuntimeError("nats-server not found: install the Debian package `nats-server` (scripts/test installs it)")
        self.binary = binary
        self.jetstream = jetstream
        self.port = free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return (self.dir / "nats.log").read_text(errors="replace") if self.dir else ""
        except OSError as e:
            return f"<no log: {e}>"

    def __enter__(self) -> "Nats":
        self.dir = Path(tempfile.mkdtemp(prefix="nats"))
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.dir / "js")]
        with open(self.dir / "nats.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = self.log()
                self.__exit__()
                raise RuntimeError(f"nats-server did not start on port {self.port}:\n{log_text}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            _stop_pid(proc.pid, signal.SIGTERM, proc)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class Radicale:
    """A throwaway Radicale CalDAV server (PyPI ``radicale``, from requirements.txt) with htpasswd ``plain``
    auth, where every authenticated account may read and write every collection (``rights.type =
    authenticated``), so one service account reads everyone's calendar:
    ``with Radicale({"svc": "pw"}) as dav: dav.make_calendar("alice")``.

    It creates neither a user's collection nor a calendar for someone who never logged in, so
    :meth:`make_calendar` makes both with MKCOL/MKCALENDAR. ``stop()``/``start()`` take it down and back on the
    same port and storage, for outage tests.
    """

    def __init__(self, accounts: dict[str, str]) -> None:
        try:
            import radicale  # noqa: F401  (only to fail early with a useful message)
        except ImportError as e:
            raise RuntimeError(
                "radicale not installed: pip install -r server-xmpp/tests/e2e/requirements.txt "
                "(scripts/test installs it)"
            ) from e
        self.accounts = dict(accounts)
        self.port = free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return (self.dir / "radicale.log").read_text(errors="replace") if self.dir else ""
        except OSError as e:
            return f"<no log: {e}>"

    def __enter__(self) -> "Radicale":
        self.dir = Path(tempfile.mkdtemp(prefix="radicale"))
        (self.dir / "users").write_text("".join(f"{u}:{p}\n" for u, p in self.accounts.items()))
        (self.dir / "config").write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {self.dir / 'users'}\n"
            "htpasswd_encryption = plain\n"
            # No delay after a failed login: the tests check that wrong credentials are refused.
            "delay = 0\n"
            "[rights]\n"
            "type = authenticated\n"
            "[storage]\n"
            f"filesystem_folder = {self.dir / 'collections'}\n"
            "[logging]\n"
            "level = info\n"
        )
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self) -> None:
        """Starts the server (again) and waits until it accepts connections."""
        assert self.proc is None, "already running"
        import sys

        with open(self.dir / "radicale.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(self.dir / "config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"radicale did not start on port {self.port}:\n{log_text}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stops the server by its pid; the storage stays for a later :meth:`start`."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            _stop_pid(proc.pid, signal.SIGTERM, proc)

    def __exit__(self, *exc) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def request(self, method: str, path: str, body: str = "", *, user: str, password: str | None = None,
                content_type: str = "application/xml; charset=utf-8") -> tuple[int, str]:
        """One HTTP request as ``user``; returns (status, body)."""
        import base64
        import http.client

        password = self.accounts[user] if password is None else password
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Authorization": f"Basic {token}"}
            if body:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=body.encode() if body else None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def make_calendar(self, owner: str, *, as_user: str) -> str:
        """Creates ``/<owner>/`` and the calendar ``/<owner>/calendar/`` as ``as_user``; returns its path."""
        status, text = self.request("MKCOL", f"/{owner}/", user=as_user)
        assert status in (201, 405), f"MKCOL /{owner}/: {status} {text}"
        path = f"/{owner}/calendar/"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:set><D:prop><D:displayname>{owner}</D:displayname></D:prop></D:set></C:mkcalendar>"
        )
        status, text = self.request("MKCALENDAR", path, body, user=as_user)
        assert status == 201, f"MKCALENDAR {path}: {status} {text}"
        return path

    def put_event(self, calendar: str, uid: str, ics: str, *, as_user: str) -> None:
        """Stores one iCalendar object in ``calendar`` with PUT."""
        status, text = self.request(
            "PUT", f"{calendar}{uid}.ics", ics, user=as_user, content_type="text/calendar; charset=utf-8"
        )
        assert status in (201, 204), f"PUT {calendar}{uid}.ics: {status} {text}"


class Slapd:
    """A throwaway OpenLDAP server (Debian ``slapd``, loaded with ``ldapadd`` from ``ldap-utils``):
    ``with Slapd() as ldap: ldap.add(ldif)``.

    Its tree is ``dc=example,dc=com`` with ``ou=people`` and ``ou=groups``; the root DN
    (``cn=admin,dc=example,dc=com`` / ``ROOT_PASSWORD``) doubles as the service account, and users may bind as
    themselves. It runs in the foreground on a free loopback port from a ``slapd.conf`` of its own, never
    the packaged configuration or port 389; ``stop()``/``start()`` take it down and back up on the same port
    with the same data (a directory outage).
    """

    SUFFIX = "dc=example,dc=com"
    ROOT_DN = "cn=admin,dc=example,dc=com"
    ROOT_PASSWORD = "directory-root-secret"

    def __init__(self) -> None:
        binary = "/usr/sbin/slapd"
        if not os.access(binary, os.X_OK) or shutil.which("ldapadd") is None:
            raise RuntimeError("slapd or ldapadd not found: install the Debian packages `slapd` and `ldap-utils` "
                               "(scripts/test installs them)")
        self.binary = binary
        self.port = free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return (self.dir / "slapd.log").read_text(errors="replace") if self.dir else ""
        except OSError as e:
            return f"<no log: {e}>"

    def _write_conf(self) -> Path:
        assert self.dir is not None
        schema = "/etc/ldap/schema"
        conf = self.dir / "slapd.conf"
        (self.dir / "db").mkdir(exist_ok=True)
        conf.write_text("\n".join([
            f"include {schema}/core.schema",
            f"include {schema}/cosine.schema",
            f"include {schema}/inetorgperson.schema",
            f"pidfile {self.dir}/slapd.pid",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "database mdb",
            f'suffix "{self.SUFFIX}"',
            f'rootdn "{self.ROOT_DN}"',
            f"rootpw {self.ROOT_PASSWORD}",
            f"directory {self.dir}/db",
            "maxsize 104857600",
            # Users may check their own password (a bind) and read the tree; only the root DN writes.
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by * read",
            "",
        ]))
        return conf

    def start(self) -> None:
        assert self.dir is not None
        conf = self.dir / "slapd.conf"
        with open(self.dir / "slapd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-f", str(conf), "-h", f"ldap://127.0.0.1:{self.port}/", "-d", "0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"slapd did not start on port {self.port}:\n{log_text}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            _stop_pid(proc.pid, signal.SIGTERM, proc)

    def __enter__(self) -> "Slapd":
        self.dir = Path(tempfile.mkdtemp(prefix="slapd"))
        self._write_conf()
        self.start()
        self.add(f"""dn: {self.SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{self.SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{self.SUFFIX}
objectClass: organizationalUnit
ou: groups
""")
        return self

    def _tool(self, program: str, ldif: str, *extra: str) -> None:
        done = subprocess.run(
            [program, "-x", "-H", self.url, "-D", self.ROOT_DN, "-w", self.ROOT_PASSWORD, *extra],
            input=ldif, capture_output=True, text=True, timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr}\n{ldif}")

    def add(self, ldif: str) -> None:
        """Adds the entries of ``ldif``."""
        self._tool("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        """Applies the changes of ``ldif`` (``changetype`` records)."""
        self._tool("ldapmodify", ldif)

    def delete(self, dn: str) -> None:
        self._tool("ldapdelete", "", dn)

    def add_user(self, uid: str, name: str, password: str, *, mail: str | None = None,
                 phone: str | None = None) -> str:
        """Adds an inetOrgPerson under ou=people; returns its DN."""
        dn = f"uid={uid},ou=people,{self.SUFFIX}"
        lines = [f"dn: {dn}", "objectClass: inetOrgPerson", f"uid: {uid}", f"cn: {name}",
                 f"sn: {name.split()[-1]}", f"userPassword: {password}"]
        if mail:
            lines.append(f"mail: {mail}")
        if phone:
            lines.append(f"telephoneNumber: {phone}")
        self.add("\n".join(lines) + "\n")
        return dn

    def add_group(self, cn: str, members: list[str]) -> str:
        """Adds a groupOfNames under ou=groups with these member DNs; returns its DN."""
        dn = f"cn={cn},ou=groups,{self.SUFFIX}"
        self.add("\n".join([f"dn: {dn}", "objectClass: groupOfNames", f"cn: {cn}",
                            *(f"member: {m}" for m in members)]) + "\n")
        return dn

    def __exit__(self, *exc) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
