"""End-to-end HTTP File Upload (XEP-0363) against `presenced serve`, with slixmpp's own plugin: a file uploaded
by one user is fetched byte for byte by another from the GET URL; the size limit, the per-user quota, forged,
altered and expired PUT URLs are refused; nothing but stored files is served; and with the default configuration
the service is neither advertised nor served."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import pytest
from slixmpp import JID
from slixmpp.exceptions import IqError

from conftest import USERS, Server, free_port, write_config
from xmpp import DOMAIN, WAIT, Client, clients, connect, run, wait

NS_UPLOAD = "urn:xmpp:http:upload:0"
MAX = 1000
QUOTA = 2500
#: How long a PUT URL is valid on the test server.
PUT_VALID = 3


def with_upload(client: Client) -> Client:
    client.xmpp.register_plugin("xep_0363")
    return client


@pytest.fixture
def upload_server(binary: Path, tmp_path: Path):
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        tables=(
            "[upload]\nenabled = true\n"
            f"max_file_size = {MAX}\nquota = {QUOTA}\nput_valid_for = \"{PUT_VALID}s\"\n"
        ),
    )
    for local, password in USERS.items():
        srv.add_user(local, password)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def upload(client: Client, data: bytes, name: str = "note.txt", content_type: str = "text/plain") -> str:
    return await wait(
        client.xmpp.plugin["xep_0363"].upload_file(
            name, size=len(data), content_type=content_type, input_file=io.BytesIO(data), timeout=WAIT
        ),
        f"upload of {name}",
    )


async def slot(client: Client, size: int, name: str = "f.bin", content_type: str = "application/octet-stream"):
    iq = await wait(
        client.xmpp.plugin["xep_0363"].request_slot(JID(DOMAIN), name, size, content_type, timeout=WAIT),
        "an upload slot",
    )
    s = iq["http_upload_slot"]
    return s["put"]["url"], s["get"]["url"]


async def refused_slot(client: Client, size: int) -> IqError:
    try:
        await slot(client, size)
    except IqError as e:
        return e
    raise AssertionError(f"a slot of {size} bytes was granted")


async def put(url: str, data: bytes, content_type: str = "application/octet-stream") -> int:
    async with aiohttp.ClientSession() as http:
        async with http.put(url, data=data, headers={"Content-Type": content_type}) as r:
            return r.status


async def get(url: str) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            return r.status, await r.read(), dict(r.headers)


def test_a_file_uploaded_by_one_user_is_downloaded_by_another(upload_server: Server) -> None:
    data = bytes(range(256)) * 3 + b"end"

    async def scenario() -> None:
        async with clients(connect(upload_server, "alice"), connect(upload_server, "bob")) as (alice, bob):
            with_upload(alice)
            url = await upload(alice, data, name="holiday photo.bin", content_type="image/x-test")
            assert url.startswith(f"http://127.0.0.1:{upload_server.http_port}/upload/"), url
            assert url.endswith("/holiday_photo.bin"), url
            # The limit came from the domain's disco#info form.
            assert alice.xmpp.plugin["xep_0363"].max_file_size == MAX
            assert str(alice.xmpp.plugin["xep_0363"].upload_service) == DOMAIN
            # The link travels as a message; bob fetches what it names.
            alice.send_message(f"bob@{DOMAIN}", url)
            got = (await bob.next_message("the link from alice"))["body"]
            assert got == url
            status, body, headers = await get(got)
            assert status == 200, (status, body)
            assert body == data
            assert headers["Content-Type"] == "image/x-test", headers
            assert headers["Content-Length"] == str(len(data)), headers
            assert headers["X-Content-Type-Options"] == "nosniff", headers
            # Stored where the README says.
            assert list((upload_server.data_dir / "upload").glob("*/*/content"))

    run(scenario)


def test_oversize_files_and_a_full_quota_are_refused(upload_server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(upload_server, "alice"), connect(upload_server, "bob")) as (alice, bob):
            with_upload(alice)
            with_upload(bob)
            e = await refused_slot(alice, MAX + 1)
            assert e.iq["error"]["condition"] == "not-acceptable", e.iq
            too_large = e.iq.xml.find(f".//{{{NS_UPLOAD}}}file-too-large/{{{NS_UPLOAD}}}max-file-size")
            assert too_large is not None and too_large.text == str(MAX), e.iq
            # Two full files fit in the quota, a third does not: the stored bytes count.
            for i in range(2):
                await upload(alice, b"x" * MAX, name=f"f{i}.bin")
            e = await refused_slot(alice, MAX)
            assert e.iq["error"]["condition"] == "resource-constraint", e.iq
            assert e.iq["error"]["type"] == "wait", e.iq
            assert (await slot(alice, QUOTA - 2 * MAX))[0]
            # The quota is per user.
            await upload(bob, b"y" * MAX)

    run(scenario)


def test_forged_altered_and_expired_put_urls_are_refused(upload_server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(upload_server, "alice")) as (alice,):
            with_upload(alice)
            put_url, get_url = await slot(alice, 10)
            forged = put_url[:-1] + ("0" if put_url[-1] != "0" else "1")
            assert await put(forged, b"0123456789") == 403
            unsigned = put_url.split("?")[0]
            assert await put(unsigned, b"0123456789") == 403
            # The size and type are what was signed.
            assert await put(put_url, b"012345678") == 403
            assert await put(put_url, b"0123456789", content_type="text/html") == 403
            assert (await get(get_url))[0] == 404
            # Another slot's path with this signature.
            other_put, _ = await slot(alice, 10)
            assert await put(other_put.split("?")[0] + "?" + put_url.split("?")[1], b"0123456789") == 403
            assert await put(put_url, b"0123456789") == 201
            # A slot is used once.
            assert await put(put_url, b"0123456789") == 409
            assert (await get(get_url))[1] == b"0123456789"
            # A slot that was not used in time is dead.
            late_put, late_get = await slot(alice, 4)
            await asyncio.sleep(PUT_VALID + 1.5)
            assert await put(late_put, b"late") == 403
            assert (await get(late_get))[0] == 404

    run(scenario)


def test_nothing_but_stored_files_is_served(upload_server: Server) -> None:
    base = f"http://127.0.0.1:{upload_server.http_port}"

    async def scenario() -> None:
        async with clients(connect(upload_server, "alice")) as (alice,):
            url = await upload(with_upload(alice), b"hello")
            path = url[len(base):]
            owner, slot_id, name = path.split("/")[2:]
            for probe in (
                "/upload/", f"/upload/{owner}/", f"/upload/{owner}/{slot_id}/",
                f"/upload/{owner}/{slot_id}/other.txt", f"/upload/{owner}/{slot_id}/meta",
                f"/upload/{owner}/{slot_id}/%2e%2e", "/upload/../presenced.toml",
                f"/upload/{owner}/{slot_id}/..%2F..%2F..%2Fupload.key",
            ):
                status, body, _ = await get(base + probe)
                assert status == 404, (probe, status, body)
            assert (await get(url))[1] == b"hello"

    run(scenario)


def test_default_config_neither_advertises_nor_serves_upload(server: Server) -> None:
    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            with_upload(alice)
            info = await wait(
                alice.xmpp.plugin["xep_0030"].get_info(jid=JID(DOMAIN), local=False, timeout=WAIT),
                "the server's disco#info",
            )
            assert NS_UPLOAD not in info["disco_info"]["features"]
            identities = {(c, t) for c, t, _, _ in info["disco_info"]["identities"]}
            assert ("store", "file") not in identities, identities
            e = await refused_slot(alice, 10)
            assert e.iq["error"]["condition"] == "service-unavailable", e.iq
            status, _, _ = await get(f"http://127.0.0.1:{server.http_port}/upload/{'0' * 32}/{'0' * 32}/x")
            assert status == 404

    run(scenario)
