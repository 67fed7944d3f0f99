"""``presenced user passwd``, ``user import`` / ``export`` (the source product's contact CSV, DESIGN §3, and an
accounts CSV) and ``presenced check-config``, driven through the CLI and checked with slixmpp and raw SASL.
"""

from __future__ import annotations

import base64
import subprocess

from conftest import Server
from test_ops import NS_SASL, TlsXmpp
from xmpp import DOMAIN, clients, connect, run

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def presenced(server: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(server.binary), "--config", str(server.config), *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def sasl_answer(server: Server, local: str, password: str) -> str:
    """The local name of the server's answer to SASL PLAIN: ``success`` or ``failure``."""
    t = TlsXmpp(server)
    try:
        t.starttls()
        t.open_stream()
        payload = base64.b64encode(f"\0{local}\0{password}".encode()).decode()
        t.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>".encode())
        el = t.next_element(f"the SASL answer for {local}")
        return el.tag.split("}")[-1]
    finally:
        t.close()


def test_passwd_on_a_running_server_replaces_the_password(server: Server) -> None:
    """Through the admin socket: the new password signs in (SCRAM, with slixmpp), the old one fails."""
    old = server.users["alice"]
    out = server.cli("user", "passwd", ALICE, "--password-stdin", stdin="brand-new-pw\n")
    assert out.stdout.strip() == f"password changed for {ALICE}", out.stdout
    server.users["alice"] = "brand-new-pw"
    assert sasl_answer(server, "alice", old) == "failure"
    assert sasl_answer(server, "alice", "brand-new-pw") == "success"

    async def scenario() -> None:
        async with clients(connect(server, "alice")) as (alice,):
            await alice.ping_server()

    run(scenario)
    unknown = presenced(server, "user", "passwd", f"nobody@{DOMAIN}", "--password", "x")
    assert unknown.returncode == 1 and "no such user" in unknown.stderr, unknown.stderr


def test_import_and_export_of_contact_lists_and_accounts(server: Server, tmp_path) -> None:
    """Refused while the server runs. Stopped: an accounts file creates eve (her row with an existing
    account is rejected); a contact file in the source format lists bob on alice's roster (nickname, group,
    subscribed both ways) and rejects each bad row with its reason (exit status 2); export prints the rows
    back. Started again: alice's roster shows bob as imported and bob's presence reaches her."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        f"alice,{DOMAIN},bob,{DOMAIN},Bobby,Team\n"
        f"alice,{DOMAIN},frank,partner.example,,Partners\n"
        f"alice,{DOMAIN},alice,{DOMAIN},me,Team\n"
        f"ghost,{DOMAIN},bob,{DOMAIN},,Team\n"
        f"alice,{DOMAIN},x,bad_domain.example,,Team\n"
        f"alice,{DOMAIN},bob\n"
    )
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(f"UserID,UserDomain,Password\neve,{DOMAIN},eve-pw-5\nbob,{DOMAIN},whatever\n")

    running = presenced(server, "user", "import", str(contacts))
    assert running.returncode == 1 and "stop it first" in running.stderr, running.stderr

    server.stop()
    acc = presenced(server, "user", "import", "--accounts", str(accounts))
    assert acc.returncode == 2, (acc.stdout, acc.stderr)
    assert "line 3: rejected: the account exists" in acc.stdout, acc.stdout
    assert "imported 1 accounts, rejected 1" in acc.stdout, acc.stdout

    imp = presenced(server, "user", "import", str(contacts))
    assert imp.returncode == 2, (imp.stdout, imp.stderr)
    lines = imp.stdout.splitlines()
    assert lines == [
        "line 3: rejected: cannot add self as a contact",
        "line 4: rejected: user is not assigned to this node",
        "line 5: rejected: invalid contact domain",
        "line 6: rejected: invalid format: 3 fields, expected 6",
        "imported 2 contacts, rejected 4",
    ], imp.stdout

    exported = presenced(server, "user", "export")
    assert exported.returncode == 0, exported.stderr
    rows = set(exported.stdout.splitlines())
    assert f"alice,{DOMAIN},bob,{DOMAIN},Bobby,Team" in rows, rows
    assert f"alice,{DOMAIN},frank,partner.example,,Partners" in rows, rows
    assert f"bob,{DOMAIN},alice,{DOMAIN},,General" in rows, rows

    server.users["eve"] = "eve-pw-5"
    server.start()

    async def scenario() -> None:
        async with clients(connect(server, "bob"), connect(server, "alice"), connect(server, "eve")) as (
            bob, alice, _eve,
        ):
            items = await alice.roster_items()
            assert items[BOB]["name"] == "Bobby" and items[BOB]["groups"] == ["Team"], items
            assert items[BOB]["subscription"] == "to", items
            assert items["frank@partner.example"]["subscription"] == "none", items
            assert (await bob.roster_items())[ALICE]["subscription"] == "from"
            # Bob signed in first: alice receives his presence because the import subscribed her.
            bob.xmpp.send_presence(pstatus="after import")
            await alice.presence_from(BOB)

    run(scenario)


def test_check_config_names_each_problem_and_passes_a_good_file(server: Server, tmp_path) -> None:
    good = presenced(server, "check-config")
    assert good.returncode == 0 and good.stdout.strip().endswith(": ok"), (good.stdout, good.stderr)
    bad = tmp_path / "bad.toml"
    text = server.config.read_text()
    bad.write_text(text.replace("[xmpp]", f'[xmpp]\ntls_cert = "{tmp_path}/none.pem"\ntls_key = "{tmp_path}/none.key"', 1))
    out = subprocess.run([str(server.binary), "--config", str(bad), "check-config"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1, out.stdout
    assert "xmpp.tls_cert/tls_key" in out.stderr and "none.pem" in out.stderr, out.stderr
    syntax = tmp_path / "syntax.toml"
    syntax.write_text(text + "\nno_such_key = 1\n")
    out = subprocess.run([str(server.binary), "--config", str(syntax), "check-config"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "no_such_key" in out.stderr, out.stderr
    missing = subprocess.run([str(server.binary), "check-config"], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "--config" in missing.stderr
