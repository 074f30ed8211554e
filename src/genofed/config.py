"""One settings object per process: a TOML file plus ``GENOFED_*`` environment variables.

Precedence, highest first: explicit arguments, environment variables (nested fields use a double
underscore, e.g. ``GENOFED_ARCHIVE__BUCKET``), the TOML file, the defaults. The TOML file is the one
named by ``GENOFED_CONFIG``, else ``genofed.toml`` in the current directory when it exists.
Relative paths in the file are taken relative to the file's folder, so a node directory can move.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "genofed.toml"
CONFIG_ENV_VAR = "GENOFED_CONFIG"


class StorageSettings(BaseModel):
    """Where one object store lives: a local folder (default) or an S3-compatible bucket."""

    backend: Literal["local", "s3"] = "local"
    path: Path = Path("storage")  # local backend: the root folder
    bucket: str = ""  # s3 backend
    prefix: str = ""  # s3 backend: key prefix inside the bucket
    endpoint_url: str | None = None  # Ceph, MinIO or any S3-compatible server; None means AWS
    region: str = "us-east-1"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    multipart_chunk_size: int = 64 * 1024 * 1024


class Crypt4GHSettings(BaseModel):
    """The node's Crypt4GH key pair.

    The private key's passphrase comes from ``GENOFED_CRYPT4GH__PASSPHRASE`` or from a file
    readable by the node's user only (a mounted secret), never from the TOML file itself.
    """

    secret_key: Path = Path("keys/node.sec")
    public_key: Path = Path("keys/node.pub")
    passphrase: SecretStr | None = None
    passphrase_file: Path | None = None
    # Keys retired by a rotation (same passphrase): headers sealed for them can still be opened
    # until `genofed archive rotate-key` has re-sealed every file for the current key.
    previous_secret_keys: list[Path] = []


class HttpSettings(BaseModel):
    """Where the node's API listens, and the URL others reach it by."""

    host: str = "127.0.0.1"
    port: int = 8600
    public_url: str = ""  # empty: http://host:port


class TrustedIssuer(BaseModel):
    """Another issuer whose JWTs the node accepts: an OIDC provider (LS-AAI, Keycloak) for
    bearer tokens, a broker or another node for GA4GH visas, or both."""

    issuer: str  # the exact `iss` claim
    jwks_url: str = ""  # where its public keys are; empty: `jwks_file`
    jwks_file: Path | None = None  # a JWKS kept on disk, for offline or pinned setups
    accept: list[Literal["tokens", "visas"]] = ["tokens", "visas"]
    audience: str = ""  # tokens: the `aud` they must carry (the node's client id); empty: any
    # tokens: the claim listing genofed roles; empty (safe default): every token of this issuer
    # gets `default_roles`, so the provider cannot make anyone an operator of this node
    roles_claim: str = ""
    default_roles: list[str] = ["requester"]
    # tokens: appended to their `sub` (e.g. "@org.genofed.node.be"), so that a user of this
    # issuer never acts as the local user of the same name; empty: `sub` as it is
    subject_suffix: str = ""
    # the portal's "sign in with" button (OIDC authorization code + PKCE, redirect URI
    # PUBLIC_URL/portal/login/oidc/callback): the client registered at the issuer; empty: none
    client_id: str = ""
    client_secret: SecretStr | None = None  # only if the issuer makes the client confidential


class TokenSettings(BaseModel):
    """The node's embedded bearer-token issuer (Ed25519-signed JWTs) and the issuers it trusts."""

    signing_key: Path = Path("keys/jwt-signing.pem")
    issuer: str = ""  # empty: the node's public URL
    lifetime_seconds: int = 3600
    visa_lifetime_seconds: int = 3600  # visas are re-issued on demand while the grant lasts
    trusted_issuers: list[TrustedIssuer] = []


class FederationSettings(BaseModel):
    """How this process takes part in the federation (see :mod:`genofed.federation`).

    On a node: the hub it joins (empty: none) and how often it heartbeats and publishes its
    catalogue. On both sides: the Ed25519 key that signs its calls, and how old a signed call
    may be before it is refused as a possible replay.
    """

    hub_url: str = ""  # a node's hub; empty: the node stays on its own
    hub_key: str = ""  # the hub's signing key (base64url), pinned ahead; empty: learnt at join
    sync_seconds: float = 30.0  # heartbeat and catalogue publication interval
    timeout_seconds: float = 10.0  # per call to the hub
    signing_key: Path = Path("keys/node-signing.pem")  # the hub's directory names its own
    clock_skew_seconds: int = 300  # a signed call's `created` may differ this much from now
    min_count: int = 5  # published sex and phenotype counts below this are given as null


class HubSettings(BaseModel):
    """The federation hub's own knobs (``genofed hub init`` writes this section)."""

    name: str = ""  # empty: this directory is not a hub
    late_after_seconds: float = 90.0  # a node without heartbeat this long is `late`
    down_after_seconds: float = 300.0  # ... and this long, `down`
    # the beacon network and federated statistics: how long the hub waits for each node
    beacon_timeout_seconds: float = 2.0


class BeaconSettings(BaseModel):
    """The ``[beacon]`` section of a node's settings.

    ``obo_files``: ontologies the operator adds (MONDO, ORDO, a newer HPO...), relative to the
    node's home; ``environment`` and ``production_status`` as ``/info`` and ``/configuration``
    report them; ``default_granularity`` when a request asks none.
    """

    environment: Literal["prod", "test", "dev", "staging"] = "prod"
    production_status: Literal["DEV", "TEST", "PROD"] = "PROD"
    default_granularity: Literal["boolean", "count", "record"] = "boolean"
    obo_files: list[Path] = []
    description: str = ""
    # the embedded pipeline indexes released datasets' new variant files this often
    index_every_seconds: float = 60.0


class Settings(BaseSettings):
    """Configuration of one genofed process (a node, the hub, a worker or the CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="GENOFED_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Path(".")  # the node directory; relative paths below are resolved against it
    node_name: str = "genofed-node"
    country: str = "XX"  # ISO 3166-1 alpha-2 code of the node's country
    database_url: str = ""  # empty means SQLite at <home>/genofed.db
    crypt4gh: Crypt4GHSettings = Crypt4GHSettings()
    inbox: StorageSettings = StorageSettings(path=Path("storage/inbox"))
    archive: StorageSettings = StorageSettings(path=Path("storage/archive"))
    backup: StorageSettings = StorageSettings(path=Path("storage/backup"))
    # The work queue: empty means the database-backed queue (one machine);
    # amqp://user:password@host:5672/vhost means RabbitMQ (workers on many machines).
    queue_url: SecretStr = SecretStr("")
    # A worker that dies leaves its message leased this long before another worker takes it
    # (live workers renew their leases); a message is tried this many times before it goes to
    # the error queue (a worker crash counts as a try, so a message that kills workers stops).
    queue_lease_seconds: float = 60.0
    queue_max_attempts: int = 5
    inbox_max_chunk_mib: int = 256  # the largest request body of a resumable upload
    embedded_workers: bool = True  # `genofed node serve` also runs the pipeline stages
    http: HttpSettings = HttpSettings()
    tokens: TokenSettings = TokenSettings()
    beacon: BeaconSettings = BeaconSettings()
    federation: FederationSettings = FederationSettings()
    hub: HubSettings = HubSettings()

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        for store in (self.inbox, self.archive, self.backup):
            store.path = self._under_home(store.path)
        self.crypt4gh.secret_key = self._under_home(self.crypt4gh.secret_key)
        self.crypt4gh.public_key = self._under_home(self.crypt4gh.public_key)
        self.tokens.signing_key = self._under_home(self.tokens.signing_key)
        self.federation.signing_key = self._under_home(self.federation.signing_key)
        for trusted in self.tokens.trusted_issuers:
            if trusted.jwks_file is not None:
                trusted.jwks_file = self._under_home(trusted.jwks_file)
        if not self.http.public_url:
            self.http.public_url = f"http://{self.http.host}:{self.http.port}"
        if not self.tokens.issuer:
            self.tokens.issuer = self.http.public_url
        self.crypt4gh.previous_secret_keys = [
            self._under_home(path) for path in self.crypt4gh.previous_secret_keys
        ]
        if self.crypt4gh.passphrase_file is not None:
            self.crypt4gh.passphrase_file = self._under_home(self.crypt4gh.passphrase_file)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'genofed.db'}"
        return self

    def _under_home(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else self.home / path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(_TomlWithHome(settings_cls, config_file))
        return tuple(sources)


class _TomlWithHome(TomlConfigSettingsSource):
    """A TOML source whose ``home`` defaults to the folder that holds the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, toml_file=path)
        self._folder = path.resolve().parent

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        home = Path(data.get("home", "."))
        data["home"] = home if home.is_absolute() else self._folder / home
        return data


# Set while load_settings() reads an explicitly named file; sources are built by a classmethod.
_explicit_file: ContextVar[Path | None] = ContextVar("genofed_config_file", default=None)


def _config_file() -> Path | None:
    explicit = _explicit_file.get()
    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(f"configuration file {explicit} does not exist")
        return explicit
    named = os.environ.get(CONFIG_ENV_VAR)
    if named:
        path = Path(named).expanduser()
        if path.is_dir():
            path = path / CONFIG_FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{CONFIG_ENV_VAR}={named} names no configuration file; "
                f"create one with 'genofed node init DIR' or unset {CONFIG_ENV_VAR}"
            )
        return path
    local = Path(CONFIG_FILE_NAME)
    return local if local.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings for this process (see the module docstring for the order).

    ``config_file`` names the TOML file (or the node directory holding it) explicitly.
    """
    if config_file is not None and config_file.is_dir():
        config_file = config_file / CONFIG_FILE_NAME
    token = _explicit_file.set(config_file)
    try:
        return Settings(**overrides)
    finally:
        _explicit_file.reset(token)
