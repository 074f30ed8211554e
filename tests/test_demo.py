"""`genofed demo` (what `make demo` runs) must complete on a fresh machine."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from genofed import db
from genofed.access import audit
from genofed.cli.main import app
from genofed.config import load_settings


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--workdir", str(workdir), "--size-mib", "2"])
    assert result.exit_code == 0, result.output
    assert "demo complete" in result.output
    assert "DIFFERENT" not in result.output

    settings = load_settings(workdir / "node-BE")
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        (record,) = session.query(db.ArchiveFile).all()
        assert record.state == db.FileState.READY
        S = db.FileState
        entered = [event.state for event in record.events if event.state != S.VERIFIED]
        assert entered == [S.UPLOADED, S.SUBMITTED, S.INGESTED, S.ARCHIVED, S.BACKED_UP, S.READY]
        assert record.accession is not None
        assert record.header is not None and record.header.startswith(b"crypt4gh")
        body = settings.archive.path / str(record.archive_path)
    # the archive holds only ciphertext: no VCF text in the body
    assert b"#CHROM" not in body.read_bytes()
    original = (workdir / "people" / "alice" / "cohort.vcf").read_bytes()
    assert b"#CHROM" in original
    # the researcher's verified copy, nothing for the user without a grant, the audit log intact
    (downloaded,) = (workdir / "people" / "bob" / "downloads").iterdir()
    assert downloaded.read_bytes() == original
    assert not any(p.name.startswith("GF") for p in (workdir / "people" / "mallory").iterdir())
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok
        denied = audit.query(session, actor="mallory", outcome="denied")
        (grant,) = session.query(db.Grant).all()
    engine.dispose()
    assert denied and grant.subject == "bob"


def test_demo_starts_afresh(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    for _ in range(2):
        result = CliRunner().invoke(app, ["demo", "--workdir", str(workdir), "--size-mib", "1"])
        assert result.exit_code == 0, result.output
