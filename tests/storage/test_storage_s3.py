"""What only the S3 store does: multipart uploads, prefixes, settings and error mapping.

These run against the moto server of conftest.py over real HTTP.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from genofed.config import StorageSettings
from genofed.errors import GenofedError
from genofed.storage import (
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    S3Store,
    StorageError,
    open_store,
)
from genofed.storage.s3 import MAX_PART_SIZE, MIN_PART_SIZE

from .conftest import ACCESS_KEY, BUCKET, SECRET_KEY

MiB = 1 << 20
Settings = Callable[..., StorageSettings]


def etag(client: Any, store: S3Store, key: str) -> str:
    head = client.head_object(Bucket=BUCKET, Key=f"{store.prefix}/{key}")
    return str(head["ETag"]).strip('"')


def pending_uploads(client: Any, store: S3Store) -> list[Any]:
    uploads: list[Any] = client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix).get(
        "Uploads", []
    )
    return uploads


def test_large_objects_go_up_in_parts(s3_store: S3Store, s3_client: Any) -> None:
    data = random.Random(1).randbytes(12 * MiB)
    # Ragged chunks: parts must still be exactly 5 MiB except the last.
    chunks = (data[i : i + 3 * MiB + 7] for i in range(0, len(data), 3 * MiB + 7))
    assert s3_store.put("big", chunks) == len(data)
    assert etag(s3_client, s3_store, "big").endswith("-3")  # 5 + 5 + 2 MiB
    assert b"".join(s3_store.iter_range("big")) == data
    assert pending_uploads(s3_client, s3_store) == []


def test_one_part_or_less_is_a_single_put(s3_store: S3Store, s3_client: Any) -> None:
    s3_store.put("exact", [b"x" * MIN_PART_SIZE])
    assert "-" not in etag(s3_client, s3_store, "exact")


def test_a_failed_multipart_upload_is_aborted(s3_store: S3Store, s3_client: Any) -> None:
    s3_store.put("k", [b"earlier"])
    started = []

    def source() -> Iterator[bytes]:
        yield b"a" * 6 * MiB
        yield b"b" * 6 * MiB
        started.extend(pending_uploads(s3_client, s3_store))  # part 1 is up by now
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        s3_store.put("k", source())
    assert len(started) == 1
    assert pending_uploads(s3_client, s3_store) == []
    assert b"".join(s3_store.iter_range("k")) == b"earlier"


def test_keys_live_under_the_prefix(
    s3_store: S3Store, s3_settings: Settings, s3_client: Any
) -> None:
    s3_store.put("a/b", [b"x"])
    assert s3_client.get_object(Bucket=BUCKET, Key=f"{s3_store.prefix}/a/b")["Body"].read() == b"x"
    neighbour = open_store(s3_settings())
    assert list(neighbour.list()) == []
    assert not neighbour.exists("a/b")


def test_a_prefix_given_with_slashes_is_normalised(s3_settings: Settings) -> None:
    store = open_store(s3_settings(prefix="/node-a/archive/"))
    assert isinstance(store, S3Store)
    assert store.prefix == "node-a/archive"
    store.put("k", [b"x"])
    assert list(store.list()) == ["k"]


def test_list_follows_pages_and_skips_foreign_names(s3_store: S3Store, s3_client: Any) -> None:
    keys = [f"k{i:02d}" for i in range(7)]
    for key in reversed(keys):
        s3_store.put(key, [b""])
    for foreign in ("folder/", "a//b", "c/../d"):  # written by other tools
        s3_client.put_object(Bucket=BUCKET, Key=f"{s3_store.prefix}/{foreign}", Body=b"")
    s3_store.list_page_size = 2
    assert list(s3_store.list()) == keys
    assert list(s3_store.list("k0")) == keys


def test_whole_bucket_store(s3_settings: Settings, s3_client: Any) -> None:
    store = open_store(s3_settings(prefix=""))
    assert store.describe() == f"s3://{BUCKET} @ {s3_client.meta.endpoint_url}"
    key = f"whole-bucket-{random.Random().getrandbits(64):x}"
    store.put(key, [b"x"])
    try:
        assert key in list(store.list("whole-bucket-"))
    finally:
        store.delete(key)


def test_describe_names_bucket_prefix_and_endpoint(s3_store: S3Store, s3_endpoint: str) -> None:
    assert s3_store.describe() == f"s3://{BUCKET}/{s3_store.prefix} @ {s3_endpoint}"


def test_a_missing_bucket_says_to_create_it(s3_settings: Settings) -> None:
    store = open_store(s3_settings(bucket="no-such-bucket"))
    with pytest.raises(StorageError, match=r"'no-such-bucket' does not exist.*create it"):
        store.put("k", [b"x"])
    with pytest.raises(StorageError, match="create it"):
        list(store.list())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_endpoint_is_named(s3_settings: Settings) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = open_store(s3_settings(endpoint_url=endpoint))
    with pytest.raises(StorageError, match=f"cannot reach the S3 endpoint {endpoint}"):
        store.exists("k")


@pytest.mark.parametrize("size", [MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, 0])
def test_part_size_must_suit_s3(s3_settings: Settings, size: int) -> None:
    with pytest.raises(StorageError, match=r"multipart_chunk_size.*5 MiB"):
        open_store(s3_settings(multipart_chunk_size=size))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bucket": ""}, "storage.bucket is empty"),
        ({"secret_key": None}, "set both or none"),
        ({"prefix": "a/../b"}, "storage.prefix"),
        ({"endpoint_url": f"http://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:9"}, "user name"),
    ],
)
def test_bad_settings_are_refused(
    s3_settings: Settings, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(StorageError, match=message) as caught:
        open_store(s3_settings(**overrides))
    assert SECRET_KEY not in str(caught.value)


def errors_from_every_failure(s3_settings: Settings) -> list[BaseException]:
    """Provoke each kind of failure the S3 store reports, and collect what it raises."""
    store = open_store(s3_settings())
    store.put("ten", [b"0123456789"])
    attempts: list[Callable[[], object]] = [
        lambda: store.open("missing"),
        lambda: store.size("missing"),
        lambda: store.iter_range("ten", 11),
        lambda: store.put("../escape", [b"x"]),
        lambda: open_store(s3_settings(bucket="no-such-bucket")).put("k", [b"x"]),
        lambda: open_store(s3_settings(endpoint_url=f"http://127.0.0.1:{closed_port()}")).size("k"),
        lambda: open_store(s3_settings(multipart_chunk_size=1)),
    ]
    errors = []
    for attempt in attempts:
        with pytest.raises(GenofedError) as caught:
            attempt()
        errors.append(caught.value)
    return errors


def test_credentials_never_appear_in_errors_or_names(s3_settings: Settings) -> None:
    errors = errors_from_every_failure(s3_settings)
    kinds = {type(error) for error in errors}
    assert kinds == {ObjectNotFound, InvalidRange, InvalidKey, StorageError}
    for error in errors:
        chain: BaseException | None = error
        while chain is not None:  # the botocore errors we chain from, too
            for text in (str(chain), repr(chain)):
                assert ACCESS_KEY not in text
                assert SECRET_KEY not in text
            chain = chain.__cause__ or chain.__context__
    store = open_store(s3_settings())
    for text in (repr(store), store.describe(), str(vars(store)), repr(s3_settings())):
        assert SECRET_KEY not in text


def test_credentials_come_from_the_settings(s3_settings: Settings) -> None:
    store = open_store(s3_settings(access_key=SecretStr("other"), secret_key=SecretStr("pair")))
    store.put("k", [b"x"])  # moto accepts any key pair; boto3 did not need the environment
    assert store.exists("k")
