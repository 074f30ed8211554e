"""`genofed demo --check` (the story `make demo` plays) must succeed on a fresh machine: a hub
and three nodes as separate processes, each person with the real commands."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from genofed import db
from genofed.access import audit
from genofed.cli.main import app
from genofed.config import load_settings


def test_the_federation_story_plays_to_the_end(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--workdir", str(workdir), "--size-mib", "0.5", "--check"]
    )
    assert result.exit_code == 0, result.output
    assert "demo complete" in result.output
    assert "3 datasets searchable at the hub" in result.output
    assert "240 genomes at the hub, from two nodes" in result.output
    assert re.search(r"snapshot set to cite: GFBEE\d{11}[0-9A-Z]", result.output)

    # the Finnish node archived only ciphertext, granted bob, and kept an intact audit log
    settings = load_settings(workdir / "node-FI")
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            (record,) = session.query(db.ArchiveFile).all()
            assert record.state == db.FileState.READY
            body = (settings.archive.path / str(record.archive_path)).read_bytes()
            (grant,) = session.query(db.Grant).all()
            assert grant.subject == "bob@org.genofed.node.be"  # a visitor from the BE node
            assert audit.verify(session).ok
            assert audit.query(session, actor="bob@org.genofed.node.be", action="data.download")
    finally:
        engine.dispose()
    # the Belgian node released its lab's genomes and audited the researcher's download
    engine = db.make_engine(load_settings(workdir / "node-BE").database_url)
    try:
        with db.session_scope(engine) as session:
            states = {entry.state for entry in session.query(db.PathogenEntry)}
            assert db.PathogenState.RELEASED in states  # the rest held back by QC errors
            assert states <= {db.PathogenState.RELEASED, db.PathogenState.PROCESSED}
            assert audit.query(session, actor="bob", action="pathogen.download")
    finally:
        engine.dispose()
    genomes = (workdir / "people" / "bob" / "genomes" / "sequences.fasta").read_text()
    assert genomes.count(">") == 5
    original = (workdir / "people" / "alice-fi" / "epi-fi.vcf.gz").read_bytes()
    assert original[:64] not in body  # the archive holds ciphertext only
    downloads = workdir / "people" / "bob" / "downloads-FI"
    (received,) = [p for p in downloads.iterdir() if not p.name.startswith(".")]
    assert received.read_bytes() == original
