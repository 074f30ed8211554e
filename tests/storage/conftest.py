"""Fixtures for the storage tests: a real S3 server (moto in server mode) and a store per backend.

The S3 tests talk HTTP to a separate moto process, exactly as they would to Ceph or MinIO;
nothing in boto3 is patched. Without moto installed, the S3 cases are skipped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from genofed.config import StorageSettings
from genofed.storage import LocalStore, ObjectStore, S3Store, open_store
from genofed.storage.s3 import MIN_PART_SIZE

BUCKET = "genofed-test"
# Dummy credentials: distinctive, so a test can prove they never leak into a message.
ACCESS_KEY = "AKIAGENOFEDDUMMY4242"
SECRET_KEY = "genofed-dummy-secret-Zq8xW3vT9kLm2pRs"
SERVER_START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"moto server did not start at {url}:\n{log.read_text()}")
        time.sleep(0.1)


def isolate_from_aws_config(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Hide the developer's AWS profile, keys and endpoint settings from boto3."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "absent-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "absent-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 holding the bucket BUCKET; stopped after the run."""
    pytest.importorskip(
        "moto.server", reason="moto[server] is not importable", exc_type=ImportError
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, url, log)
        with pytest.MonkeyPatch.context() as monkeypatch:
            isolate_from_aws_config(monkeypatch, log.parent)
            _raw_client(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raw_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def aws_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_from_aws_config(monkeypatch, tmp_path)


@pytest.fixture
def s3_client(s3_endpoint: str, aws_isolated: None) -> Any:
    """A plain boto3 client on the test server, to look behind the store's back."""
    return _raw_client(s3_endpoint)


@pytest.fixture
def s3_settings(s3_endpoint: str, aws_isolated: None) -> Callable[..., StorageSettings]:
    """Settings for a fresh prefix in the test bucket; keyword arguments override fields."""

    def make(**overrides: Any) -> StorageSettings:
        fields: dict[str, Any] = {
            "backend": "s3",
            "bucket": BUCKET,
            "prefix": f"test-{uuid.uuid4().hex}",
            "endpoint_url": s3_endpoint,
            "access_key": SecretStr(ACCESS_KEY),
            "secret_key": SecretStr(SECRET_KEY),
            "multipart_chunk_size": MIN_PART_SIZE,
        }
        return StorageSettings(**(fields | overrides))

    return make


@pytest.fixture
def s3_store(s3_settings: Callable[..., StorageSettings]) -> S3Store:
    store = open_store(s3_settings())
    assert isinstance(store, S3Store)
    return store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    store = open_store(StorageSettings(path=tmp_path / "store"))
    assert isinstance(store, LocalStore)
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each backend in turn, for the tests every store must pass."""
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend
