"""A node directory: configuration, the node's Crypt4GH key pair, database and storage folders.

Everything a node needs lives under one folder, with paths in ``genofed.toml`` relative to it,
so the folder can be moved or backed up as a whole.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from genofed import crypt4gh, db
from genofed.access.tokens import ensure_ed25519_key, ensure_signing_key
from genofed.config import CONFIG_FILE_NAME, Settings, load_settings
from genofed.errors import GenofedError

PASSPHRASE_FILE = Path("secrets/crypt4gh.passphrase")
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


class NodeDirectoryError(GenofedError):
    """A node directory that cannot be created or used as asked."""


@dataclass(frozen=True)
class NodeDirectory:
    """What ``init_node`` made."""

    settings: Settings
    config_file: Path
    public_key_fingerprint: str
    passphrase_file: Path | None


def init_node(
    folder: Path, *, name: str, country: str, passphrase: str | None = None
) -> NodeDirectory:
    """Create a ready node in ``folder``: configuration, Crypt4GH key pair, token signing key,
    federation request-signing key, database and storage folders.

    Without a ``passphrase`` a strong random one is generated and kept in a file readable by the
    owner only, so that an unattended node can start; operators can move it to a secret store
    and give it in ``GENOFED_CRYPT4GH__PASSPHRASE`` instead.
    """
    country = country.upper()
    if not COUNTRY_CODE.match(country):
        raise NodeDirectoryError(
            f"country {country!r} is not an ISO 3166-1 alpha-2 code: use two letters, e.g. BE"
        )
    config_file = folder / CONFIG_FILE_NAME
    if config_file.exists():
        raise NodeDirectoryError(
            f"{folder} is a node directory already ({config_file} exists): choose an empty folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"node_name": name, "country": country}
    passphrase_file = None
    if passphrase is None:
        passphrase = secrets.token_urlsafe(32)
        passphrase_file = _write_secret(folder / PASSPHRASE_FILE, passphrase)
        config["crypt4gh"] = {"passphrase_file": str(PASSPHRASE_FILE)}
    config_file.write_text(tomli_w.dumps(config))
    settings = load_settings(config_file)
    pair = crypt4gh.write_keypair(
        settings.crypt4gh.secret_key,
        settings.crypt4gh.public_key,
        passphrase,
        comment=f"genofed node {name} ({country})",
    )
    ensure_signing_key(settings)
    ensure_ed25519_key(settings.federation.signing_key)
    for store in (settings.inbox, settings.archive, settings.backup):
        store.path.mkdir(parents=True, exist_ok=True)
    db.upgrade(settings.database_url)
    return NodeDirectory(settings, config_file, crypt4gh.fingerprint(pair.public), passphrase_file)


def node_secret_key(settings: Settings) -> bytes:
    """The node's Crypt4GH private key, unlocked with the configured passphrase."""
    return crypt4gh.load_private_key(
        settings.crypt4gh.secret_key, lambda: node_key_passphrase(settings)
    )


def node_key_passphrase(settings: Settings) -> str:
    options = settings.crypt4gh
    if options.passphrase is not None:
        return options.passphrase.get_secret_value()
    if options.passphrase_file is not None:
        try:
            return options.passphrase_file.read_text().strip()
        except OSError as error:
            raise NodeDirectoryError(
                f"cannot read the key passphrase file {options.passphrase_file}: "
                f"{error.strerror}; check the path and its permissions"
            ) from None
    raise NodeDirectoryError(
        f"no passphrase for the node key {options.secret_key}: set "
        "GENOFED_CRYPT4GH__PASSPHRASE or crypt4gh.passphrase_file in the configuration"
    )


def _write_secret(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(value + "\n")
    return path
