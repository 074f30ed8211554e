"""`genofed worker` and `genofed archive`: the operator's view of the pipeline."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import Node
from genofed import crypt4gh, db
from genofed.archive.stages import archive_key
from genofed.cli.main import app


@pytest.fixture
def cli(node: Node, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GENOFED_CONFIG", str(node.settings.home / "genofed.toml"))
    return CliRunner()


def test_worker_processes_the_queue_until_idle(node: Node, cli: CliRunner, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    result = cli.invoke(app, ["worker", "--until-idle", "0.5"])
    assert result.exit_code == 0, result.output
    assert "after 4 messages" in result.output
    assert node.file(file_id).state == db.FileState.READY


def test_worker_refuses_an_unknown_stage(cli: CliRunner) -> None:
    result = cli.invoke(app, ["worker", "--stage", "verfy"])
    assert result.exit_code == 1
    assert "unknown stage verfy" in result.output and "verify" in result.output


def test_status_and_errors(node: Node, cli: CliRunner, plain: bytes) -> None:
    node.upload(node.encrypt(plain))
    node.drain()
    status = cli.invoke(app, ["archive", "status"])
    assert status.exit_code == 0, status.output
    assert "ready" in status.output and "error queue: 0" in status.output
    errors = cli.invoke(app, ["archive", "errors"])
    assert errors.exit_code == 0, errors.output


def test_requeue_sends_failed_messages_back_with_fresh_attempts(node: Node, cli: CliRunner) -> None:
    with db.session_scope(node.engine) as session:
        for queue in ("verify", "backup"):
            session.add(db.Job(queue=queue, payload={}, state=db.JobState.FAILED, attempts=5))
    unknown = cli.invoke(app, ["archive", "requeue", "--queue", "verfy"])
    assert unknown.exit_code == 1 and "verfy" in unknown.output
    assert (
        "1 message requeued" in cli.invoke(app, ["archive", "requeue", "--queue", "verify"]).output
    )
    assert "1 message requeued" in cli.invoke(app, ["archive", "requeue"]).output
    with db.session_scope(node.engine) as session:
        states = {job.queue: (job.state, job.attempts) for job in session.scalars(select(db.Job))}
    assert states == {"verify": (db.JobState.READY, 0), "backup": (db.JobState.READY, 0)}


def test_rotate_key_queues_only_files_sealed_for_another_key(
    node: Node, cli: CliRunner, plain: bytes
) -> None:
    file_id = node.upload(node.encrypt(plain))
    node.drain()
    assert "0 files queued" in cli.invoke(app, ["archive", "rotate-key"]).output
    with db.session_scope(node.engine) as session:
        record = session.get(db.ArchiveFile, file_id)
        assert record is not None
        record.archive_key = crypt4gh.fingerprint(crypt4gh.generate_keypair().public)
    assert "1 files queued" in cli.invoke(app, ["archive", "rotate-key"]).output
    node.drain()
    assert node.file(file_id).archive_key == node.pipeline.node_key_fingerprint


def test_cancel(node: Node, cli: CliRunner, plain: bytes) -> None:
    file_id = node.upload(node.encrypt(plain))
    node.drain()
    refused = cli.invoke(app, ["archive", "cancel", file_id, "--user", "mallory"])
    assert refused.exit_code == 1 and "another submitter" in refused.output
    result = cli.invoke(app, ["archive", "cancel", file_id, "--user", "alice"])
    assert result.exit_code == 0, result.output
    assert node.file(file_id).state == db.FileState.DISABLED
    assert not node.pipeline.archive.exists(archive_key(file_id))
