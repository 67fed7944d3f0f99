"""The harness itself, against today's binary: config writing and account creation through the CLI.

These run without the XMPP listener, so they pass before `serve` is implemented.
"""

from __future__ import annotations

from conftest import USERS, Server
from xmpp import DOMAIN


def test_config_and_users_are_created_through_the_cli(server_files: Server) -> None:
    """The generated TOML loads (the CLI rejects unknown keys) and every account exists."""
    assert server_files.config.read_text().startswith(f'domain = "{DOMAIN}"')
    assert f"127.0.0.1:{server_files.port}" in server_files.config.read_text()
    assert sorted(server_files.list_users()) == sorted(f"{u}@{DOMAIN}" for u in USERS)
    # The password went through stdin; it must not be readable from the config or the store name.
    assert USERS["alice"] not in server_files.config.read_text()


def test_deleted_user_is_gone(server_files: Server) -> None:
    server_files.cli("user", "del", f"dave@{DOMAIN}")
    assert f"dave@{DOMAIN}" not in server_files.list_users()
    assert f"alice@{DOMAIN}" in server_files.list_users()
