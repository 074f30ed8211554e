"""``genofed download``: fetch a dataset's files sealed for your key, resumably; decrypt; verify.

The node re-seals each file's header for the public key of ``--key`` and sends the archived body
unchanged. It derives the new header deterministically, so the same file for the same key is the
same bytes on every request and its ``ETag`` names them: that is what lets a later request carry
on where an earlier one stopped. In ``--out`` DIR, for a file ID:

- ``ID.c4gh.part`` with ``ID.c4gh.part.etag`` beside it: a download under way. The next attempt
  (after a network failure, or a later run) asks for the rest with ``Range`` and ``If-Range``; if
  the representation changed meanwhile (another key, a re-encrypted archive), the node answers with
  the whole file and the download starts over.
- ``ID.c4gh``: downloaded whole, not yet decrypted (kept afterwards with ``--keep-encrypted``).
- ``.ID.decrypting``: plaintext being written. It becomes ``ID`` only once its size, sha256 and md5
  match the node's listing, so a file under its final name is always a verified one: a rerun
  skips it (after checking its sha256 again).

httpx is imported inside the functions that use it, to keep the CLI's start fast.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit

import typer
from rich.text import Text

from genofed import __version__, crypt4gh
from genofed.cli.common import byte_progress, err_console, fail, run_guarded, say
from genofed.cli.remote import NodeOption, TokenOption, bearer_token, node_url
from genofed.errors import GenofedError

if TYPE_CHECKING:
    import httpx
    from rich.progress import Progress, TaskID

    from genofed.archive.checksums import ParallelDigests

T = TypeVar("T")
ATTEMPTS = 4  # per file, for failures a retry may cure
RETRY_PAUSE = 1.0  # seconds before the first retry, doubled before each next one
READ_SIZE = 1 << 20
KEY_HEADER = "X-C4GH-Public-Key"
PART, ETAG, COMPLETE = ".c4gh.part", ".c4gh.part.etag", ".c4gh"
# A file id becomes a file name: a node must not be able to write outside --out (no "/",
# no leading dot).
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class DownloadFailed(GenofedError):
    """One file could not be had. ``stop_all``: no other file can succeed either (the node
    refuses the token or the visa), so the command stops trying."""

    def __init__(self, message: str, *, stop_all: bool = False) -> None:
        super().__init__(message)
        self.stop_all = stop_all


class _Transient(Exception):
    """A failure a retry may cure: no answer, a cut connection, a busy or failing node."""


@dataclass(frozen=True)
class Listed:
    """A file as the node lists it: what the decrypted bytes must be."""

    id: str
    size: int
    sha256: str
    md5: str


@dataclass(frozen=True)
class Outcome:
    file: Listed
    error: str | None = None
    already: bool = False


# -- the node -----------------------------------------------------------------------------------


class DataClient:
    """The node's data-out routes for one user, with files sealed for one public key."""

    def __init__(self, url: str, token: str, public_key: bytes) -> None:
        import httpx

        headers = {
            "User-Agent": f"genofed/{__version__}",
            "Authorization": f"Bearer {token}",
            KEY_HEADER: base64.b64encode(public_key).decode(),
        }
        timeout = httpx.Timeout(30.0, read=120.0)
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def files(self, dataset: str) -> list[Listed]:
        """The dataset's files; network failures are retried like downloads."""
        path = f"/data/datasets/{quote(dataset, safe='')}/files"
        body = _with_retries(lambda: self._get_json(path), f"listing {dataset}")
        return [_listed(entry) for entry in body.get("files", [])]

    def _get_json(self, path: str) -> dict[str, Any]:
        import httpx

        try:
            response = self.http.get(path)
        except httpx.TransportError as error:
            raise _Transient(_no_answer(error)) from None
        _check_status(response)
        body: dict[str, Any] = response.json()
        return body

    @contextmanager
    def stream(self, file_id: str, offset: int, etag: str | None) -> Iterator[httpx.Response]:
        """The file from byte ``offset`` on (``If-Range`` ``etag``), as an open response."""
        headers = {"Range": f"bytes={offset}-", "If-Range": etag} if offset and etag else {}
        path = f"/data/files/{quote(file_id, safe='')}"
        with self.http.stream("GET", path, headers=headers) as response:
            yield response


def _listed(entry: dict[str, Any]) -> Listed:
    """One listing entry, checked: an id usable as a file name, and checksums to verify by."""
    file_id = str(entry.get("id"))
    if not SAFE_ID.fullmatch(file_id):
        raise GenofedError(f"the node lists a file id {file_id!r} unusable as a file name")
    if not entry.get("sha256") or not entry.get("md5") or entry.get("size") is None:
        raise GenofedError(f"the node lists no size, sha256 or md5 for {file_id}: cannot verify")
    return Listed(file_id, int(entry["size"]), str(entry["sha256"]), str(entry["md5"]))


def _check_status(response: httpx.Response) -> None:
    """Raise for an answer other than success: retryable (5xx, 429) or not (the rest)."""
    if response.is_success:
        return
    response.read()
    try:
        detail = str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = response.text[:200] or response.reason_phrase
    message = f"the node answered {response.status_code}: {detail}"
    if response.status_code >= 500 or response.status_code == 429:
        raise _Transient(message)
    raise DownloadFailed(message, stop_all=response.status_code in (401, 403))


def _no_answer(error: Exception) -> str:
    """A network failure in words: no answer at all, or a connection cut midway."""
    return f"the connection to the node failed ({type(error).__name__}: {error or 'no detail'})"


def _with_retries(action: Callable[[], T], doing: str) -> T:
    """Run ``action``, again after a pause that doubles each time, while it fails transiently."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except _Transient as error:
            if attempt == ATTEMPTS:
                raise DownloadFailed(
                    f"{doing}: {error}; gave up after {ATTEMPTS} attempts: check your network "
                    "and run the same command again (downloads resume)"
                ) from None
            pause = RETRY_PAUSE * 2 ** (attempt - 1)
            say(f"{doing}: {error}; trying again in {pause:g} s")
            time.sleep(pause)
    raise AssertionError("unreachable")


# -- one file's download ------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    """Where a file stands in DIR: see the module's docstring."""

    folder: Path
    id: str

    @property
    def part(self) -> Path:
        return self.folder / f"{self.id}{PART}"

    @property
    def etag(self) -> Path:
        return self.folder / f"{self.id}{ETAG}"

    @property
    def complete(self) -> Path:
        return self.folder / f"{self.id}{COMPLETE}"

    @property
    def temp(self) -> Path:
        return self.folder / f".{self.id}.decrypting"

    @property
    def plain(self) -> Path:
        return self.folder / self.id

    def forget_part(self) -> None:
        self.part.unlink(missing_ok=True)
        self.etag.unlink(missing_ok=True)


class Bar:
    """One progress bar (drawn only on a terminal)."""

    def __init__(self, progress: Progress, description: str, total: int | None = None) -> None:
        self._progress = progress
        self._task: TaskID = progress.add_task(description, total=total)

    def reset(self, total: int | None, done: int = 0) -> None:
        self._progress.update(self._task, total=total, completed=done)

    def advance(self, size: int) -> None:
        self._progress.advance(self._task, size)


def fetch(client: DataClient, paths: Paths, bar: Bar) -> None:
    """Make ``paths.complete``: resume the partial download, retrying transient failures."""
    _with_retries(lambda: _fetch_once(client, paths, bar), f"{paths.id}: downloading")
    paths.part.replace(paths.complete)
    paths.etag.unlink(missing_ok=True)


def _resume_point(paths: Paths) -> tuple[int, str | None]:
    """Where to continue: the partial file's size and the ETag of its bytes; (0, None) when
    there is no part, or its ETag was lost (its bytes cannot be matched to the node's then)."""
    try:
        return paths.part.stat().st_size, paths.etag.read_text().strip() or None
    except FileNotFoundError:
        paths.forget_part()
        return 0, None


def _fetch_once(client: DataClient, paths: Paths, bar: Bar) -> None:
    """One request for what the part lacks; appends to it, or starts it over."""
    import httpx

    offset, etag = _resume_point(paths)
    if offset and etag is None:
        offset = 0
    if offset:
        say(f"{paths.id}: resuming at byte {offset}")
    try:
        with client.stream(paths.id, offset, etag) as response:
            start, total = _placement(response, paths, offset, etag)
            bar.reset(total, start)
            with paths.part.open("ab" if start else "wb") as out:
                if not start:  # truncated first, so an old part never lies beside a new ETag
                    paths.etag.write_text(response.headers.get("etag", ""))
                for chunk in response.iter_raw(READ_SIZE):
                    out.write(chunk)
                    bar.advance(len(chunk))
                out.flush()
                os.fsync(out.fileno())
    except httpx.TransportError as error:
        raise _Transient(_no_answer(error)) from None
    received = paths.part.stat().st_size
    if received != total:
        raise _Transient(f"the transfer stopped at byte {received} of {total}")


def _placement(
    response: httpx.Response, paths: Paths, offset: int, etag: str | None
) -> tuple[int, int]:
    """Where the answer's bytes go in the file, and the file's total size."""
    status = response.status_code
    if status == 416:  # the part is as long as the file, or longer: it cannot be trusted
        paths.forget_part()
        raise _Transient("the partial download does not fit the file; starting over")
    _check_status(response)
    if status == 206:
        first, total = _content_range(response.headers.get("content-range", ""))
        if first != offset or response.headers.get("etag") != etag:
            paths.forget_part()
            raise _Transient(f"the node resumed at byte {first}, not {offset}; starting over")
        return first, total
    if offset:
        say(f"{paths.id}: the file changed on the node since the partial download; starting over")
    length = response.headers.get("content-length", "")
    if not length.isdigit():
        raise DownloadFailed("the node sent the file without its length (Content-Length)")
    return 0, int(length)


def _content_range(value: str) -> tuple[int, int]:
    """The first byte and the total of ``bytes FIRST-LAST/TOTAL``."""
    found = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", value.strip())
    if found is None:
        raise _Transient(f"the node sent an unreadable Content-Range {value!r}")
    return int(found[1]), int(found[2])


# -- one file's decryption ----------------------------------------------------------------------


class _HashingFile:
    """Writes plaintext to a file while its digests are computed on threads of their own."""

    def __init__(self, out: BinaryIO, digests: ParallelDigests, bar: Bar) -> None:
        self._out, self._digests, self._bar = out, digests, bar
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self._digests.update(data)  # copies: the decryptor reuses its buffers
        self._out.write(data)
        self.size += len(data)
        self._bar.advance(len(data))
        return len(data)


def decrypt_and_verify(paths: Paths, file: Listed, secret: bytes, bar: Bar) -> None:
    """Decrypt ``paths.complete`` into ``paths.plain``, which appears only once verified.

    A download that fails authentication or differs from the listing is deleted with the
    plaintext, so that the next run fetches it afresh; one sealed for another key is kept.
    """
    try:
        found = _decrypt_to_temp(paths, secret, bar)
    except crypt4gh.NoPacketForKey:
        paths.temp.unlink(missing_ok=True)
        raise DownloadFailed(
            f"{paths.complete} is not sealed for the key given with --key (an earlier run "
            "downloaded it for another key): give that key, or delete the file to download it "
            "again for this one"
        ) from None
    except crypt4gh.Crypt4GHError as error:
        _discard(paths)
        raise DownloadFailed(
            f"the download fails authentication ({error}); it was deleted: run the same "
            "command again to download it afresh"
        ) from None
    except BaseException:
        paths.temp.unlink(missing_ok=True)
        raise
    expected = {"size": str(file.size), "sha256": file.sha256, "md5": file.md5}
    wrong = [
        f"{name} {found[name]} (listed: {value})"
        for name, value in expected.items()
        if found[name] != value
    ]
    if wrong:
        _discard(paths)
        raise DownloadFailed(
            f"the decrypted file differs from the node's listing: {'; '.join(wrong)}. The "
            "plaintext and the download were deleted; tell the node's operator if a new "
            "download differs again"
        )
    paths.temp.replace(paths.plain)


def _decrypt_to_temp(paths: Paths, secret: bytes, bar: Bar) -> dict[str, str]:
    """Decrypt into the temporary file (owner-only: it is genomic data); its size and digests."""
    from genofed.archive.checksums import ParallelDigests

    descriptor = os.open(paths.temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with (
        ParallelDigests("sha256", "md5") as digests,
        paths.complete.open("rb") as source,
        os.fdopen(descriptor, "wb") as out,
    ):
        sink = _HashingFile(out, digests, bar)
        crypt4gh.decrypt(source, sink, secret)
        out.flush()
        os.fsync(out.fileno())
        return {"size": str(sink.size), **digests.hexdigests()}


def _discard(paths: Paths) -> None:
    paths.temp.unlink(missing_ok=True)
    paths.complete.unlink(missing_ok=True)


def check_existing(paths: Paths, file: Listed, bar: Bar) -> None:
    """Accept a plaintext already in DIR if it is the listed file (size, then sha256): files
    under their final name were verified when they were made, but may have been edited since."""
    import hashlib

    if paths.plain.stat().st_size == file.size:
        digest = hashlib.sha256()
        with paths.plain.open("rb") as held:
            while chunk := held.read(READ_SIZE * 8):
                digest.update(chunk)
                bar.advance(len(chunk))
        if digest.hexdigest() == file.sha256:
            return
    raise DownloadFailed(
        f"{paths.plain} exists but is not the node's file (its size or sha256 differs): move it "
        "away or delete it, then run the command again"
    )


# -- the command --------------------------------------------------------------------------------


def download(
    dataset: str = typer.Argument(..., help="The dataset's accession, e.g. GFBED000000000010."),
    files: list[str] | None = typer.Option(
        None,
        "--files",
        "-f",
        show_default=False,
        help="Only this file id (repeat the option, or separate ids with commas); default: every "
        "file of the dataset.",
    ),
    out: Path = typer.Option(
        Path("."), "--out", "-o", file_okay=False, help="The folder to download into."
    ),
    key: Path = typer.Option(
        ...,
        "--key",
        "-k",
        dir_okay=False,
        help="Your Crypt4GH private key: files are sealed for its public key, then decrypted "
        "with it. Its passphrase comes from C4GH_PASSPHRASE, else a prompt.",
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
    keep_encrypted: bool = typer.Option(
        False, "--keep-encrypted", help="Keep each downloaded ID.c4gh beside its plaintext."
    ),
) -> None:
    """Download DATASET's files, decrypt them with your key and verify them.

    Each file arrives as Crypt4GH sealed for your key (DIR/ID.c4gh.part, then
    DIR/ID.c4gh). It is decrypted into DIR/ID, which appears only once its
    size, sha256 and md5 match the node's listing; it is readable by you only.

    After an interruption, run the same command again: downloads resume where
    they stopped, and files already verified are skipped.

    Prints one line per verified file on stdout; exit code 1 if any failed.

    Example: genofed download GFBED000000000010 --key me.sec --out data/
    """
    from genofed.cli.crypt4gh import load_secret_key

    secret = run_guarded(lambda: load_secret_key(key))
    url = node_url(node)
    chosen_token = bearer_token(url, token)
    _warn_if_clear(url)
    client = DataClient(url, chosen_token, crypt4gh.public_key_of(secret))
    try:
        listed = run_guarded(lambda: client.files(dataset))
        wanted = select(listed, files, dataset)
        _make_folder(out)
        outcomes = download_all(client, out, wanted, secret, keep_encrypted)
    except KeyboardInterrupt:
        raise fail("interrupted: run the same command again to resume", code=130) from None
    finally:
        client.close()
    if report(outcomes, len(wanted), out):
        raise typer.Exit(1)


def select(listed: list[Listed], names: list[str] | None, dataset: str) -> list[Listed]:
    """The files asked for with --files (all when none), in the listing's order."""
    if not names:
        return listed
    wanted = {name.strip() for value in names for name in value.split(",") if name.strip()}
    unknown = sorted(wanted - {file.id for file in listed})
    if unknown:
        held = ", ".join(file.id for file in listed) or "no files you may read"
        raise fail(f"{dataset} holds no file {', '.join(unknown)}; it holds: {held}")
    return [file for file in listed if file.id in wanted]


def download_all(
    client: DataClient, folder: Path, files: list[Listed], secret: bytes, keep: bool
) -> list[Outcome]:
    """Each file in turn; a refused token or visa stops the rest."""
    outcomes: list[Outcome] = []
    with byte_progress() as progress:
        for file in files:
            try:
                already = one_file(client, Paths(folder, file.id), file, secret, keep, progress)
            except DownloadFailed as error:
                outcomes.append(Outcome(file, error=str(error)))
                err_console.print(
                    Text.assemble(("error:", "bold red"), f" {file.id}: {error}"), highlight=False
                )
                if error.stop_all:
                    break
                continue
            outcomes.append(Outcome(file, already=already))
    return outcomes


def one_file(
    client: DataClient, paths: Paths, file: Listed, secret: bytes, keep: bool, progress: Progress
) -> bool:
    """Download, decrypt and verify one file; True when it was in DIR already."""
    try:
        if paths.plain.exists():
            check_existing(paths, file, Bar(progress, f"{file.id} check", file.size))
            return True
        if not paths.complete.exists():
            fetch(client, paths, Bar(progress, f"{file.id} download"))
        decrypt_and_verify(paths, file, secret, Bar(progress, f"{file.id} decrypt", file.size))
    except OSError as error:
        paths.temp.unlink(missing_ok=True)
        raise DownloadFailed(f"{error}: free space or fix permissions, then run again") from None
    if not keep:
        paths.complete.unlink()
    return False


def report(outcomes: list[Outcome], wanted: int, folder: Path) -> int:
    """One line per verified file on stdout, a summary on stderr; returns how many failed
    (files not tried, after a refused token, count as failed)."""
    for outcome in outcomes:
        if outcome.error is None:
            note = " (already downloaded)" if outcome.already else ""
            typer.echo(f"{outcome.file.id}: {outcome.file.size} bytes, sha256 verified{note}")
    failed = [outcome.file.id for outcome in outcomes if outcome.error is not None]
    done = len(outcomes) - len(failed)
    if done == wanted:
        say(f"{done} of {wanted} files verified in {folder}")
        return 0
    untried = f", {wanted - len(outcomes)} not tried" if len(outcomes) < wanted else ""
    say(
        f"{done} of {wanted} files verified in {folder}; failed: {', '.join(failed)}{untried} "
        "(see above; run the same command again to resume)"
    )
    return wanted - done


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"cannot make the folder {folder} ({error.strerror}): choose another --out"
        raise fail(message) from None


def _warn_if_clear(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        err_console.print(
            "[yellow]warning:[/] your token travels unencrypted over http://; use https://",
            highlight=False,
        )
