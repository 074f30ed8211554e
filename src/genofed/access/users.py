"""The embedded issuer's users: names, roles and scrypt password hashes, for one-machine nodes.

A node that serves many institutions trusts their OIDC providers instead
(``tokens.trusted_issuers``) and needs no users here. Passwords are stored only as salted scrypt
hashes (``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``, base64), checked in constant time. A failed
login says the same thing whether the user is unknown or the password wrong, so it cannot be used
to find out who has an account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.access.tokens import TokenRequestError, check_roles, check_subject
from genofed.db import User
from genofed.errors import GenofedError

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # scrypt's cost grows with the input; a login must not be a DoS vector
_SCRYPT = {"log_n": 15, "r": 8, "p": 1}
_SALT_SIZE = 16


class UserError(GenofedError):
    """A user cannot be added or changed as asked (exists, unknown, weak password)."""


class LoginFailed(GenofedError):
    """Wrong user name or password, or a disabled account: deliberately one message."""


def hash_password(password: str) -> str:
    salt = os.urandom(_SALT_SIZE)
    log_n, r, p = _SCRYPT["log_n"], _SCRYPT["r"], _SCRYPT["p"]
    digest = _scrypt(password, salt, log_n, r, p)
    return f"scrypt${log_n}${r}${p}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, log_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(log_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=1 << log_n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(
            f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long; "
            "choose a longer passphrase"
        )


def add_user(session: Session, username: str, password: str, roles: Iterable[str]) -> User:
    try:
        check_subject(username)
        chosen = check_roles(frozenset(roles))
    except TokenRequestError as error:
        raise UserError(str(error)) from None
    _check_password(password)
    if session.get(User, username) is not None:
        raise UserError(
            f"user {username!r} exists already: change it with 'genofed user passwd' or "
            "'genofed user roles'"
        )
    user = User(username=username, password_hash=hash_password(password), roles=sorted(chosen))
    session.add(user)
    session.flush()
    return user


def _existing(session: Session, username: str) -> User:
    user = session.get(User, username)
    if user is None:
        raise UserError(f"no user {username!r}: 'genofed user list' shows who exists")
    return user


def set_password(session: Session, username: str, password: str) -> User:
    _check_password(password)
    user = _existing(session, username)
    user.password_hash = hash_password(password)
    return user


def set_roles(session: Session, username: str, roles: Iterable[str]) -> User:
    try:
        chosen = check_roles(frozenset(roles))
    except TokenRequestError as error:
        raise UserError(str(error)) from None
    user = _existing(session, username)
    user.roles = sorted(chosen)
    return user


def set_disabled(session: Session, username: str, disabled: bool) -> User:
    user = _existing(session, username)
    user.disabled = disabled
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User:
    """The user these credentials prove; :class:`LoginFailed` otherwise."""
    user = session.get(User, username) if len(password) <= MAX_PASSWORD else None
    # Hash even for an unknown user, so the response time does not tell who exists.
    stored = user.password_hash if user is not None else _dummy_hash()
    if not password_matches(password, stored) or user is None or user.disabled:
        raise LoginFailed(
            "wrong user name or password (or the account is disabled): try again, or ask the "
            "node operator to reset it ('genofed user passwd')"
        )
    return user


@cache
def _dummy_hash() -> str:
    return hash_password("not the password of anyone")
