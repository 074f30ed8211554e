"""``genofed user`` (the node's embedded users, run by its operator on the node) and ``genofed
login`` / ``logout`` (any user, from anywhere: a token stored for later commands)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import typer

from genofed.cli.common import fail, run_guarded, say
from genofed.cli.remote import NodeOption, forget_login, node_url, store_login

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
app = typer.Typer(
    help="The node's own users (for nodes without an external login provider); run on the node.",
    no_args_is_help=True,
)

RoleOption = typer.Option(
    ..., "--role", help="A role: submitter, requester, dac_member or operator; repeat for several."
)
PasswordStdinOption = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of stdin (scripts)."
)


def _password(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail("--password-stdin: stdin held no password")
        return line
    entered: str = typer.prompt("password", hide_input=True, confirmation_prompt=confirm)
    return entered


@contextmanager
def _users_db() -> Iterator[Session]:
    from genofed import db
    from genofed.config import load_settings

    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    try:
        db.check_schema(engine)
        with db.session_scope(db.for_writing(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _change(action: Callable[[Session], T]) -> T:
    def run() -> T:
        with _users_db() as session:
            return action(session)

    return run_guarded(run)


@app.command()
def add(
    username: str = typer.Argument(..., help="The user name (the subject of their tokens)."),
    role: list[str] = RoleOption,
    password_stdin: bool = PasswordStdinOption,
) -> None:
    """Add a user who logs in with a password ('genofed login', the portal)."""
    from genofed.access import users

    password = _password(password_stdin, confirm=True)
    _change(lambda session: users.add_user(session, username, password, role))
    say(f"added {username} ({', '.join(sorted(set(role)))})")


@app.command("list")
def list_() -> None:
    """List the users: name, roles, whether disabled."""
    from genofed.access import users

    rows = _change(
        lambda session: [
            (u.username, ",".join(u.roles), "disabled" if u.disabled else "active")
            for u in users.list_users(session)
        ]
    )
    if not rows:
        say("no users yet: add one with 'genofed user add NAME --role requester'")
    for row in rows:
        typer.echo("\t".join(row))


@app.command()
def passwd(
    username: str = typer.Argument(..., help="Whose password to set."),
    password_stdin: bool = PasswordStdinOption,
) -> None:
    """Set a user's password (their tokens issued earlier stay valid until they expire)."""
    from genofed.access import users

    password = _password(password_stdin, confirm=True)
    _change(lambda session: users.set_password(session, username, password))
    say(f"password of {username} changed")


@app.command()
def roles(
    username: str = typer.Argument(..., help="Whose roles to set."),
    role: list[str] = RoleOption,
) -> None:
    """Replace a user's roles (from their next login on)."""
    from genofed.access import users

    _change(lambda session: users.set_roles(session, username, role))
    say(f"{username} now has: {', '.join(sorted(set(role)))}")


@app.command()
def disable(username: str = typer.Argument(..., help="Who may no longer log in.")) -> None:
    """Stop a user from logging in (tokens issued earlier expire on their own)."""
    from genofed.access import users

    _change(lambda session: users.set_disabled(session, username, True))
    say(f"{username} can no longer log in")


@app.command()
def enable(username: str = typer.Argument(..., help="Who may log in again.")) -> None:
    """Let a disabled user log in again."""
    from genofed.access import users

    _change(lambda session: users.set_disabled(session, username, False))
    say(f"{username} can log in again")


def login(
    node: str | None = NodeOption,
    user: str = typer.Option(..., "--user", help="Your user name at the node."),
    password_stdin: bool = PasswordStdinOption,
) -> None:
    """Log in to a node with your password; the token is kept for later commands."""
    import httpx

    url = node_url(node)
    password = _password(password_stdin, confirm=False)
    try:
        response = httpx.post(
            f"{url}/auth/token", json={"username": user, "password": password}, timeout=30
        )
    except httpx.HTTPError as error:
        raise fail(f"cannot reach {url} ({type(error).__name__}): check the URL") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:200]
        raise fail(f"{url} refused the login ({response.status_code}): {detail}")
    answer = response.json()
    expires = datetime.now(UTC) + timedelta(seconds=int(answer["expires_in"]))
    path = store_login(url, user, answer["access_token"], expires)
    say(
        f"logged in to {url} as {user} ({', '.join(answer.get('roles', []))}) until "
        f"{expires:%Y-%m-%d %H:%M} UTC; token kept in {path}"
    )


def logout(node: str | None = NodeOption) -> None:
    """Forget the token stored for a node."""
    url = node_url(node)
    say(f"logged out of {url}" if forget_login(url) else f"you were not logged in to {url}")
