"""``genofed demo``: a national node, end to end, with the real commands of each role.

A node starts (its API on a loopback port, the pipeline in-process). Its operator creates
accounts; a submitter logs in and uploads a synthetic VCF (encrypted for the node on the way);
the pipeline archives it; the submitter describes and releases it under a DAC and a policy; a
researcher applies for access in DUO terms; a DAC member approves; the researcher downloads the
dataset re-encrypted for their key and the files are verified; a user without a grant gets
nothing; the audit log proves every step. Each person runs ``genofed`` with their own login.
The federation (hub, several nodes) comes with later work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from genofed import crypt4gh, db
from genofed.access.tokens import issue_token
from genofed.archive.checksums import ParallelDigests
from genofed.cli.common import err_console as console
from genofed.config import Settings, load_settings
from genofed.node.app import create_app
from genofed.node.client import NodeClient
from genofed.node.directory import init_node
from genofed.node.server import free_socket, serving
from genofed.synthetic import write_synthetic_vcf

PASSPHRASE = "demo-passphrase"
PASSWORD = "demo-password-1"
READY_TIMEOUT_S = 300
GENOFED = Path(sys.executable).parent / "genofed"


@dataclass(frozen=True)
class Person:
    """Someone who runs ``genofed`` on their own machine: their own login and resume state."""

    name: str
    folder: Path
    node_config: Path

    def run(self, *args: str, stdin: str | None = None, ok: bool = True) -> str:
        """Run ``genofed ARGS`` as this person; returns stdout. A failure stops the demo
        unless ``ok`` is False."""
        environment = {
            **os.environ,
            "GENOFED_CREDENTIALS": str(self.folder / "credentials.json"),
            "GENOFED_STATE_DIR": str(self.folder / "uploads"),
            "GENOFED_CONFIG": str(self.node_config),  # operators' commands run on the node
            "C4GH_PASSPHRASE": PASSPHRASE,
        }
        environment.pop("GENOFED_TOKEN", None)
        environment.pop("GENOFED_NODE", None)
        result = subprocess.run(
            [str(GENOFED), *args],
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if ok and result.returncode != 0:
            console.print(escape(result.stderr.strip()))
            raise SystemExit(f"'genofed {args[0]} {args[1] if len(args) > 1 else ''}' failed")
        if not ok:
            shown = result.stderr.strip().splitlines()[-1:] or [""]
            console.print(f"   [yellow]{escape(shown[0])}[/]")
        return result.stdout

    def login(self, url: str) -> None:
        self.run("login", "--node", url, "--user", self.name, "--password-stdin", stdin=PASSWORD)


def run_demo(workdir: Path, size_mib: int) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.perf_counter()
    timings: list[tuple[str, str]] = []

    step("1. A national node is created", "configuration, node key pair, database, storage")
    node = init_node(workdir / "node-BE", name="Belgian node", country="BE")
    console.print(
        f"   {escape(str(node.settings.home))}, key fingerprint {node.public_key_fingerprint}"
    )
    people = workdir / "people"
    cast = {
        name: Person(name, people / name, node.config_file)
        for name in ("olivia", "alice", "bob", "carol", "mallory")
    }
    olivia, alice, bob, carol, mallory = cast.values()

    step("2. The researcher makes a Crypt4GH key pair", "passphrase-protected, on their machine")
    crypt4gh.write_keypair(bob.folder / "bob.sec", bob.folder / "bob.pub", PASSPHRASE)

    step("3. A submitter prepares a synthetic VCF", f"about {size_mib} MiB, 100 samples")
    vcf = alice.folder / "cohort.vcf"
    vcf.parent.mkdir(parents=True, exist_ok=True)
    records = write_synthetic_vcf(vcf, target_bytes=size_mib * 1024 * 1024)
    size, sha256 = os.path.getsize(vcf), sha256_of(vcf)
    console.print(f"   {vcf.name}: {records:,} variants, {size:,} bytes, sha256 {sha256}")

    step("4. The node starts", "its API on a loopback port, the pipeline running in-process")
    sock = free_socket()
    settings = load_settings(node.config_file, http={"port": sock.getsockname()[1]})
    with serving(create_app(settings), sock) as url:
        console.print(f"   listening at {url}")
        step("5. The operator creates accounts", "genofed user add, with roles")
        for person, role in (
            (olivia, "operator"),
            (alice, "submitter"),
            (bob, "requester"),
            (carol, "dac_member"),
            (mallory, "requester"),
        ):
            olivia.run(
                "user", "add", person.name, "--role", role, "--password-stdin", stdin=PASSWORD
            )
            console.print(f"   {person.name}: {role}")

        step("6. The submitter logs in and uploads", "genofed login; genofed submit upload")
        alice.login(url)
        upload = timed(lambda: alice.run("submit", "upload", str(vcf)))
        timings.append(("encrypt + upload", rate(size, upload)))

        step("7. The pipeline archives it", "ingest, verify, accession, backup")
        start = time.perf_counter()
        record = wait_until_ready(url, issue_token(settings, "alice", ["submitter"]))
        timings.append(("pipeline to ready", rate(size, time.perf_counter() - start)))
        accession = show_history(settings, record["id"], sha256)

        step("8. The submitter describes and releases it", "a study, a DAC, a policy in DUO terms")
        dataset, dac = describe_and_release(alice, settings, accession)
        console.print(f"   dataset {dataset}, policy HMB + NPU, decided by DAC {dac}")
        olivia.login(url)
        olivia.run("dac", "members", "add", dac, "carol")
        console.print("   carol sits on the DAC")

        step("9. A researcher applies for access", "genofed access request, purpose in DUO terms")
        bob.login(url)
        request = bob.run(
            "access",
            "request",
            dataset,
            "--title",
            "Variants in early-onset epilepsy",
            "--permission",
            "HMB",
            "--modifier",
            "NPU",
            "--days",
            "30",
        ).strip()
        console.print(f"   request {request}: the purpose satisfies the policy")

        step("10. The DAC decides", "genofed dac list; genofed dac approve")
        carol.login(url)
        listed = carol.run("dac", "list").strip().splitlines()
        for line in listed:
            console.print(f"   {escape(line)}")
        item = listed[-1].split("\t")[0]
        grant = carol.run("dac", "approve", item, "--comment", "approved").strip()
        console.print(f"   grant {grant}, valid 30 days")

        step("11. The researcher downloads", "re-encrypted for their key, decrypted, verified")
        out = bob.folder / "downloads"
        download = timed(
            lambda: bob.run(
                "download", dataset, "--key", str(bob.folder / "bob.sec"), "--out", str(out)
            )
        )
        timings.append(("download + decrypt + verify", rate(size, download)))
        check(sha256_of(out / accession) == sha256, "the researcher's copy")

        step("12. Someone without a grant tries", "no visa, no byte")
        mallory.login(url)
        mallory.run(
            "download",
            dataset,
            "--key",
            str(bob.folder / "bob.sec"),
            "--out",
            str(mallory.folder),
            ok=False,
        )
        if (mallory.folder / accession).exists():
            raise SystemExit("a user without a grant received the file")
        console.print("   mallory received [green]not one byte[/]")

    step("13. The audit log proves it", "genofed audit verify; genofed audit show")
    console.print("   " + escape(olivia.run("audit", "verify").strip()) + " (head hash)")
    for line in olivia.run("audit", "show", "--dataset", dataset, "--limit", "6").splitlines():
        console.print(f"   {escape(line)}")

    summary(timings, time.perf_counter() - started, workdir)


def show_history(settings: Settings, file_id: str, sha256: str) -> str:
    """Print the file's path through the pipeline; returns its accession."""
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            stored = session.get(db.ArchiveFile, file_id)
            assert stored is not None and stored.accession
            states = [event.state.value for event in stored.events]
            shown = [state for n, state in enumerate(states) if n == 0 or state != states[n - 1]]
            console.print("   history: " + " → ".join(shown))
            console.print(f"   accession {stored.accession}")
            check(stored.decrypted_sha256 == sha256, "the archive's plaintext checksum")
            return stored.accession
    finally:
        engine.dispose()


def describe_and_release(alice: Person, settings: Settings, accession: str) -> tuple[str, str]:
    """Submit the metadata with ``genofed metadata submit``, release the dataset; returns the
    dataset's and the DAC's accessions."""
    document = {
        "studies": [
            {
                "alias": "EPI-BE",
                "title": "Whole genomes of a Belgian epilepsy cohort",
                "study_type": "Whole Genome Sequencing",
            }
        ],
        "dacs": [
            {
                "alias": "UZL-DAC",
                "title": "UZ Leuven genomics DAC",
                "contacts": ["Jane Peeters <dac@uzleuven.example>"],
            }
        ],
        "policies": [
            {
                "alias": "EPI-POLICY",
                "title": "Health research, not for profit",
                "dac": "UZL-DAC",
                "permission": "HMB",
                "modifiers": ["NPU"],
            }
        ],
        "datasets": [
            {
                "alias": "EPI-BE-VCF",
                "title": "Epilepsy cohort variant calls",
                "policy": "EPI-POLICY",
                "files": [accession],
            }
        ],
    }
    path = alice.folder / "metadata.json"
    path.write_text(json.dumps(document, indent=2))
    alice.run("metadata", "submit", str(path), "--user", "alice")
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            found = {
                obj.kind: str(obj.accession)
                for obj in session.scalars(
                    select(db.MetadataObject).where(db.MetadataObject.submitter == "alice")
                )
            }
    finally:
        engine.dispose()
    dataset, dac = found[db.ObjectKind.DATASET], found[db.ObjectKind.DAC]
    alice.run("dataset", "release", dataset)
    return dataset, dac


def wait_until_ready(url: str, token: str) -> dict[str, Any]:
    """Poll the submitter's view of the inbox until the file is ready."""
    client = NodeClient.connect(url, token)
    deadline = time.monotonic() + READY_TIMEOUT_S
    shown = ""
    try:
        while time.monotonic() < deadline:
            (record,) = client.files()
            if record["state"] != shown:
                shown = record["state"]
                console.print(f"   {shown}")
            if shown == "ready":
                return record
            if shown == "error":
                raise SystemExit(f"ingestion failed: {record.get('error')}")
            time.sleep(0.05)
    finally:
        client.close()
    raise SystemExit(f"the file was not ready after {READY_TIMEOUT_S} s")


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle, ParallelDigests("sha256") as digests:
        while chunk := handle.read(1 << 22):
            digests.update(chunk)
        return digests.hexdigests()["sha256"]


def step(title: str, detail: str) -> None:
    console.print(f"\n[bold cyan]{title}[/] [dim]({detail})[/]")


def check(same: bool, what: str) -> None:
    if not same:
        console.print(f"   {what}: [red]DIFFERENT from the original[/]")
        raise SystemExit(f"{what} differs from the original")
    console.print(f"   {what}: [green]identical to the original[/]")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def rate(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def summary(timings: list[tuple[str, str]], total: float, workdir: Path) -> None:
    table = Table(title="What the demo measured")
    table.add_column("step")
    table.add_column("speed", justify="right")
    for name, value in timings:
        table.add_row(name, value)
    console.print()
    console.print(table)
    console.print(
        f"[bold green]demo complete[/] in {total:.1f} s; everything is in {escape(str(workdir))}"
    )
