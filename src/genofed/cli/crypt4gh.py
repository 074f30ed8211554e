"""``genofed crypt4gh``: the same commands as the reference ``crypt4gh`` tool, faster.

Data flows from stdin to stdout as with the reference; ``--output`` writes a file instead, which
appears only when the command succeeds.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import typer

from genofed import crypt4gh
from genofed.cli.common import fail, run_guarded, say, transfer_progress
from genofed.crypt4gh.errors import Crypt4GHError, WrongPassphrase

PASSPHRASE_ENV = "C4GH_PASSPHRASE"

app = typer.Typer(
    help="Crypt4GH keys and files (GA4GH standard), compatible with the reference crypt4gh tool.",
    no_args_is_help=True,
)

SecretKeyOption = typer.Option(
    ..., "--sk", help="Your Crypt4GH private key file.", exists=True, dir_okay=False
)
RecipientOption = typer.Option(
    ...,
    "--recipient-pk",
    help="Public key of a recipient; repeat the option for several recipients.",
    exists=True,
    dir_okay=False,
)
OutputOption = typer.Option(
    None,
    "--output",
    "-o",
    help="Write to this file instead of stdout; it appears only if the command succeeds.",
    dir_okay=False,
)


@app.command()
def keygen(
    sk: Path = typer.Option(..., "--sk", help="Where to write the private key.", dir_okay=False),
    pk: Path = typer.Option(..., "--pk", help="Where to write the public key.", dir_okay=False),
    nocrypt: bool = typer.Option(
        False, "--nocrypt", help="Leave the private key unprotected by a passphrase (not advised)."
    ),
    kdf: str = typer.Option("scrypt", help="Key derivation for the passphrase: scrypt or bcrypt."),
    comment: str | None = typer.Option(None, help="A comment stored in the private key."),
) -> None:
    """Generate a key pair. The passphrase comes from C4GH_PASSPHRASE or a prompt."""
    if kdf not in ("scrypt", "bcrypt"):
        raise fail(f"--kdf {kdf} is not known: use scrypt or bcrypt")

    def generate() -> crypt4gh.KeyPair:
        passphrase = None if nocrypt else _new_passphrase()
        return crypt4gh.write_keypair(sk, pk, passphrase, kdf=kdf, comment=comment)  # type: ignore[arg-type]

    pair = run_guarded(generate)
    say(f"public key {pk} fingerprint {crypt4gh.fingerprint(pair.public)}")


@app.command()
def encrypt(
    recipient_pk: list[Path] = RecipientOption,
    sk: Path | None = typer.Option(
        None,
        "--sk",
        help="Your private key, to sign as the writer; without it an ephemeral key is used.",
        exists=True,
        dir_okay=False,
    ),
    output: Path | None = OutputOption,
) -> None:
    """Encrypt stdin for the recipients and write the Crypt4GH file to stdout."""

    def work() -> None:
        recipients = [crypt4gh.load_public_key(path) for path in recipient_pk]
        writer = load_secret_key(sk) if sk else None
        with _output(output) as dst, transfer_progress(sys.stdin.buffer, "encrypting") as tick:
            crypt4gh.encrypt(sys.stdin.buffer, dst, recipients, writer_secret=writer, progress=tick)

    run_guarded(work)


@app.command()
def decrypt(
    sk: Path = SecretKeyOption,
    byte_range: str | None = typer.Option(
        None,
        "--range",
        help="Only plaintext bytes START-END (START included, END excluded; 'START-' to the end).",
    ),
    output: Path | None = OutputOption,
) -> None:
    """Decrypt a Crypt4GH file from stdin to stdout, all of it or a byte range."""
    start, end = parse_range(byte_range) if byte_range else (0, None)

    def work() -> None:
        secret = load_secret_key(sk)
        with _output(output) as dst, transfer_progress(sys.stdin.buffer, "decrypting") as tick:
            try:
                crypt4gh.decrypt(sys.stdin.buffer, dst, secret, start=start, end=end, progress=tick)
            except Crypt4GHError as error:
                if output is None and dst.tell_written():
                    raise type(error)(
                        f"{error} (the {dst.tell_written()} bytes already written to stdout are "
                        "incomplete: discard them)"
                    ) from None
                raise

    run_guarded(work)


@app.command()
def reencrypt(
    sk: Path = SecretKeyOption,
    recipient_pk: list[Path] = RecipientOption,
    trim: bool = typer.Option(
        False, "--trim", help="Drop the header packets that your key cannot open."
    ),
    output: Path | None = OutputOption,
) -> None:
    """Re-encrypt the header of a Crypt4GH file for new recipients; the body is copied as is."""

    def work() -> None:
        secret = load_secret_key(sk)
        recipients = [crypt4gh.load_public_key(path) for path in recipient_pk]
        with _output(output) as dst:
            crypt4gh.reencrypt_stream(sys.stdin.buffer, dst, secret, recipients, trim=trim)

    run_guarded(work)


# -- helpers ------------------------------------------------------------------------------------


def parse_range(text: str) -> tuple[int, int | None]:
    """``START-END`` (END excluded), ``START-`` or ``START`` into numbers."""
    start_text, _, end_text = text.partition("-")
    try:
        start = int(start_text)
        end = int(end_text) if end_text else None
    except ValueError:
        raise fail(f"--range {text} is not START-END with whole numbers, e.g. 0-65536") from None
    if start < 0 or (end is not None and end <= start):
        raise fail(f"--range {text} is empty: END must be greater than START")
    return start, end


def load_secret_key(path: Path) -> bytes:
    return crypt4gh.load_private_key(path, _passphrase_for(path))


def _passphrase_for(path: Path) -> Callable[[], str]:
    def ask() -> str:
        if PASSPHRASE_ENV in os.environ:
            return os.environ[PASSPHRASE_ENV]
        if not _has_terminal():
            raise WrongPassphrase(
                f"{path} is protected by a passphrase and there is no terminal to ask: "
                f"set {PASSPHRASE_ENV}"
            )
        return getpass.getpass(f"Passphrase for {path}: ")

    return ask


def _new_passphrase() -> str:
    if PASSPHRASE_ENV in os.environ:
        if not os.environ[PASSPHRASE_ENV]:
            raise WrongPassphrase(
                f"{PASSPHRASE_ENV} is empty: give a passphrase, or --nocrypt for an unprotected key"
            )
        return os.environ[PASSPHRASE_ENV]
    if not _has_terminal():
        raise WrongPassphrase(
            f"no terminal to ask for the new key's passphrase: set {PASSPHRASE_ENV} or --nocrypt"
        )
    first = getpass.getpass("Passphrase for the new private key: ")
    if not first or first != getpass.getpass("Repeat the passphrase: "):
        raise WrongPassphrase("the two passphrases differ or are empty: try again")
    return first


def _has_terminal() -> bool:
    try:
        with open("/dev/tty"):
            return True
    except OSError:
        return False


class _CountingWriter:
    """Counts what reaches a binary stream, so an error can say how much was written."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream, self._written = stream, 0

    def write(self, data: bytes | memoryview) -> int:
        self._written += len(data)
        return self._stream.write(data)

    def tell_written(self) -> int:
        return self._written


@contextmanager
def _output(path: Path | None) -> Iterator[_CountingWriter]:
    """stdout, or a file written under a temporary name and renamed only on success."""
    if path is None:
        try:
            yield _CountingWriter(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # the reader went away (e.g. `| head`): not our error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as handle:
            yield _CountingWriter(handle)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
