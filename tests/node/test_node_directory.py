"""`genofed node init` and the settings it writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genofed import crypt4gh, db
from genofed.cli.main import app
from genofed.config import load_settings
from genofed.node.directory import NodeDirectoryError, init_node, node_secret_key


def test_init_writes_a_ready_node(tmp_path: Path) -> None:
    made = init_node(tmp_path / "be", name="Belgian node", country="be")
    settings = made.settings

    assert settings.node_name == "Belgian node"
    assert settings.country == "BE"
    assert settings.home == (tmp_path / "be").resolve()
    for store in (settings.inbox, settings.archive, settings.backup):
        assert store.path.is_dir()
        assert store.path.is_relative_to(settings.home)
    assert db.current_revision(settings.database_url) == db.head_revision()
    db.check_schema(settings.database_url)

    secret_file = settings.crypt4gh.secret_key
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    with pytest.raises(crypt4gh.WrongPassphrase):  # sealed: unusable without the passphrase
        crypt4gh.load_private_key(secret_file, None)
    secret = node_secret_key(settings)
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    assert crypt4gh.public_key_of(secret) == public
    assert made.public_key_fingerprint == crypt4gh.fingerprint(public)


def test_init_writes_the_token_signing_key(tmp_path: Path) -> None:
    from genofed.access import issue_token, verify_token

    settings = init_node(tmp_path / "dk", name="Danish node", country="DK").settings
    assert stat.S_IMODE(settings.tokens.signing_key.stat().st_mode) == 0o600
    assert verify_token(settings, issue_token(settings, "op", ["operator"])).subject == "op"


def test_private_key_is_protected_and_passphrase_kept_apart(tmp_path: Path) -> None:
    made = init_node(tmp_path / "fi", name="Finnish node", country="FI")
    settings = made.settings
    assert made.passphrase_file is not None
    assert stat.S_IMODE(made.passphrase_file.stat().st_mode) == 0o600
    passphrase = made.passphrase_file.read_text().strip()
    assert passphrase not in made.config_file.read_text()
    with pytest.raises(crypt4gh.WrongPassphrase):
        crypt4gh.load_private_key(settings.crypt4gh.secret_key, "not the passphrase")
    crypt4gh.load_private_key(settings.crypt4gh.secret_key, passphrase)


def test_explicit_passphrase_is_not_written_anywhere(tmp_path: Path) -> None:
    made = init_node(tmp_path / "se", name="Swedish node", country="SE", passphrase="s3cret-pass")
    assert made.passphrase_file is None
    for path in (tmp_path / "se").rglob("*"):
        if path.is_file():
            assert b"s3cret-pass" not in path.read_bytes(), path
    settings = load_settings(made.config_file)
    with pytest.raises(NodeDirectoryError, match="GENOFED_CRYPT4GH__PASSPHRASE"):
        node_secret_key(settings)
    with_passphrase = load_settings(made.config_file, crypt4gh={"passphrase": "s3cret-pass"})
    assert crypt4gh.public_key_of(node_secret_key(with_passphrase)) == crypt4gh.load_public_key(
        settings.crypt4gh.public_key
    )


def test_directory_can_move(tmp_path: Path) -> None:
    init_node(tmp_path / "old", name="n", country="BE")
    (tmp_path / "old").rename(tmp_path / "new")
    settings = load_settings(tmp_path / "new")
    assert settings.home == (tmp_path / "new").resolve()
    assert node_secret_key(settings)
    assert db.current_revision(settings.database_url) == db.head_revision()


def test_init_refuses_an_existing_node_and_keeps_its_keys(tmp_path: Path) -> None:
    made = init_node(tmp_path / "be", name="n", country="BE")
    key_before = made.settings.crypt4gh.secret_key.read_bytes()
    with pytest.raises(NodeDirectoryError, match="node directory already"):
        init_node(tmp_path / "be", name="n", country="BE")
    assert made.settings.crypt4gh.secret_key.read_bytes() == key_before


@pytest.mark.parametrize("country", ["Belgium", "B", "12", ""])
def test_init_rejects_a_bad_country_code(tmp_path: Path, country: str) -> None:
    with pytest.raises(NodeDirectoryError, match="ISO 3166-1"):
        init_node(tmp_path / "x", name="n", country=country)
    assert not (tmp_path / "x").exists()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = init_node(tmp_path / "be", name="file name", country="BE")
    monkeypatch.setenv("GENOFED_CONFIG", str(made.config_file))
    monkeypatch.setenv("GENOFED_NODE_NAME", "env name")
    monkeypatch.setenv("GENOFED_ARCHIVE__BACKEND", "s3")
    monkeypatch.setenv("GENOFED_ARCHIVE__BUCKET", "archive-bucket")
    settings = load_settings()
    assert settings.node_name == "env name"
    assert settings.country == "BE"
    assert settings.archive.backend == "s3"
    assert settings.archive.bucket == "archive-bucket"


def test_missing_config_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENOFED_CONFIG", str(tmp_path / "nowhere.toml"))
    with pytest.raises(FileNotFoundError, match="genofed node init"):
        load_settings()


def test_cli_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["node", "init", str(tmp_path / "node"), "--name", "CLI node", "--country", "SE"]
    )
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.output
    assert (tmp_path / "node" / "genofed.toml").is_file()
    again = CliRunner().invoke(app, ["node", "init", str(tmp_path / "node")])
    assert again.exit_code == 1
    assert "node directory already" in again.output
    assert "Traceback" not in again.output


def test_secrets_are_not_in_the_settings_repr(tmp_path: Path) -> None:
    made = init_node(tmp_path / "n", name="n", country="BE", passphrase="hidden-value")
    settings = load_settings(made.config_file, crypt4gh={"passphrase": "hidden-value"})
    assert "hidden-value" not in repr(settings)
    assert "hidden-value" not in str(settings.model_dump())
