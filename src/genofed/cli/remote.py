"""What every command that talks to a node shares: ``--node``, ``--token`` and stored logins.

``genofed login`` keeps one token per node in ``~/.genofed/credentials.json`` (or the file named
by ``GENOFED_CREDENTIALS``), readable by its owner only: a bearer token is a credential. A command
then finds its node in ``--node`` / ``GENOFED_NODE``, else the node logged in to last, and its
token in ``--token`` / ``GENOFED_TOKEN``, else the stored one for that node.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

from genofed.cli.common import err_console, fail

if TYPE_CHECKING:
    from genofed.node.client import NodeClient

TOKEN_ENV = "GENOFED_TOKEN"
NODE_ENV = "GENOFED_NODE"
CREDENTIALS_ENV = "GENOFED_CREDENTIALS"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

NodeOption = typer.Option(
    None,
    "--node",
    envvar=NODE_ENV,
    show_default=False,
    help="The node's URL, e.g. https://ega.example.org; default: the node you logged in to last.",
)
TokenOption = typer.Option(
    None,
    "--token",
    envvar=TOKEN_ENV,
    show_default=False,
    help=f"Your bearer token; better given in {TOKEN_ENV} or stored by 'genofed login', as "
    "other users can see command lines.",
)


def credentials_file() -> Path:
    named = os.environ.get(CREDENTIALS_ENV)
    return Path(named).expanduser() if named else Path.home() / ".genofed" / "credentials.json"


def _stored() -> dict[str, Any]:
    path = credentials_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"nodes": {}}
    except (OSError, ValueError) as error:
        raise fail(
            f"the stored logins in {path} cannot be read ({error}): delete the file and run "
            "'genofed login' again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        return {"nodes": {}}
    return data


def store_login(node: str, user: str, token: str, expires_at: datetime) -> Path:
    """Keep ``token`` for ``node`` (and make it the default node); returns the file."""
    data = _stored()
    data["nodes"][node] = {"user": user, "token": token, "expires_at": expires_at.isoformat()}
    data["default"] = node
    return _write(data)


def forget_login(node: str) -> bool:
    data = _stored()
    if data["nodes"].pop(node, None) is None:
        return False
    if data.get("default") == node:
        data.pop("default")
    _write(data)
    return True


def _write(data: dict[str, Any]) -> Path:
    """Replace the credentials file atomically, created owner-only from the start."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(data, out, indent=2)
    os.replace(temp, path)
    return path


def node_url(node: str | None) -> str:
    """The node to talk to: as given, else the default login; checked to be a URL."""
    if not node:
        node = _stored().get("default")
        if not node:
            raise fail(
                f"which node? give --node URL, set {NODE_ENV}, or run 'genofed login --node URL'"
            )
    parts = urlsplit(node)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"--node {node!r} is not a node URL: give e.g. https://ega.example.org")
    return node.rstrip("/")


def bearer_token(node: str, token: str | None) -> str:
    """The token to send to ``node``: as given, else the stored login if it has not expired."""
    if token:
        return token
    login = _stored()["nodes"].get(node)
    if login is None:
        raise fail(
            f"no token for {node}: run 'genofed login --node {node}', or give --token / set "
            f"{TOKEN_ENV} with a token from the node's operator ('genofed token issue')"
        )
    try:
        expired = datetime.fromisoformat(login["expires_at"]) <= datetime.now(UTC)
    except (KeyError, TypeError, ValueError):
        expired = True
    if expired:
        raise fail(
            f"your login at {node} as {login.get('user')} has expired: run "
            f"'genofed login --node {node}' again"
        )
    return str(login["token"])


def connect(node: str | None, token: str | None) -> NodeClient:
    """A client for the node, with the caller's token; warns when it would travel in clear."""
    from genofed.node.client import NodeClient

    url = node_url(node)
    chosen = bearer_token(url, token)
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        err_console.print(
            "[yellow]warning:[/] your token travels unencrypted over http://; use https://",
            highlight=False,
        )
    return NodeClient.connect(url, chosen)
