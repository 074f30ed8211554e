"""A submitter's client of a node: resumable uploads, encrypted for the node on the fly.

Resuming needs the bytes already sent to be the bytes that would be sent again. A ``.c4gh`` file
is sent as it is, so that holds. Any other file is encrypted while it is read, and Crypt4GH
ciphertext is normally random (a fresh session key and random nonces): so the client keeps,
in a resume-state file readable by its owner only, the upload id, the header and the session
key, and seals segment ``i`` with nonce ``i`` (:func:`genofed.crypt4gh.segments.counter_nonce`).
The ciphertext is then a function of the file and the saved key, and the encryptor can start
at any segment. The state file is removed when the upload completes: the session key in it
opens the file.

The sha256 declared on completion covers every byte of the upload, so a resumed run hashes the
part the node already holds again (re-encrypting it, without sending it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from genofed import __version__, crypt4gh
from genofed.crypt4gh.segments import (
    CIPHER_SEGMENT_SIZE,
    SEGMENT_SIZE,
    cipher_size,
    encrypt_segments_counter,
)
from genofed.errors import GenofedError

if TYPE_CHECKING:
    from hashlib import _Hash

STATE_DIR_ENV = "GENOFED_STATE_DIR"
STATE_VERSION = 1
SESSION_KEY_SIZE = 32
READ_SIZE = 1 << 20
TIMEOUT = httpx.Timeout(30.0, read=600.0)
ENCRYPTED_SUFFIX = ".c4gh"
Progress = Callable[[int], None]  # called with the number of bytes of the file done so far


class NodeError(GenofedError):
    """The node refused a request; ``status`` is the HTTP status, 0 for no answer at all."""

    def __init__(self, message: str, status: int = 0, offset: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.offset = offset  # where the upload stands, when the node said so

    @property
    def is_auth(self) -> bool:
        return self.status in (401, 403)

    @property
    def can_resume(self) -> bool:
        """Whether a later run can continue the upload: the node was unreachable or failing,
        refused the token or the chunk size, or holds a different offset than expected. Any
        other refusal (a rejected file, a checksum mismatch, a duplicate) ends the upload."""
        return (
            self.status == 0
            or self.status >= 500
            or self.status in (401, 403, 413)
            or self.offset is not None
        )


@dataclass(frozen=True)
class UploadStatus:
    id: str
    state: str
    offset: int
    file_id: str | None


class NodeClient:
    """The node's inbox API over any httpx client (a real one, or a test client)."""

    def __init__(self, http: httpx.Client, token: str | None) -> None:
        self._http = http
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    def connect(cls, url: str, token: str | None) -> NodeClient:
        headers = {"User-Agent": f"genofed/{__version__}"}
        return cls(httpx.Client(base_url=url, timeout=TIMEOUT, headers=headers), token)

    def close(self) -> None:
        self._http.close()

    def public_key(self) -> bytes:
        """The node's Crypt4GH public key."""
        body = self._json("GET", "/crypt4gh/public-key", "fetching the node's public key")
        return crypt4gh.decode_public_key(body["public_key"].encode(), source="the node's key")

    def create_upload(self, filename: str) -> str:
        body = self._json(
            "POST", "/inbox/uploads", "starting the upload", json={"filename": filename}
        )
        return str(body["id"])

    def upload_status(self, upload_id: str) -> UploadStatus | None:
        """Where the upload stands, or None when the node does not know it."""
        try:
            body = self._json("GET", f"/inbox/uploads/{upload_id}", "asking where the upload is")
        except NodeError as error:
            if error.status == 404:
                return None
            raise
        return UploadStatus(body["id"], body["state"], body["offset"], body["file_id"])

    def put_chunk(self, upload_id: str, offset: int, body: Iterable[bytes], size: int) -> int:
        """Send ``size`` bytes from ``body`` at ``offset``, streamed; returns the new offset."""
        reply = self._json(
            "PUT",
            f"/inbox/uploads/{upload_id}",
            f"sending bytes {offset}-{offset + size}",
            params={"offset": offset},
            content=body,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        return int(reply["offset"])

    def complete(self, upload_id: str, sha256: str, *, ingest: bool = True) -> dict[str, Any]:
        # The node hashes the whole upload before it answers: allow it the time that takes.
        return self._json(
            "POST",
            f"/inbox/uploads/{upload_id}/complete",
            "completing the upload",
            json={"sha256": sha256, "ingest": ingest},
            timeout=httpx.Timeout(30.0, read=None),
        )

    def cancel(self, upload_id: str) -> None:
        self._json("DELETE", f"/inbox/uploads/{upload_id}", "cancelling the upload")

    def files(self) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = self._json("GET", "/inbox/files", "listing your files")[
            "files"
        ]
        return files

    def _json(self, method: str, path: str, doing: str, **options: Any) -> dict[str, Any]:
        headers = {**self._auth, **options.pop("headers", {})}
        try:
            response = self._http.request(method, path, headers=headers, **options)
        except httpx.TransportError as error:
            raise NodeError(
                f"{doing}: no answer from the node ({type(error).__name__}: {error}); check the "
                "URL and your network, then run the command again (uploads resume)"
            ) from error
        if not response.is_success:
            raise _refusal(response, doing)
        body: dict[str, Any] = response.json()
        return body


def _refusal(response: httpx.Response, doing: str) -> NodeError:
    try:
        detail = str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = response.text[:200] or response.reason_phrase
    offset = response.headers.get("Upload-Offset")
    return NodeError(
        f"{doing}: the node answered {response.status_code}: {detail}",
        response.status_code,
        int(offset) if offset and offset.isdigit() else None,
    )


# -- what is sent -------------------------------------------------------------------------------


class Source(Protocol):
    """The bytes of one upload, reproducible from any offset."""

    size: int

    def read_from(self, offset: int) -> Iterator[bytes]: ...


class FileAsIs:
    """A file sent unchanged (already Crypt4GH)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    def read_from(self, offset: int) -> Iterator[bytes]:
        with self.path.open("rb") as stream:
            stream.seek(offset)
            while piece := stream.read(READ_SIZE):
                yield piece


class EncryptedFile:
    """A plaintext file, sent as the Crypt4GH file ``header`` + counter-nonce segments."""

    def __init__(self, path: Path, header: bytes, session_key: bytes) -> None:
        self.path = path
        self._header = header
        self._key = session_key
        self.size = len(header) + cipher_size(path.stat().st_size)

    def read_from(self, offset: int) -> Iterator[bytes]:
        """The ciphertext from byte ``offset`` on: encryption starts at the segment holding it."""
        if offset < len(self._header):
            yield self._header[offset:]
            segment, skip = 0, 0
        else:
            segment, skip = divmod(offset - len(self._header), CIPHER_SEGMENT_SIZE)
        with self.path.open("rb") as stream:
            stream.seek(segment * SEGMENT_SIZE)
            for piece in encrypt_segments_counter(stream, self._key, segment):
                yield piece[skip:] if skip else piece
                skip = 0


class _Pieces:
    """A stream of byte pieces from which exact amounts are taken in turn."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._left = b""

    def take(self, size: int) -> Iterator[bytes]:
        while size > 0:
            if not self._left:
                self._left = next(self._pieces, b"")
                if not self._left:
                    raise GenofedError(
                        "the file got shorter while it was being sent: upload it again once it "
                        "no longer changes"
                    )
            piece, self._left = self._left[:size], self._left[size:]
            size -= len(piece)
            yield piece


# -- resume state -------------------------------------------------------------------------------


def state_dir() -> Path:
    """Where resume states live: ``GENOFED_STATE_DIR``, else ``~/.genofed/uploads``."""
    named = os.environ.get(STATE_DIR_ENV)
    return Path(named).expanduser() if named else Path.home() / ".genofed" / "uploads"


@dataclass
class ResumeState:
    """What a later run needs to continue an upload: kept in a file readable by its owner only,
    because the session key in it decrypts the file."""

    node: str
    file: str
    size: int
    mtime_ns: int
    node_key: str  # fingerprint of the key the header is sealed for
    upload_id: str
    header: str | None = None  # base64, for files encrypted on the fly
    session_key: str | None = None

    @staticmethod
    def location(folder: Path, node: str, file: Path) -> Path:
        name = hashlib.sha256(f"{node}\n{file}".encode()).hexdigest()[:32]
        return folder / f"{name}.json"

    @classmethod
    def load(cls, path: Path) -> ResumeState | None:
        """The state saved at ``path``; None when there is none (or it is unreadable)."""
        try:
            data = json.loads(path.read_text())
            if data.pop("version", None) != STATE_VERSION:
                return None
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Write atomically, owner-only from the first byte."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({"version": STATE_VERSION, **asdict(self)}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)

    def describes(self, node: str, file: Path, info: os.stat_result, node_key: str) -> bool:
        """Whether this state belongs to ``file`` as it is now, on the same node key."""
        return (self.node, self.file, self.size, self.mtime_ns, self.node_key) == (
            node,
            str(file),
            info.st_size,
            info.st_mtime_ns,
            node_key,
        )

    def source(self, file: Path) -> Source:
        if self.session_key is None or self.header is None:
            return FileAsIs(file)
        return EncryptedFile(
            file, base64.b64decode(self.header), base64.b64decode(self.session_key)
        )


# -- one file -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    """A finished upload: the file record the node made, and the offset this run started at."""

    record: dict[str, Any]
    resumed_from: int
    sha256: str


class FileUpload:
    """Upload one file to a node, resuming an earlier run's upload of it when there is one."""

    def __init__(
        self,
        client: NodeClient,
        node: str,
        file: Path,
        node_key: bytes,
        *,
        states: Path,
        chunk_bytes: int,
        ingest: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.node = node
        self.file = file.resolve()
        self.node_key = node_key
        self.state_path = ResumeState.location(states, node, self.file)
        self.chunk_bytes = chunk_bytes
        self.ingest = ingest
        self.progress = progress or (lambda done: None)
        self.encrypt = file.suffix != ENCRYPTED_SUFFIX
        self.state, self.status = self._resume_or_start()
        self.source = self.state.source(self.file)
        self.size = self.source.size

    # -- starting

    def _resume_or_start(self) -> tuple[ResumeState, UploadStatus]:
        if not self.encrypt:
            _check_crypt4gh(self.file)
        info = self.file.stat()
        fingerprint = crypt4gh.fingerprint(self.node_key)
        saved = ResumeState.load(self.state_path)
        if saved is not None:
            status = self.client.upload_status(saved.upload_id)
            if status is not None and status.state != "cancelled":
                if saved.describes(self.node, self.file, info, fingerprint):
                    return saved, status
                if status.state == "open":
                    self.client.cancel(saved.upload_id)  # the file changed: its bytes are stale
        state = self._new_state(info, fingerprint)
        return state, UploadStatus(state.upload_id, "open", 0, None)

    def _new_state(self, info: os.stat_result, fingerprint: str) -> ResumeState:
        name = self.file.name + (ENCRYPTED_SUFFIX if self.encrypt else "")
        header = session_key = None
        if self.encrypt:
            key = os.urandom(SESSION_KEY_SIZE)  # fresh per upload: counter nonces need it
            session_key = base64.b64encode(key).decode()
            header = base64.b64encode(crypt4gh.build_header(key, [self.node_key])).decode()
        upload_id = self.client.create_upload(name)
        state = ResumeState(
            self.node, str(self.file), info.st_size, info.st_mtime_ns, fingerprint, upload_id
        )
        state.header, state.session_key = header, session_key
        state.save(self.state_path)  # before the first byte leaves: a crash can resume
        return state

    # -- sending

    def run(self) -> Uploaded:
        """Send what the node lacks, then complete; the state file goes once the node decided."""
        status = self.status
        if status.state == "completed":  # an earlier run completed but could not clean up
            self.forget()
            return Uploaded(self._record(status.file_id), status.offset, "")
        digest = self._hash_held(status.offset)
        try:
            self._send(status.offset, digest)
            self._check_unchanged()
            record = self.client.complete(status.id, digest.hexdigest(), ingest=self.ingest)
        except NodeError as error:
            if error.can_resume or not self.forget(cancel=True):
                raise
            raise NodeError(f"{error} (this client cancelled the upload)", error.status) from None
        self.forget()
        return Uploaded(record, status.offset, digest.hexdigest())

    def _hash_held(self, offset: int) -> _Hash:
        """The sha256 of the bytes the node holds already (regenerated, not sent)."""
        digest = hashlib.sha256()
        done = 0
        for piece in _Pieces(self.source.read_from(0)).take(offset):
            digest.update(piece)
            done += len(piece)
            self.progress(done)
        return digest

    def _send(self, offset: int, digest: _Hash) -> None:
        pieces = _Pieces(self.source.read_from(offset))
        while offset < self.size:
            size = min(self.chunk_bytes, self.size - offset)
            body = self._counted(pieces.take(size), digest, offset)
            received = self.client.put_chunk(self.state.upload_id, offset, body, size)
            if received != offset + size:
                raise NodeError(
                    f"the node holds {received} bytes after a chunk that should end at byte "
                    f"{offset + size}: run the command again to resume",
                    offset=received,
                )
            offset = received
            self.progress(offset)

    def _counted(self, pieces: Iterator[bytes], digest: _Hash, start: int) -> Iterator[bytes]:
        done = start
        for piece in pieces:
            digest.update(piece)
            yield piece
            done += len(piece)
            self.progress(done)

    def _check_unchanged(self) -> None:
        if self.file.stat().st_mtime_ns != self.state.mtime_ns:
            raise GenofedError(
                f"{self.file} changed while it was being sent: run the command again once it no "
                "longer changes (the upload then starts afresh)"
            )

    def _record(self, file_id: str | None) -> dict[str, Any]:
        found = [record for record in self.client.files() if record["id"] == file_id]
        return found[0] if found else {"id": file_id}

    def forget(self, *, cancel: bool = False) -> bool:
        """Remove the resume state and, with ``cancel``, the node's upload if it is still open;
        returns whether it cancelled one."""
        cancelled = False
        if cancel:
            try:
                status = self.client.upload_status(self.state.upload_id)
                if status is not None and status.state == "open":
                    self.client.cancel(self.state.upload_id)
                    cancelled = True
            except NodeError:
                pass  # the node will not take it further anyway; the state must go
        self.state_path.unlink(missing_ok=True)
        return cancelled


def _check_crypt4gh(path: Path) -> None:
    with path.open("rb") as stream:
        try:
            crypt4gh.read_header(stream)
        except crypt4gh.Crypt4GHError as error:
            raise GenofedError(
                f"{path} ends in {ENCRYPTED_SUFFIX} but is not a Crypt4GH file ({error}); rename "
                "it without the suffix to have it encrypted for the node as it is sent"
            ) from None


def upload_with_retries(
    make: Callable[[], FileUpload], *, retries: int = 2, pause: float = 1.0
) -> Uploaded:
    """Run an upload, starting it again (it resumes) after a network failure."""
    for attempt in range(retries + 1):
        try:
            return make().run()
        except NodeError as error:
            if error.status != 0 or attempt == retries:
                raise
            time.sleep(pause * 2**attempt)
    raise AssertionError("unreachable")
