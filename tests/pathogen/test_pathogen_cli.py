"""``genofed pathogen``: the commands against a node app (a test client, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from records_support import quick_analyser, samples
from typer.testing import CliRunner

from genofed.access.tokens import issue_token
from genofed.cli.main import app as cli
from genofed.cli.pathogen import PathogenClient
from genofed.config import Settings, load_settings
from genofed.node.app import create_app
from genofed.node.directory import init_node
from genofed.pathogen.processing import Processor, process_pending
from genofed.pathogen.synthetic import write_submission

NODE = "http://127.0.0.1:9"  # never contacted: the client is the test client


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    made = init_node(tmp_path / "node", name="Test node", country="BE")
    return load_settings(made.config_file, embedded_workers=False)


@pytest.fixture
def http(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        monkeypatch.setattr(
            PathogenClient, "connect", classmethod(lambda cls, url, token: cls(client, token))
        )
        monkeypatch.setattr(PathogenClient, "close", lambda self: None)
        yield client


def run(settings: Settings, user: str, role: str, *args: str) -> object:
    token = issue_token(settings, user, [role])
    return CliRunner().invoke(
        cli, ["pathogen", *args, "--node", NODE], env={"GENOFED_TOKEN": token}
    )


def test_submit_follow_curate_download_and_cite(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    engine = http.app.state.node.engine  # type: ignore[attr-defined]
    batch = samples(3)
    fasta, sheet = write_submission(batch, tmp_path / "batch")
    processor = Processor(engine, analyse=quick_analyser, poll=0.05).start()
    try:
        submitted = run(
            settings,
            "lab-be",
            "submitter",
            "submit",
            "--organism",
            "sars-cov-2",
            str(fasta),
            str(sheet),
        )
    finally:
        processor.stop()
    assert submitted.exit_code == 0, submitted.output  # type: ignore[attr-defined]
    lines = submitted.stdout.splitlines()  # type: ignore[attr-defined]
    accessions = [line.split("\t")[1] for line in lines]
    assert [line.split("\t")[0] for line in lines] == [s.sequence_id for s in batch]
    assert "processed / ok" in submitted.stderr  # type: ignore[attr-defined]

    queue = run(settings, "ann", "curator", "curate", "list")
    assert [line.split("\t")[0] for line in queue.stdout.splitlines()] == accessions  # type: ignore[attr-defined]
    approved = run(settings, "ann", "curator", "curate", "approve", *accessions)
    assert approved.stdout.splitlines() == [f"{a}\treleased" for a in accessions]  # type: ignore[attr-defined]
    state = run(settings, "lab-be", "submitter", "status", accessions[0])
    assert "released" in state.stdout  # type: ignore[attr-defined]

    out = tmp_path / "download"
    refused = run(settings, "rita", "requester", "download", *accessions, "--out", str(out))
    assert refused.exit_code == 1 and "terms" in refused.stderr  # type: ignore[attr-defined]
    accepted = run(settings, "rita", "requester", "terms", "accept")
    assert accepted.exit_code == 0 and "accepted: open" in accepted.stderr  # type: ignore[attr-defined]
    fetched = run(settings, "rita", "requester", "download", *accessions, "--out", str(out))
    assert fetched.exit_code == 0, fetched.output  # type: ignore[attr-defined]
    fasta_text = (out / "sequences.fasta").read_text()
    assert fasta_text.count(">") == 3 and batch[1].sequence in fasta_text
    thanks = (out / "acknowledgements.tsv").read_text().splitlines()
    assert thanks[1].split("\t")[2] == batch[0].metadata["originating_lab"]

    made = run(settings, "rita", "requester", "snapshot", "create", "--title", "Paper", *accessions)
    identifier = made.stdout.strip()  # type: ignore[attr-defined]
    shown = run(settings, "rita", "requester", "snapshot", "show", identifier)
    assert len(shown.stdout.splitlines()) == 4  # type: ignore[attr-defined]

    revoked = run(settings, "lab-be", "submitter", "revoke", accessions[0], "--reason", "swap")
    assert revoked.exit_code == 0 and "revoked" in revoked.stderr  # type: ignore[attr-defined]


def test_a_refused_batch_lists_its_problems(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    batch = samples(2)
    batch[0].metadata["collection_date"] = "2019-02-30"
    fasta, sheet = write_submission(batch, tmp_path)
    refused = run(
        settings,
        "lab-be",
        "submitter",
        "submit",
        "--organism",
        "sars-cov-2",
        "--no-wait",
        str(fasta),
        str(sheet),
    )
    assert refused.exit_code == 1  # type: ignore[attr-defined]
    assert "field collection_date (2019-02-30): is not a date" in refused.stderr
    assert "--accept-valid" in refused.stderr  # type: ignore[attr-defined]
    assert refused.stdout == ""  # type: ignore[attr-defined]
    taken = run(
        settings,
        "lab-be",
        "submitter",
        "submit",
        "--organism",
        "sars-cov-2",
        "--no-wait",
        "--accept-valid",
        str(fasta),
        str(sheet),
    )
    assert taken.exit_code == 0  # type: ignore[attr-defined]
    assert [line.split("\t")[0] for line in taken.stdout.splitlines()] == [batch[1].sequence_id]  # type: ignore[attr-defined]
    assert process_pending(http.app.state.node.engine, analyse=quick_analyser) == 1  # type: ignore[attr-defined]
    curator = run(settings, "lab-be", "submitter", "curate", "list")
    assert curator.exit_code == 1 and "curator" in curator.stderr  # type: ignore[attr-defined]


def test_organisms_are_listed(http: TestClient, settings: Settings) -> None:
    listed = CliRunner().invoke(cli, ["pathogen", "organism", "list", "--node", NODE])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == ["sars-cov-2", "flu-h3n2-ha"]


def test_operators_add_organisms_and_submitters_revise(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    data = resources.files("genofed.pathogen") / "data"
    reference, annotation = tmp_path / "ha.fasta", tmp_path / "ha.gff3"
    reference.write_bytes((data / "flu-h3n2-ha.fasta").read_bytes())
    annotation.write_bytes((data / "flu-h3n2-ha.gff3").read_bytes())
    options = ["--reference", str(reference), "--annotation", str(annotation)]
    add = ["organism", "add", "h3-local", *options, "--earliest-date", "1968-01-01"]
    assert run(settings, "lab-be", "submitter", *add).exit_code == 1  # type: ignore[attr-defined]
    added = run(settings, "op", "operator", *add)
    assert added.exit_code == 0 and "added h3-local" in added.stderr  # type: ignore[attr-defined]

    fasta, sheet = write_submission(samples(1), tmp_path / "v1")
    submitted = run(
        settings,
        "lab-be",
        "submitter",
        "submit",
        "--organism",
        "sars-cov-2",
        "--no-wait",
        str(fasta),
        str(sheet),
    )
    name = submitted.stdout.split("\t")[1].strip()  # type: ignore[attr-defined]
    process_pending(http.app.state.node.engine, analyse=quick_analyser)  # type: ignore[attr-defined]
    run(settings, "ann", "curator", "curate", "approve", name)
    fixed = samples(1)
    fixed[0].metadata["host"] = "Homo sapiens"
    fasta, sheet = write_submission(fixed, tmp_path / "v2")
    revised = run(
        settings, "lab-be", "submitter", "revise", name.split(".")[0], str(fasta), str(sheet)
    )
    assert revised.stdout.strip() == name.replace(".1", ".2")  # type: ignore[attr-defined]
    rejected = run(settings, "ann", "curator", "curate", "reject", name, "--reason", "x")
    assert rejected.exit_code == 1 and "only processed" in rejected.stderr  # type: ignore[attr-defined]
