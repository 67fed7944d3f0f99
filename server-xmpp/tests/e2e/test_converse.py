"""Converse.js, a real browser client, in headless Chromium against presenced: over WebSocket (RFC 7395) and
over BOSH (XEP-0206).

``server-xmpp/tests/web/converse.mjs`` serves Converse.js's dist files from a local HTTP server, opens the page
in Debian's ``/usr/bin/chromium`` through playwright-core, and logs alice in. The test then brings bob online
over TCP (slixmpp): the page must show bob online in its roster. Converse sends bob a message (bob must receive
its body), bob answers (the page must show the answer's body in the chat), and a screenshot of the logged-in
page is saved under ``target/web-screenshots/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import REPO, Server
from test_websocket import WEB, ws_url
from xmpp import DOMAIN, WAIT, clients, connect, make_mutual, run, wait

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "web-screenshots"


@pytest.mark.parametrize("transport", ["websocket", "bosh"])
def test_converse_in_chromium_logs_in_sees_its_contact_online_and_chats(server: Server, transport: str) -> None:
    node = shutil.which("node")
    assert node, "node is not installed (Debian nodejs); scripts/test installs it"
    assert CHROMIUM.exists(), "chromium is not installed (Debian chromium); scripts/test installs it"
    for package in ("converse.js", "playwright-core"):
        assert (WEB / "node_modules" / package).is_dir(), f"{package} missing: run `npm ci` in {WEB}"
    screenshot = SCREENSHOTS / f"converse-{transport}.png"
    for old in SCREENSHOTS.glob(f"converse-{transport}*"):
        old.unlink()
    service = ws_url(server) if transport == "websocket" else f"http://127.0.0.1:{server.http_port}/http-bind"
    to_bob, to_alice = f"from converse {uuid.uuid4()}", f"from slixmpp {uuid.uuid4()}"

    async def scenario() -> None:
        async with clients(connect(server, "alice", "tcp"), connect(server, "bob", "setup")) as (a, b):
            await make_mutual(a, b)
        env = {
            **os.environ,
            "TRANSPORT": transport,
            "SERVICE_URL": service,
            "XMPP_JID": ALICE,
            "XMPP_PASSWORD": server.users["alice"],
            "XMPP_RESOURCE": "converse",
            "CONTACT": BOB,
            "SEND_BODY": to_bob,
            "EXPECT_BODY": to_alice,
            "SCREENSHOT": str(screenshot),
            "TIMEOUT_MS": str(int(WAIT * 2 * 1000)),
        }
        proc = await asyncio.create_subprocess_exec(
            node, str(WEB / "converse.mjs"), cwd=WEB, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        said: list[dict] = []

        async def next_event(what: str) -> dict:
            line = await wait(proc.stdout.readline(), f"the browser's {what}; it said {said}", timeout=WAIT * 3)
            if not line:
                err = (await proc.stderr.read()).decode(errors="replace")
                raise AssertionError(f"the browser test ended before {what}; it said {said}; stderr:\n{err}")
            event = json.loads(line)
            said.append(event)
            assert event["event"] != "error", f"the browser test failed: {event}"
            return event

        def tell(line: str) -> None:
            proc.stdin.write(f"{line}\n".encode())

        try:
            online = await next_event("login")
            assert online["event"] == "online" and "bob" in online["roster"], online
            # bob is offline (his setup connection left): the roster must not say otherwise yet.
            assert online["contact_online"] is False, online
            assert (await next_event("readiness"))["event"] == "ready"
            async with clients(connect(server, "bob", "tcp")) as (bob,):
                # bob sees alice's browser session (her initial presence went out from Converse).
                seen = await bob.presence_from(ALICE)
                assert str(seen["from"]).startswith(f"{ALICE}/converse"), seen
                tell("go")
                shown = await next_event("bob shown online")
                assert shown == {"event": "contact-online"}, shown
                sent = await next_event("its message")
                assert sent == {"event": "sent", "to": BOB, "body": to_bob}, sent
                got = await bob.next_message("Converse's message")
                assert got["body"] == to_bob and str(got["from"]).startswith(f"{ALICE}/converse"), got
                bob.send_message(str(got["from"]), to_alice)
                tell("answered")
                answer = await next_event("bob's answer shown")
                assert answer == {"event": "message", "body": to_alice}, answer
                shot = await next_event("the screenshot")
                assert shot["event"] == "screenshot", shot
                assert screenshot.is_file() and screenshot.stat().st_size > 10_000, screenshot
                assert (await next_event("its goodbye"))["event"] == "done"
                code = await wait(proc.wait(), "the browser test to exit", timeout=WAIT * 2)
                assert code == 0, f"the browser test exited {code}; it said {said}"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    run(scenario, timeout=240)
