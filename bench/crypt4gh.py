"""Crypt4GH throughput, header re-encryption time and memory: genofed against the reference.

Runs both command-line tools on the same file in one run (default 1 GiB of random bytes), the
same way a user would: ``TOOL encrypt < plain > out`` and ``TOOL decrypt < enc > out``. Each
measurement is the best of ``--repeat`` runs, for both tools alike. Two sinks are measured:
``/dev/null`` (the engine and the tool) and a file in the work folder (adding the kernel's cost
of writing it). The same comparison is then made in-process between the two libraries, without
interpreter start-up. Peak memory is each tool process's maximum resident set size.

    .venv/bin/python bench/crypt4gh.py [--size-mib 1024] [--repeat 3] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genofed import crypt4gh

BIN = Path(sys.executable).parent
OURS = [str(BIN / "genofed"), "crypt4gh"]
REFERENCE = [str(BIN / "crypt4gh")]
PASSPHRASE = "benchmark"
MIB = 1024 * 1024


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float


TIME = shutil.which("time") or "/usr/bin/time"


def run_tool(argv: list[str], stdin: Path, stdout: Path) -> Run:
    """Run one command with files on stdin/stdout; wall time and the tool's peak memory.

    Peak memory comes from GNU time: a child forked from this (large) process would otherwise
    report this process's resident size as its own maximum.
    """
    env = {**os.environ, "C4GH_PASSPHRASE": PASSPHRASE}
    rss_file = stdout.parent / "rss.txt" if stdout != Path(os.devnull) else stdin.parent / "rss"
    timed = [TIME, "-f", "%M", "-o", str(rss_file), *argv] if Path(TIME).exists() else argv
    with open(stdin, "rb") as src, open(stdout, "wb") as dst:
        start = time.perf_counter()
        result = subprocess.run(timed, stdin=src, stdout=dst, stderr=subprocess.PIPE, env=env)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode()}")
    peak = int(rss_file.read_text().split()[-1]) / 1024 if timed is not argv else float("nan")
    return Run(seconds, peak)


def best(runs: list[Run]) -> Run:
    return Run(min(r.seconds for r in runs), max(r.peak_rss_mib for r in runs))


def measure(argv: list[str], stdin: Path, stdout: Path, repeat: int) -> Run:
    return best([run_tool(argv, stdin, stdout) for _ in range(repeat)])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def machine_limits(plain: Path, size: int) -> dict[str, float]:
    """What the machine can do at most, measured now: the cipher on one core, a page-cache read."""
    aead, segment, nonce = ChaCha20Poly1305(os.urandom(32)), os.urandom(65536), os.urandom(12)
    count = 4096
    start = time.perf_counter()
    for _ in range(count):
        aead.encrypt(nonce, segment, None)
    cipher = count * 65536 / (time.perf_counter() - start)
    buffer = bytearray(8 * MIB)
    start = time.perf_counter()
    with open(plain, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    read = size / (time.perf_counter() - start)
    return {"ChaCha20-Poly1305, one core": cipher, "page-cache read": read}


def time_in_process(action: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def reference_library_runs(
    keys: dict[str, Path], plain: Path, enc: Path, repeat: int
) -> tuple[float, float]:
    # This file is named like the reference package: keep its folder out of the import path.
    here = Path(__file__).resolve().parent
    sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    from crypt4gh import lib as reference_lib
    from crypt4gh.keys import get_private_key, get_public_key

    secret = get_private_key(str(keys["sec"]), lambda: PASSPHRASE)
    public = get_public_key(str(keys["pub"]))
    recipients = [(0, secret, public)]

    def encrypt() -> None:
        with open(plain, "rb") as src, open(os.devnull, "wb") as dst:
            reference_lib.encrypt(recipients, src, dst)

    def decrypt() -> None:
        with open(enc, "rb") as src, open(os.devnull, "wb") as dst:
            reference_lib.decrypt([(0, secret, None)], src, dst)

    return time_in_process(encrypt, repeat), time_in_process(decrypt, repeat)


def our_library_runs(
    keys: dict[str, Path], plain: Path, enc: Path, repeat: int
) -> tuple[float, float]:
    secret = crypt4gh.load_private_key(keys["sec"], PASSPHRASE)
    public = crypt4gh.load_public_key(keys["pub"])

    def encrypt() -> None:
        with open(plain, "rb") as src, open(os.devnull, "wb") as dst:
            crypt4gh.encrypt(src, dst, [public])

    def decrypt() -> None:
        with open(enc, "rb") as src, open(os.devnull, "wb") as dst:
            crypt4gh.decrypt(src, dst, secret)

    return time_in_process(encrypt, repeat), time_in_process(decrypt, repeat)


def header_reencryption_ms(
    keys: dict[str, Path], enc: Path, rounds: int = 2000
) -> dict[str, float]:
    """Time to re-seal a stored header for a new recipient; it never looks at the body."""
    secret = crypt4gh.load_private_key(keys["sec"], PASSPHRASE)
    requester = crypt4gh.generate_keypair().public
    with open(enc, "rb") as handle:
        header = crypt4gh.split(handle)
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        crypt4gh.reencrypt_header(header, secret, [requester])
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {
        "mean": statistics.fmean(timings),
        "p99": timings[int(0.99 * len(timings))],
        "header bytes": len(header),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    default_dir = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    parser.add_argument("--dir", default=default_dir, help="work folder (default: tmpfs)")
    args = parser.parse_args()
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="genofed-bench-", dir=args.dir))
    try:
        report(work, size, args.repeat)
    finally:
        shutil.rmtree(work)


def report(work: Path, size: int, repeat: int) -> None:
    keys = {"sec": work / "bench.sec", "pub": work / "bench.pub"}
    crypt4gh.write_keypair(keys["sec"], keys["pub"], PASSPHRASE)
    plain = work / "plain.bin"
    with open(plain, "wb") as out:
        for _ in range(size // (64 * MIB)):
            out.write(os.urandom(64 * MIB))
        out.write(os.urandom(size % (64 * MIB)))
    print(f"file: {size / MIB:.0f} MiB of random bytes in {work.parent}; best of {repeat} runs")
    for name, rate in machine_limits(plain, size).items():
        print(f"machine: {name}: {rate / 1e6:,.0f} MB/s")

    ours_enc, ref_enc = work / "ours.c4gh", work / "ref.c4gh"
    out = work / "out.bin"
    encrypt_args = ["encrypt", "--recipient-pk", str(keys["pub"])]
    rows = []
    for sink_name, sink in (("/dev/null", Path(os.devnull)), ("file", out)):
        ours = measure([*OURS, *encrypt_args], plain, sink, repeat)
        ref = measure(
            [*REFERENCE, "encrypt", "--recipient_pk", str(keys["pub"])], plain, sink, repeat
        )
        rows.append(("encrypt", sink_name, ours, ref))
    run_tool([*OURS, *encrypt_args], plain, ours_enc)
    run_tool([*REFERENCE, "encrypt", "--recipient_pk", str(keys["pub"])], plain, ref_enc)
    for sink_name, sink in (("/dev/null", Path(os.devnull)), ("file", out)):
        # each tool decrypts the file the other made: interoperability checked on the way
        ours = measure([*OURS, "decrypt", "--sk", str(keys["sec"])], ref_enc, sink, repeat)
        ref = measure([*REFERENCE, "decrypt", "--sk", str(keys["sec"])], ours_enc, sink, repeat)
        rows.append(("decrypt", sink_name, ours, ref))

    expected = sha256_of(plain)
    run_tool([*OURS, "decrypt", "--sk", str(keys["sec"])], ref_enc, out)
    assert sha256_of(out) == expected, "genofed decrypted the reference's file wrongly"
    run_tool([*REFERENCE, "decrypt", "--sk", str(keys["sec"])], ours_enc, out)
    assert sha256_of(out) == expected, "the reference decrypted genofed's file wrongly"
    out.unlink()
    print("check: each tool decrypted the other's file to the original bytes (sha256)")

    print()
    print(
        f"{'command-line tools':<24}{'genofed':>14}{'reference':>14}{'ratio':>8}"
        f"{'genofed RSS':>14}{'ref RSS':>10}"
    )
    for operation, sink_name, ours, ref in rows:
        print(
            f"{operation + ' → ' + sink_name:<24}{size / ours.seconds / 1e6:>9,.0f} MB/s"
            f"{size / ref.seconds / 1e6:>9,.0f} MB/s{ref.seconds / ours.seconds:>7.1f}x"
            f"{ours.peak_rss_mib:>10.0f} MiB{ref.peak_rss_mib:>6.0f} MiB"
        )

    ours_lib = our_library_runs(keys, plain, ours_enc, repeat)
    ref_lib = reference_library_runs(keys, plain, ours_enc, repeat)
    print()
    print(f"{'libraries, in process':<24}{'genofed':>14}{'reference':>14}{'ratio':>8}")
    for operation, ours_s, ref_s in zip(("encrypt", "decrypt"), ours_lib, ref_lib, strict=True):
        print(
            f"{operation + ' → /dev/null':<24}{size / ours_s / 1e6:>9,.0f} MB/s"
            f"{size / ref_s / 1e6:>9,.0f} MB/s{ref_s / ours_s:>7.1f}x"
        )

    header = header_reencryption_ms(keys, ours_enc)
    print()
    print(
        f"header re-encryption for a new recipient ({header['header bytes']:.0f}-byte header of "
        f"a {size / MIB:.0f} MiB file): mean {header['mean']:.3f} ms, p99 {header['p99']:.3f} ms"
    )
    small = io.BytesIO()
    crypt4gh.encrypt(io.BytesIO(b"x"), small, [crypt4gh.load_public_key(keys["pub"])])
    tiny = work / "tiny.c4gh"
    tiny.write_bytes(small.getvalue())
    tiny_header = header_reencryption_ms(keys, tiny)
    print(f"same for a 1-byte file: mean {tiny_header['mean']:.3f} ms (independent of file size)")


if __name__ == "__main__":
    main()
