"""An S3-compatible store (AWS, Ceph RGW, MinIO) through boto3.

Small objects go up in one PUT; larger ones as a multipart upload whose parts are sent as the
source produces them, so memory stays near two parts whatever the object's size. S3 only makes
an object visible when the PUT or the multipart completion succeeds, which gives atomic writes;
a failed multipart upload is aborted so no billed orphan parts remain.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cache, partial
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from pydantic import SecretStr

from genofed.config import StorageSettings
from genofed.storage.base import (
    CHUNK_SIZE,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    check_range,
    clip_range,
    exact_chunks,
    iter_source,
    key_problem,
    started,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIN_PART_SIZE = 5 * 1024 * 1024  # S3 rejects smaller parts (except the last)
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_UNREACHABLE = (ConnectionError, ConnectionClosedError, ReadTimeoutError)
_SESSION_LOCK = threading.Lock()  # boto3 sessions are not thread-safe; their clients are


class S3Store(ObjectStore):
    """Objects under ``prefix/`` in one bucket of an S3-compatible server."""

    #: MaxKeys of each list request; S3 caps it at 1000.
    list_page_size = 1000

    def __init__(self, settings: StorageSettings) -> None:
        _check_settings(settings)
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/")
        self.endpoint = settings.endpoint_url or f"aws:{settings.region}"
        self._part_size = settings.multipart_chunk_size
        self._secrets = [s for s in (settings.access_key, settings.secret_key) if s is not None]
        self._client = self._connect(settings)

    def describe(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"s3://{where} @ {self.endpoint}"

    def put(self, key: str, source: BinaryIO | Iterable[bytes]) -> int:
        name = self._name(key)
        parts = exact_chunks(iter_source(source, self._part_size), self._part_size)
        pending = next(parts, b"")
        written = len(pending)
        upload_id: str | None = None
        sent: list[CompletedPartTypeDef] = []
        try:
            for part in parts:  # a second part exists: multipart, sending each part held back
                upload_id = upload_id or self._create_upload(key, name)
                sent.append(self._upload_part(key, name, upload_id, len(sent) + 1, pending))
                pending = part
                written += len(part)
            if upload_id is None:
                self._put_object(key, name, pending)
            else:
                sent.append(self._upload_part(key, name, upload_id, len(sent) + 1, pending))
                self._complete(key, name, upload_id, sent)
        except BaseException as error:
            if upload_id is not None:
                self._abort(name, upload_id, error)
            raise
        return written

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        with self._translated(key):
            body = self._client.get_object(Bucket=self.bucket, Key=name)["Body"]
        return io.BufferedReader(_BodyReader(body, partial(self._translated, key)), CHUNK_SIZE)

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_range(start, end, chunk_size)
        return started(self._range(key, self._name(key), start, end, chunk_size))

    def _range(
        self, key: str, name: str, start: int, end: int | None, chunk_size: int
    ) -> Generator[bytes, None, None]:
        body = self._ranged_body(key, name, start, end)
        yield b""  # checks done: see base.started
        if body is None:
            return
        try:
            with self._translated(key):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def _ranged_body(
        self, key: str, name: str, start: int, end: int | None
    ) -> StreamingBody | None:
        """One ranged GET; None for an empty range, which S3 refuses (416) or cannot express."""
        if start == end:
            clip_range(key, self.describe(), start, end, self.size(key))
            return None
        last = "" if end is None else end - 1
        try:
            with self._translated(key):
                response = self._client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={start}-{last}"
                )
        except InvalidRange:  # start at or past the end: a HEAD tells which
            clip_range(key, self.describe(), start, end, self.size(key))
            return None
        if not response.get("ContentRange"):
            response["Body"].close()
            raise StorageError(
                f"{self.endpoint} ignored the Range header reading {key!r}; "
                "use an S3 server that supports ranged GET"
            )
        return response["Body"]

    def size(self, key: str) -> int:
        name = self._name(key)
        with self._translated(key):
            return self._client.head_object(Bucket=self.bucket, Key=name)["ContentLength"]

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._translated(key):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``; backend errors surface on iteration."""
        validate_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=base + prefix,
            PaginationConfig={"PageSize": self.list_page_size},
        )
        with self._translated(prefix):
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(base) :]
                    if key_problem(key) is None:  # e.g. a console's 'folder/' marker
                        yield key

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _put_object(self, key: str, name: str, data: bytes) -> None:
        with self._translated(key):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def _create_upload(self, key: str, name: str) -> str:
        with self._translated(key):
            return self._client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]

    def _upload_part(
        self, key: str, name: str, upload_id: str, number: int, data: bytes
    ) -> CompletedPartTypeDef:
        if number > MAX_PARTS:
            raise StorageError(
                f"{key!r} needs more than {MAX_PARTS} parts of {self._part_size} bytes; "
                "raise storage.multipart_chunk_size"
            )
        with self._translated(key):
            response = self._client.upload_part(
                Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data
            )
        part: CompletedPartTypeDef = {"ETag": response["ETag"], "PartNumber": number}
        if "ChecksumCRC32" in response:  # boto3 checksums parts by default; AWS wants it back
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part

    def _complete(
        self, key: str, name: str, upload_id: str, parts: Sequence[CompletedPartTypeDef]
    ) -> None:
        with self._translated(key):
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )

    def _abort(self, name: str, upload_id: str, error: BaseException) -> None:
        """Abort the upload; if that fails too, say so on the original error."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except (BotoCoreError, ClientError) as abort_error:
            error.add_note(
                f"the multipart upload {upload_id} of {name!r} could not be aborted "
                f"({self._scrub(str(abort_error))}); its parts stay stored until a lifecycle "
                "rule with AbortIncompleteMultipartUpload removes them"
            )

    def _connect(self, settings: StorageSettings) -> S3Client:
        config = Config(retries={"mode": "standard"})
        if settings.endpoint_url:  # Ceph and MinIO usually serve buckets as paths, not hosts
            config = config.merge(Config(s3={"addressing_style": "path"}))
        try:
            with _SESSION_LOCK:
                return _session().client(
                    "s3",
                    endpoint_url=settings.endpoint_url,
                    region_name=settings.region,
                    aws_access_key_id=_reveal(settings.access_key),
                    aws_secret_access_key=_reveal(settings.secret_key),
                    config=config,
                )
        except (BotoCoreError, ValueError) as error:
            raise StorageError(
                f"cannot set up the S3 client for {self.describe()}: {self._scrub(str(error))}; "
                "check storage.endpoint_url and the AWS configuration"
            ) from error

    @contextmanager
    def _translated(self, key: str) -> Iterator[None]:
        """Turn botocore's errors into genofed's, naming the key and the store."""
        try:
            yield
        except ClientError as error:
            raise self._client_failure(error, key) from error
        except BotoCoreError as error:
            raise self._transport_failure(error) from error

    def _client_failure(self, error: ClientError, key: str) -> Exception:
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        if code in _NOT_FOUND:
            return ObjectNotFound(key, self.describe())
        if code == "InvalidRange":
            return InvalidRange(f"the byte range asked of {key!r} in {self.describe()} is empty")
        if code == "NoSuchBucket":
            return StorageError(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}; create it "
                f"(e.g. 'aws s3 mb s3://{self.bucket}') or fix storage.bucket"
            )
        if code in _DENIED:
            return StorageError(
                f"{self.describe()} denied {error.operation_name} of {key!r} ({code}); check "
                "storage.access_key, storage.secret_key and the bucket's policy"
            )
        message = self._scrub(details.get("Message", ""))
        return StorageError(
            f"S3 {error.operation_name} of {key!r} in {self.describe()} failed: {code} {message}; "
            "retry, or check the S3 server's logs"
        )

    def _transport_failure(self, error: BotoCoreError) -> StorageError:
        text = self._scrub(str(error))
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return StorageError(
                f"no S3 credentials for {self.describe()}: set storage.access_key and "
                "storage.secret_key, or configure the AWS credential chain"
            )
        if isinstance(error, _UNREACHABLE):
            return StorageError(
                f"cannot reach the S3 endpoint {self.endpoint} ({text}); check "
                "storage.endpoint_url and that the server is running"
            )
        return StorageError(f"S3 request to {self.endpoint} failed: {text}; retry it")

    def _scrub(self, text: str) -> str:
        """Blank out credentials, in case a server echoes them in an error message."""
        for secret in self._secrets:
            if secret.get_secret_value():
                text = text.replace(secret.get_secret_value(), "***")
        return text


class _BodyReader(io.RawIOBase):
    """A GET body as a raw stream, so io.BufferedReader can serve read(n) with our errors."""

    def __init__(
        self, body: StreamingBody, translated: Callable[[], AbstractContextManager[None]]
    ) -> None:
        super().__init__()
        self._body = body
        self._translated = translated

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as view, self._translated():
            data = self._body.read(view.nbytes)
            view.cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _check_settings(settings: StorageSettings) -> None:
    """Refuse settings S3 would reject later, mid-upload, with a vaguer message."""
    prefix = settings.prefix.strip("/")
    prefix_problem = key_problem(prefix) if prefix else None
    problem = None
    if not settings.bucket:
        problem = "storage.bucket is empty; set the bucket name"
    elif not MIN_PART_SIZE <= settings.multipart_chunk_size <= MAX_PART_SIZE:
        problem = (
            f"storage.multipart_chunk_size is {settings.multipart_chunk_size} bytes; S3 needs "
            f"{MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB)"
        )
    elif (settings.access_key is None) != (settings.secret_key is None):
        problem = "only one of storage.access_key and storage.secret_key is set; set both or none"
    elif prefix_problem is not None:
        problem = f"storage.prefix is not usable: {prefix_problem}"
    elif settings.endpoint_url and urlsplit(settings.endpoint_url).username is not None:
        problem = "storage.endpoint_url holds a user name; put credentials in access/secret_key"
    if problem is not None:
        raise StorageError(f"invalid S3 storage settings: {problem}")


@cache
def _session() -> boto3.session.Session:
    """One boto3 session per process: each new one reloads S3's service model (about 0.1 s)."""
    return boto3.session.Session()


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
