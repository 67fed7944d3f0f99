"""A two-node presenced cluster for the end-to-end suites: PostgreSQL and NATS started by the test, two
nodes in one redundancy group with short failover timers, each with its own ports and data directory, and
one TLS certificate for both (a client sent from one node to the other by <see-other-host/> checks the
same certificate)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    # In the SIP suite, whose own conftest loads the XMPP suite's under this name (server-sip/tests/e2e/conftest.py).
    from presenced_xmpp_e2e_conftest import DOMAIN, Server, free_port
except ImportError:
    from conftest import DOMAIN, Server, free_port
from services import Nats, Postgres

#: Short timers so a kill -9 is noticed in about two seconds (the defaults are the source product's 60 s).
FAILOVER = {
    "heartbeat_interval": "500ms",
    "heartbeat_timeout": "1500ms",
    "initialization_timeout": "3s",
    "connect_timeout": "1s",
    "critical_service_down_delay": "3s",
    "users_per_batch": 100,
    "batch_pause": "0ms",
    "fallback_stable_period": "3s",
    "login_rate_per_second": 1000,
}


@dataclass
class Node(Server):
    """One presenced node of the test cluster."""

    name: str = "a"
    sip_port: int = 0

    @property
    def cert(self) -> Path:
        # Every node serves the first node's certificate (see write_cluster_config).
        return self.root.parent / "a" / "data" / "tls" / "cert.pem"

    def status(self) -> str:
        return self.cli("cluster", "status").stdout


def write_cluster_config(node: Node, url: str, nats: str, *, automatic_fallback: bool) -> None:
    tls = node.root.parent / "a" / "data" / "tls"
    lines = [
        f'domain = "{DOMAIN}"',
        f'data_dir = "{node.data_dir}"',
        "",
        "[xmpp]",
        f'c2s_bind = "127.0.0.1:{node.port}"',
        # Not the default 0.0.0.0:5223, which both nodes (and parallel tests) would share.
        'c2s_tls_bind = "off"',
    ]
    if node.name != "a":
        lines += [f'tls_cert = "{tls / "cert.pem"}"', f'tls_key = "{tls / "key.pem"}"']
    lines += [
        "",
        "[http]",
        f'bind = "127.0.0.1:{node.http_port}"',
        "",
        "[sip]",
        f'bind = "127.0.0.1:{node.sip_port}"',
        'tls_bind = "off"',
        "",
        "[s2s]",
        # Not the default 0.0.0.0:5269, which both nodes would share.
        'bind = "off"',
        "",
        "[store]",
        'kind = "postgres"',
        f'url = "{url}"',
        "pool = 2",
        "",
        "[muc]",
        # One occupant-id key for both nodes (as an operator would copy it): ids survive a room's move.
        f'key_file = "{node.root.parent / "muc.key"}"',
        "",
        "[cluster]",
        f'node = "{node.name}"',
        'group = "g1"',
        f'nats = "{nats}"',
        # A name the shared certificate is valid for: a client sent here by <see-other-host/> checks the
        # certificate against the host it was given.
        f'advertise_xmpp = "localhost:{node.port}"',
        f'advertise_sip = "127.0.0.1:{node.sip_port}"',
        "",
        "[cluster.failover]",
        *(f"{k} = {v!r}".replace("'", '"') for k, v in FAILOVER.items()),
        f"automatic_fallback = {'true' if automatic_fallback else 'false'}",
    ]
    node.root.mkdir(parents=True, exist_ok=True)
    node.config.write_text("\n".join(lines) + "\n")


@dataclass
class Cluster:
    pg: Postgres
    nats: Nats
    a: Node
    b: Node

    def placement(self) -> dict[str, str | None]:
        """user -> the node serving it, from PostgreSQL."""
        out = self.pg.psql("presenced", "SELECT jid, coalesce(host, '') FROM cluster_placement").stdout
        rows = [line.split("|") for line in out.splitlines() if line]
        return {jid: host or None for jid, host in rows}

    def states(self) -> dict[str, str]:
        out = self.pg.psql("presenced", "SELECT name, coalesce(state, '') FROM cluster_nodes").stdout
        return dict(line.split("|") for line in out.splitlines() if line)

    def wait_for(self, what: str, check, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                pytest.fail(f"{what} within {timeout:.0f} s; placement {self.placement()}, states {self.states()}\n"
                            f"node a:\n{self.a._stderr()[-3000:]}\nnode b:\n{self.b._stderr()[-3000:]}")
            time.sleep(0.1)


def start_cluster(binary: Path, root: Path, users: dict[str, str], *, automatic_fallback: bool = False,
                  users_before_b: bool = False):
    """A context manager: PostgreSQL, NATS, nodes a and b (a first), `users` created and placed.

    With ``users_before_b`` the accounts are created while only node a runs, so all of them are placed on a.
    """
    from contextlib import contextmanager

    @contextmanager
    def run():
        with Postgres() as pg, Nats() as nats:
            url = pg.url("presenced")
            nodes = []
            for name in ("a", "b"):
                n = Node(binary=binary, root=root / name, port=free_port(), name=name,
                         sip_port=free_port(udp_too=True))
                write_cluster_config(n, url, nats.url, automatic_fallback=automatic_fallback)
                nodes.append(n)
            a, b = nodes
            cluster = Cluster(pg, nats, a, b)
            try:
                a.start()
                if not users_before_b:
                    b.start()
                for local, password in users.items():
                    a.add_user(local, password)
                    b.users[local] = password
                # Both nodes were registered before the accounts existed: the balanced mode alternates them.
                cluster.wait_for("every account placed", lambda: len(cluster.placement()) == len(users))
                if users_before_b:
                    b.start()
                cluster.wait_for("both failover managers running", lambda: cluster.states() == {"a": "Normal", "b": "Normal"})
                yield cluster
            finally:
                for n in (a, b):
                    n.stop()
    return run()

