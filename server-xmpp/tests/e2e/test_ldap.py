"""End-to-end `[ldap]` against a real OpenLDAP (Debian ``slapd``, started by the test on a loopback port with a
generated tree of users and a group, see services.Slapd) and slixmpp clients:

- directory passwords sign in (SASL PLAIN checked by a bind as the user), a wrong password or a user outside the
  directory's filters is refused, SCRAM works once a PLAIN login cached the verifiers, and a local account made
  with ``presenced user add`` keeps its own password;
- ``presenced directory sync`` (through the running server's admin socket) creates, updates and removes
  accounts: a new display name becomes the roster name in contacts' lists, a user who left the directory loses
  their session and their roster items in others' lists, and ``--dry-run`` prints the changes and makes none;
- XEP-0055 search with forms from slixmpp's xep_0055 plugin returns the matching users, at most
  ``search_limit``, and the service is in the domain's disco#info;
- with the directory down a cached user still signs in (and a wrong password is still refused), and a user with
  nothing cached gets ``temporary-auth-failure``; when the directory is back, so is everyone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import Server, free_port, write_config
from services import Slapd
from xmpp import DOMAIN, Client, make_client, make_mutual, run, start, wait, wait_until

PEOPLE = f"ou=people,{Slapd.SUFFIX}"
GROUPS = f"ou=groups,{Slapd.SUFFIX}"

#: uid -> (display name, password, mail, phone); every one is in the ``im`` group except ``outsider``.
DIRECTORY = {
    "alice": ("Alice Liddell", "alice-dir-pw", "alice@example.com", "+1 555 0101"),
    "bob": ("Bob Builder", "bob-dir-pw", "bob@example.com", "+1 555 0102"),
    "alfred": ("Alfred Pennyworth", "alfred-dir-pw", "alfred@example.com", None),
    "outsider": ("Otto Outsider", "otto-dir-pw", "otto@example.com", None),
}


@pytest.fixture
def directory():
    with Slapd() as d:
        dns = {}
        for uid, (name, password, mail, phone) in DIRECTORY.items():
            dns[uid] = d.add_user(uid, name, password, mail=mail, phone=phone)
        d.add_group("im", [dn for uid, dn in dns.items() if uid != "outsider"])
        yield d


def ldap_server(binary: Path, tmp_path: Path, d: Slapd, *extra: str, sync_interval: str = "0s",
                user_filter: str = "(objectClass=inetOrgPerson)") -> Server:
    """A server on ``d``; with the default ``sync_interval`` of 0 the tests sync through the CLI, so each step
    is seen when it happens."""
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    tables = "\n".join([
        "[ldap]",
        f'url = "{d.url}"',
        f'bind_dn = "{Slapd.ROOT_DN}"',
        f'bind_password = "{Slapd.ROOT_PASSWORD}"',
        f'base_dn = "{PEOPLE}"',
        f'user_filter = "{user_filter}"',
        'uid_attribute = "uid"',
        'name_attribute = "cn"',
        'mail_attribute = "mail"',
        'phone_attribute = "telephoneNumber"',
        'group_filter = "(&(objectClass=groupOfNames)(cn=im))"',
        f'group_base_dn = "{GROUPS}"',
        f'sync_interval = "{sync_interval}"',
        'timeout = "2s"',
        *extra,
    ])
    srv.sip_port = free_port(udp_too=True)
    write_config(srv.config, srv.data_dir, srv.port, srv.sip_port, http_port=srv.http_port, tables=tables)
    return srv


def sip_register(server: Server, user: str, password: str) -> int:
    """A SIP REGISTER over UDP for ``user`` with an MD5 digest of ``password`` (RFC 3261 §22, qop=auth when
    offered); returns the final status code."""
    realm_uri = f"sip:{DOMAIN}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        port = sock.getsockname()[1]
        call_id = uuid.uuid4().hex

        def send(cseq: int, authorization: str | None) -> tuple[int, str]:
            lines = [
                f"REGISTER {realm_uri} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex};rport",
                "Max-Forwards: 70",
                f"From: <sip:{user}@{DOMAIN}>;tag={call_id[:8]}",
                f"To: <sip:{user}@{DOMAIN}>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:{user}@127.0.0.1:{port}>",
                "Expires: 60",
            ]
            if authorization:
                lines.append(f"Authorization: {authorization}")
            lines.append("Content-Length: 0")
            sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), ("127.0.0.1", server.sip_port))
            while True:
                data = sock.recv(65535).decode(errors="replace")
                status = int(data.split(" ", 2)[1])
                if status >= 200:
                    return status, data

        status, answer = send(1, None)
        if status != 401:
            return status
        challenges = [line.split(":", 1)[1].strip() for line in answer.split("\r\n")
                      if line.lower().startswith("www-authenticate:")]
        md5 = next(c for c in challenges if "algorithm=SHA-256" not in c)
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', md5))
        h = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
        ha1, ha2 = h(f"{user}:{params['realm']}:{password}"), h(f"REGISTER:{realm_uri}")
        auth = (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
                f'uri="{realm_uri}", algorithm=MD5')
        if "qop" in params:
            cnonce = uuid.uuid4().hex[:16]
            response = h(f"{ha1}:{params['nonce']}:00000001:{cnonce}:auth:{ha2}")
            auth += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            response = h(f"{ha1}:{params['nonce']}:{ha2}")
        auth += f', response="{response}"'
        if "opaque" in params:
            auth += f', opaque="{params["opaque"]}"'
        return send(2, auth)[0]


@pytest.fixture
def server(binary: Path, tmp_path: Path, directory: Slapd):
    srv = ldap_server(binary, tmp_path, directory)
    # A local account, made by hand: the directory never touches it.
    srv.add_user("root", "local-root-pw")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def sign_in(server: Server, local: str, password: str, mechanism: str | None = "PLAIN") -> tuple[Client | None, list[str]]:
    """Signs ``local`` in with ``password``: the connected client, or None and the SASL failure conditions."""
    client = make_client(server, local, password=password, mechanism=mechanism)
    failed: list[str] = []
    client.xmpp.add_event_handler("failed_auth", lambda st: failed.append(st["condition"]))
    await start(client, server)
    # With one mechanism its failure ends the sign-in; with slixmpp's choice, only the last one does.
    ends = (client.session_started, client.all_auth_failed, client.disconnected)
    if mechanism is not None:
        ends += (client.auth_failed,)
    done = [asyncio.ensure_future(e.wait()) for e in ends]
    try:
        await wait(asyncio.wait(done, return_when=asyncio.FIRST_COMPLETED), f"{local}'s sign-in to end")
    finally:
        for f in done:
            f.cancel()
    if client.session_started.is_set():
        return client, failed
    await client.disconnect()
    return None, failed


def sync(server: Server, *args: str) -> list[str]:
    return server.cli("directory", "sync", *args).stdout.splitlines()


def test_directory_passwords_sign_in_and_wrong_ones_are_refused(server: Server) -> None:
    async def scenario() -> None:
        # slixmpp's own choice: SCRAM first (nothing cached yet, so refused), then PLAIN, which the directory takes.
        alice, failed = await sign_in(server, "alice", "alice-dir-pw", mechanism=None)
        assert alice is not None, f"alice's directory password was refused: {failed}"
        assert alice.mechanism == "PLAIN", alice.mechanism
        await alice.disconnect()
        # Cached by that login: SCRAM now works with the same password.
        alice, failed = await sign_in(server, "alice", "alice-dir-pw", mechanism="SCRAM-SHA-256")
        assert alice is not None, f"SCRAM after a directory login failed: {failed}"
        await alice.disconnect()

        for local, password in [("alice", "not-her-password"), ("outsider", "otto-dir-pw"),
                                ("nobody", "whatever")]:
            client, failed = await sign_in(server, local, password)
            assert client is None, f"{local} signed in with {password!r}"
            assert failed and set(failed) == {"not-authorized"}, (local, failed)

        root, failed = await sign_in(server, "root", "local-root-pw")
        assert root is not None, f"the local account's own password was refused: {failed}"
        await root.disconnect()

    # Bob never signed in over XMPP: his phone has no digest secret yet.
    assert sip_register(server, "bob", "bob-dir-pw") != 200
    run(scenario)
    assert "alice@localhost" in server.list_users(), "a directory login makes the account"
    # Alice's XMPP sign-in provisioned the digest secret of her directory password for her phone.
    assert sip_register(server, "alice", "alice-dir-pw") == 200
    assert sip_register(server, "alice", "not-her-password") == 403


def test_plain_without_an_initial_response_is_checked_by_the_directory(server: Server) -> None:
    """RFC 6120 §6.4.2: ``<auth mechanism='PLAIN'/>`` empty gets an empty challenge, and the password in the
    ``<response/>`` is the directory's to check; an abort in between leaves no PLAIN exchange behind."""
    from test_ops import NS_SASL, TlsXmpp

    def plain(local: str, password: str) -> str:
        return base64.b64encode(f"\0{local}\0{password}".encode()).decode()

    def name(el) -> str:
        return el.tag.split("}")[-1]

    t = TlsXmpp(server)
    try:
        t.starttls()
        t.open_stream()
        t.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'/>".encode())
        assert name(t.next_element("the empty challenge")) == "challenge"
        t.send(f"<abort xmlns='{NS_SASL}'/>".encode())
        assert name(t.next_element("the abort's failure")) == "failure"
        t.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'/>".encode())
        assert name(t.next_element("the empty challenge")) == "challenge"
        t.send(f"<response xmlns='{NS_SASL}'>{plain('alice', 'alice-dir-pw')}</response>".encode())
        assert name(t.next_element("the SASL answer")) == "success"
    finally:
        t.close()


def test_sync_creates_updates_and_removes_accounts(server: Server, directory: Slapd) -> None:
    before = server.list_users()
    dry = sync(server, "--dry-run")
    assert sorted(dry) == sorted([
        'would create alfred@localhost ("Alfred Pennyworth")',
        'would create alice@localhost ("Alice Liddell")',
        'would create bob@localhost ("Bob Builder")',
    ]), dry
    assert server.list_users() == before, "a dry run changes nothing"

    done = sync(server)
    assert sorted(done) == sorted(line.removeprefix("would ") for line in dry), done
    assert sorted(server.list_users()) == sorted(
        ["alfred@localhost", "alice@localhost", "bob@localhost", "root@localhost"])
    assert sync(server) == [], "an unchanged directory changes nothing"

    async def scenario() -> None:
        alice, failed = await sign_in(server, "alice", "alice-dir-pw")
        bob, failed_bob = await sign_in(server, "bob", "bob-dir-pw")
        assert alice and bob, (failed, failed_bob)
        root, _ = await sign_in(server, "root", "local-root-pw")
        assert root
        try:
            await make_mutual(alice, bob)
            await make_mutual(root, bob)

            # A new display name in the directory: a dry run says so and changes nothing ...
            directory.modify(f"dn: uid=bob,{PEOPLE}\nchangetype: modify\nreplace: cn\ncn: Robert Builder\n")
            dry = await asyncio.to_thread(sync, server, "--dry-run")
            assert dry == ['would update bob@localhost name "Bob Builder" -> "Robert Builder"'], dry
            assert (await alice.roster_items())[f"bob@{DOMAIN}"].get("name") in ("", None)

            # ... the sync renames bob in every list, pushed to the online clients.
            done = await asyncio.to_thread(sync, server)
            assert done == ['update bob@localhost name "Bob Builder" -> "Robert Builder"'], done

            async def renamed() -> bool:
                names = [(await c.roster_items())[f"bob@{DOMAIN}"].get("name") for c in (alice, root)]
                return names == ["Robert Builder", "Robert Builder"]

            await wait_until(renamed, "bob's roster name to become his new display name")
            assert (await alice.roster_items())[f"bob@{DOMAIN}"]["subscription"] == "both"

            # Bob leaves the directory's group: his account goes, his session ends, and the items pointing at
            # him go from alice's and root's lists; nothing else changes.
            directory.modify(f"dn: cn=im,{GROUPS}\nchangetype: modify\ndelete: member\nmember: uid=bob,{PEOPLE}\n")
            done = await asyncio.to_thread(sync, server)
            assert done == ["remove bob@localhost"], done
            await wait(bob.disconnected.wait(), "bob's session to end")

            async def gone() -> bool:
                rosters = [await c.roster_items() for c in (alice, root)]
                return all(f"bob@{DOMAIN}" not in r for r in rosters)

            await wait_until(gone, "the roster items pointing at bob to go")
            users = await asyncio.to_thread(server.list_users)
            assert sorted(users) == ["alfred@localhost", "alice@localhost", "root@localhost"], users
            client, failed = await sign_in(server, "bob", "bob-dir-pw")
            assert client is None and set(failed) == {"not-authorized"}, failed
        finally:
            for c in (alice, bob, root):
                await c.disconnect()

    run(scenario)


def test_search_finds_colleagues_in_the_directory(binary: Path, tmp_path: Path, directory: Slapd) -> None:
    server = ldap_server(binary, tmp_path, directory, "search_limit = 2")
    server.start()
    try:
        async def scenario() -> None:
            alice, failed = await sign_in(server, "alice", "alice-dir-pw")
            assert alice, failed
            alice.xmpp.register_plugin("xep_0004")
            alice.xmpp.register_plugin("xep_0055", {"provide_search": False})
            try:
                info = await alice.xmpp.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=10)
                assert "jabber:iq:search" in info["disco_info"]["features"]

                form_iq = alice.xmpp.make_iq_get(queryxmlns="jabber:iq:search", ito=DOMAIN)
                form = await form_iq.send(timeout=10)
                fields = form["search"]["form"]["fields"]
                names = [f["var"] for f in fields] if isinstance(fields, list) else list(fields)
                assert "search" in names, names

                async def search(**values: str) -> list[dict]:
                    iq = alice.xmpp.plugin["xep_0055"].make_search_iq(ito=DOMAIN)
                    for var, value in values.items():
                        iq["search"]["form"].add_field(var=var, value=value)
                    res = await iq.send(timeout=10)
                    return [dict(item) for item in res["search"]["form"]["items"]]

                found = await search(search="bob")
                assert [(i["jid"], i["name"], i["mail"]) for i in found] == [
                    ("bob@localhost", "Bob Builder", "bob@example.com")], found
                found = await search(name="liddell")
                assert [i["jid"] for i in found] == ["alice@localhost"], found
                assert [i["phone"] for i in found] == ["+1 555 0101"], found
                # Outside the group: never found.
                assert await search(search="otto") == []
                # "al" matches alice and alfred (uid), and "example.com" every mail: the limit caps both.
                assert sorted(i["jid"] for i in await search(search="al")) == [
                    "alfred@localhost", "alice@localhost"]
                assert len(await search(mail="example.com")) == 2
            finally:
                await alice.disconnect()

        run(scenario)
    finally:
        server.stop()


def test_directory_outage_keeps_cached_users_and_refuses_the_rest_temporarily(
        server: Server, directory: Slapd) -> None:
    async def scenario() -> None:
        alice, failed = await sign_in(server, "alice", "alice-dir-pw")
        assert alice, failed
        await alice.disconnect()

        directory.stop()
        try:
            alice, failed = await sign_in(server, "alice", "alice-dir-pw")
            assert alice, f"a cached user was locked out by the outage: {failed}"
            await alice.disconnect()
            client, failed = await sign_in(server, "alice", "not-her-password")
            assert client is None and set(failed) == {"not-authorized"}, failed
            client, failed = await sign_in(server, "bob", "bob-dir-pw")
            assert client is None and set(failed) == {"temporary-auth-failure"}, failed
            root, failed = await sign_in(server, "root", "local-root-pw")
            assert root, failed
            await root.disconnect()
            # A sync cannot read the directory: it fails and changes nothing.
            done = await asyncio.to_thread(
                subprocess.run,
                [str(server.binary), "--config", str(server.config), "directory", "sync"],
                capture_output=True, text=True, timeout=60)
            assert done.returncode == 1 and "cannot be reached" in done.stderr, done
            assert "alice@localhost" in await asyncio.to_thread(server.list_users)
        finally:
            directory.start()

        bob, failed = await sign_in(server, "bob", "bob-dir-pw")
        assert bob, f"bob was refused once the directory was back: {failed}"
        await bob.disconnect()

    run(scenario)


def test_sync_without_a_running_server_and_the_periodic_sync(
        binary: Path, tmp_path: Path, directory: Slapd) -> None:
    """`presenced directory sync` on a stopped server writes the store itself; a running server with a
    ``sync_interval`` syncs at start and again after a directory change, ending a removed user's session."""
    server = ldap_server(binary, tmp_path, directory)
    server.add_user("root", "local-root-pw")
    assert sorted(sync(server, "--dry-run")) == [
        'would create alfred@localhost ("Alfred Pennyworth")',
        'would create alice@localhost ("Alice Liddell")',
        'would create bob@localhost ("Bob Builder")',
    ]
    assert server.list_users() == ["root@localhost"]
    assert len(sync(server)) == 3
    assert sorted(server.list_users()) == [
        "alfred@localhost", "alice@localhost", "bob@localhost", "root@localhost"]

    # A filter that matches nobody (a typo, say) would remove every directory account: refused, nothing changes.
    typo = ldap_server(binary, tmp_path, directory, user_filter="(objectClass=inetOrgPersn)")
    done = subprocess.run([str(typo.binary), "--config", str(typo.config), "directory", "sync"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "lists no users" in done.stderr, done
    assert len(server.list_users()) == 4

    # The same data directory, now served with a periodic sync.
    periodic = ldap_server(binary, tmp_path, directory, sync_interval="1s")
    directory.add_user("dora", "Dora Explorer", "dora-dir-pw")
    directory.modify(f"dn: cn=im,{GROUPS}\nchangetype: modify\nadd: member\nmember: uid=dora,{PEOPLE}\n")
    periodic.start()
    try:
        async def scenario() -> None:
            async def dora_listed() -> bool:
                return "dora@localhost" in await asyncio.to_thread(periodic.list_users)

            await wait_until(dora_listed, "the periodic sync to create dora's account")
            alfred, failed = await sign_in(periodic, "alfred", "alfred-dir-pw")
            assert alfred, failed
            try:
                directory.delete(f"uid=alfred,{PEOPLE}")
                await wait(alfred.disconnected.wait(), "alfred's session to end after the periodic sync")
                assert "alfred@localhost" not in await asyncio.to_thread(periodic.list_users)
            finally:
                await alfred.disconnect()

        run(scenario)
    finally:
        periodic.stop()
