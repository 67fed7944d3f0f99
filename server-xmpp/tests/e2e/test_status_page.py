"""The operator's status page (``/`` on the HTTP listener), ``/status.json`` and ``presenced status``.

Headless Chromium (Debian ``chromium``, driven from its command line: the page runs no script, so the DOM
Chromium renders, ``--dump-dom``, is what an operator sees) loads the page after slixmpp users signed in and
chatted, and the test reads the figures from it; a screenshot is saved as
``target/web-screenshots/status.png``. Plain HTTP requests check the access rule: straight from loopback
without a password, a forwarded or non-loopback request only with the admin password, and the password only
over a secure listener. ``presenced status`` is checked up (with the sessions) and down (exit status 1).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, Server, free_port, write_config
from xmpp import DOMAIN, clients, connect, run, wait_until

SCREENSHOTS = REPO / "target" / "web-screenshots"
CHROMIUM_TIMEOUT = 90.0
PASSWORD = "status-admin-pw"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed (scripts/test installs Debian's chromium)")
    return path


def browse(url: str, *extra: str) -> str:
    """Loads ``url`` in headless Chromium with ``extra`` flags; returns its stdout (the DOM for --dump-dom)."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT,
        )
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def value(dom: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert m, f"no #{element_id} in the page:\n{dom[:3000]}"
    return m.group(1)


def get(port: int, path: str, *, host: str = "127.0.0.1", source: str | None = None,
        headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    if tls is None:
        conn = http.client.HTTPConnection(host, port, timeout=10, source_address=(source, 0) if source else None)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=tls,
                                           source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def basic(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def outside_address() -> str:
    """This machine's first global IPv4 address: a peer that is not loopback."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    assert m, f"no global IPv4 address on this machine to test a non-loopback peer from:\n{out}"
    return m.group(1)


def status_cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(server.binary), "--config", str(server.config), "status", *args],
                          capture_output=True, text=True, timeout=30)


def restart_with(server: Server, **config) -> None:
    server.stop()
    write_config(server.config, server.data_dir, server.port, free_port(udp_too=True),
                 http_port=server.http_port, tls_port=server.tls_port, **config)
    server.start()


def test_the_page_in_chromium_shows_sessions_message_rate_and_store(server: Server) -> None:
    """Three slixmpp users sign in and alice sends bob 20 messages; the page, rendered by headless Chromium,
    shows 3 XMPP sessions, a message rate above zero, a healthy embedded store and no cluster. The
    screenshot is saved for people to look at; ``presenced status`` agrees with the page."""
    url = f"http://127.0.0.1:{server.http_port}/"

    async def scenario() -> None:
        async with clients(connect(server, "alice"), connect(server, "bob"), connect(server, "carol")) as (
            alice, bob, _carol,
        ):
            for i in range(20):
                alice.send_message(f"bob@{DOMAIN}", f"status page message {i}")
            for i in range(20):
                await bob.next_message(f"message {i}")

            # The sampler runs once a second: wait until the JSON shows the messages.
            async def counted() -> bool:
                _, _, body = await asyncio.to_thread(get, server.http_port, "/status.json")
                return json.loads(body)["messages_per_second"] > 0
            await wait_until(counted, "the message rate to show the 20 messages")

            # Off the event loop: slixmpp's sockets live on it.
            dom = await asyncio.to_thread(browse, url, "--dump-dom")
            assert value(dom, "sessions-xmpp") == "3", dom[:3000]
            assert value(dom, "sessions-sip") == "0"
            assert float(value(dom, "messages-rate")) > 0
            assert value(dom, "version") == json.loads(get(server.http_port, "/status.json")[2])["version"]
            assert value(dom, "store-kind") == "embedded"
            assert value(dom, "store-state") == "ok"
            assert "Not clustered" in dom
            assert value(dom, "state") == "up"
            assert "<script" not in dom

            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / "status.png"
            shot.unlink(missing_ok=True)
            await asyncio.to_thread(browse, url, f"--screenshot={shot}", "--window-size=1280,1100",
                                    "--hide-scrollbars")
            data = shot.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"{shot}: {len(data)} bytes"

            out = await asyncio.to_thread(status_cli, server)
            assert out.returncode == 0, out.stderr
            assert "is up" in out.stdout and "sessions: xmpp 3, sip 0" in out.stdout, out.stdout
            doc = json.loads((await asyncio.to_thread(status_cli, server, "--json")).stdout)
            assert doc["sessions"] == {"xmpp": 3, "sip": 0}
            assert doc["store"]["state"] == "ok"

    run(scenario)
    server.stop()
    down = status_cli(server)
    assert down.returncode == 1, down.stdout
    assert "down" in down.stderr, down.stderr


def test_recent_warnings_reach_the_page(server: Server) -> None:
    """A warning the server logs (here the one at start about plain HTTP on a non-loopback bind) shows in
    /status.json's recent warnings and, rendered by Chromium, in the page's list."""
    assert json.loads(get(server.http_port, "/status.json")[2])["recent_errors"] == []
    restart_with(server, http_host="0.0.0.0")
    warnings = json.loads(get(server.http_port, "/status.json")[2])["recent_errors"]
    assert any("WebSocket clients cannot authenticate" in w["message"] and w["level"] == "WARN"
               for w in warnings), warnings
    dom = browse(f"http://127.0.0.1:{server.http_port}/", "--dump-dom")
    assert "WebSocket clients cannot authenticate" in dom, dom[-3000:]
    server.stop()


def test_access_from_loopback_only_unless_the_admin_password_is_given(server: Server) -> None:
    """Straight from loopback: served. Forwarded by a local proxy (X-Forwarded-For) or from another address:
    403 without a configured password. Over plain HTTP on a non-loopback bind the password is not taken
    (403 even when right). Over HTTPS: 401 with a Basic challenge, 401 for a wrong password or user, 200
    for admin and the right password; ``presenced status`` still reads it (pinning the certificate)."""
    port = server.http_port
    status, headers, body = get(port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, body[:200])
    assert get(port, "/status.json")[0] == 200
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    assert get(port, "/", headers=forwarded)[0] == 403
    assert get(port, "/status.json", headers=forwarded)[0] == 403

    outside = outside_address()
    restart_with(server, http_host="0.0.0.0", http=(f'admin_password = "{PASSWORD}"',))
    status, _, body = get(port, "/", host=outside, source=outside, headers=basic(PASSWORD))
    assert status == 403 and b"tls" in body, (status, body)
    assert get(port, "/")[0] == 200, "loopback is still served"
    check = subprocess.run([str(server.binary), "--config", str(server.config), "check-config"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 1 and "admin_password" in check.stderr, (check.stdout, check.stderr)

    restart_with(server, http_host="0.0.0.0", http=("tls = true", f'admin_password = "{PASSWORD}"'))
    tls = ssl.create_default_context(cafile=str(server.cert))
    tls.check_hostname = False
    status, headers, _ = get(port, "/", host=outside, source=outside, tls=tls)
    assert status == 401 and headers["www-authenticate"].startswith("Basic"), (status, headers)
    assert get(port, "/", host=outside, source=outside, tls=tls, headers=basic("wrong"))[0] == 401
    assert get(port, "/", host=outside, source=outside, tls=tls, headers=basic(PASSWORD, "root"))[0] == 401
    status, _, body = get(port, "/status.json", host=outside, source=outside, tls=tls, headers=basic(PASSWORD))
    assert status == 200 and json.loads(body)["status"] == "up", (status, body)
    out = status_cli(server)
    assert out.returncode == 0 and "is up" in out.stdout, (out.stdout, out.stderr)
    server.stop()


def test_a_cluster_node_shows_every_node_and_its_failover_state(binary: Path, tmp_path: Path) -> None:
    """On node a of a two-node cluster, /status.json and the page list both nodes as Normal."""
    from cluster import start_cluster
    from conftest import USERS

    with start_cluster(binary, tmp_path, dict(list(USERS.items())[:2])) as cluster:
        port = cluster.a.http_port

        def both_normal():
            doc = json.loads(get(port, "/status.json")[2])
            nodes = {n["name"]: n["state"] for n in (doc["cluster"] or {}).get("nodes", [])}
            return doc if nodes == {"a": "Normal", "b": "Normal"} else None
        doc = cluster.wait_for("node a's status to show both nodes Normal", both_normal)
        assert doc["cluster"]["node"] == "a" and doc["store"]["kind"] == "postgres"
        assert "@" not in doc["store"]["location"], "no credentials on the page"
        dom = browse(f"http://127.0.0.1:{port}/", "--dump-dom")
        assert "This node is <b>a</b>" in dom and "Normal" in dom
        out = status_cli(cluster.a)
        assert out.returncode == 0 and "cluster: node a in group" in out.stdout, out.stdout


def test_systemd_hears_ready_once_serving_and_stopping_on_sigterm(server_files: Server, tmp_path: Path) -> None:
    """With NOTIFY_SOCKET set (as systemd sets it for Type=notify), the server sends READY=1 when its
    listeners are open (the status page already answers then) and STOPPING=1 when SIGTERM arrives."""
    import socket

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    try:
        server_files.env["NOTIFY_SOCKET"] = path
        server_files.start()
        ready = sock.recv(4096).decode()
        assert "READY=1" in ready.split("\n"), ready
        assert get(server_files.http_port, "/status.json")[0] == 200
        assert server_files.stop() == 0
        stopping = sock.recv(4096).decode()
        assert "STOPPING=1" in stopping.split("\n"), stopping
    finally:
        sock.close()
