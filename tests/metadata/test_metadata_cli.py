"""`genofed metadata` and `genofed dataset` on a node database named by GENOFED_DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from metadata_support import (
    COUNTRY,
    SAMPLES,
    SUBMITTER,
    add_files,
    cohort,
    cohort_files,
    count_objects,
    session_of,
    write_sheets,
)
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from genofed import db
from genofed.cli.main import app
from genofed.metadata import service
from genofed.metadata.accessions import Accession

OBJECTS = 1 + 3 * SAMPLES + 4


@pytest.fixture
def node(db_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    """The CLI's configuration: this test's database and country, no genofed.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.setenv("GENOFED_DATABASE_URL", db_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GENOFED_COUNTRY", COUNTRY)
    return db_engine


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _table(output: str) -> list[list[str]]:
    return [line.split("\t") for line in output.splitlines()]


def _cohort_folder(engine: Engine, folder: Path) -> Path:
    with session_of(engine) as session:
        files = cohort_files(session)
    write_sheets(folder, cohort(files))
    return folder


def test_validate_and_submit_a_cohort(node: Engine, tmp_path: Path) -> None:
    folder = _cohort_folder(node, tmp_path / "cohort")

    offline = _run("metadata", "validate", str(folder))
    assert offline.exit_code == 0, offline.output
    assert offline.stderr.startswith(f"no problems in {OBJECTS} rows, checked offline")

    online = _run("metadata", "validate", str(folder), "--user", SUBMITTER)
    assert online.exit_code == 0, online.output
    assert online.stderr == f"no problems in {OBJECTS} rows, checked against the node\n"

    stored = _run("metadata", "submit", *sorted(map(str, folder.iterdir())), "--user", SUBMITTER)
    assert stored.exit_code == 0, stored.output
    table = _table(stored.stdout)
    assert table[0] == ["kind", "alias", "accession", "change"]
    assert ["dataset", "EPI-BE-WGS", str(Accession(COUNTRY, "dataset", 1)), "created"] in table
    assert len(table) == 1 + OBJECTS
    assert stored.stderr == f"{OBJECTS} created\n"

    again = _run("metadata", "submit", str(folder), "--user", SUBMITTER)
    assert again.exit_code == 0, again.output
    assert again.stderr == f"{OBJECTS} unchanged\n"


def test_problems_are_a_table_and_nothing_is_stored(node: Engine, tmp_path: Path) -> None:
    folder = _cohort_folder(node, tmp_path / "cohort")
    samples = folder / "samples.tsv"
    samples.write_text(samples.read_text().replace("HP:0001250", "HP:1250", 1))
    (folder / "policies.tsv").write_text(
        "alias\ttitle\tdac\tpermission\nP\tDisease only\tUZL-DAC\tDS\n"
    )
    with session_of(node) as session:
        before = count_objects(session)

    for command in ("validate", "submit"):
        result = _run("metadata", command, str(folder), "--user", SUBMITTER)
        assert result.exit_code == 1, result.output
        table = _table(result.stdout)
        assert table[0] == ["sheet", "row", "column", "value", "problem", "fix"]
        assert [row[:4] for row in table[1:]] == [  # in the order the folder's files are read
            ["datasets.tsv", "2", "policy", "EPI-POLICY"],  # P replaced EPI-POLICY
            ["policies.tsv", "2", "diseases", ""],
            ["samples.tsv", "2", "phenotypes", "HP:1250"],
        ]
        assert table[3][5] == "Human Phenotype Ontology ids are 7 digits, e.g. HP:0001250"
    assert result.stderr == "error: 3 problem(s): nothing was stored\n"
    with session_of(node) as session:
        assert count_objects(session) == before


def test_the_dataset_life_cycle(node: Engine) -> None:
    with session_of(node) as session:
        service.submit_metadata(
            session,
            COUNTRY,
            SUBMITTER,
            {
                "dacs": [{"alias": "DAC", "title": "DAC", "contacts": ["Jo <jo@dac.be>"]}],
                "policies": [
                    {
                        "alias": "POL",
                        "title": "Disease specific",
                        "dac": "DAC",
                        "permission": "DS",
                        "diseases": ["MONDO:0005027"],
                        "modifiers": ["IRB", "GS=EU"],
                    }
                ],
            },
        )
        files = [str(f.accession) for f in add_files(session, 2)]
        waiting = str(add_files(session, 1, state=db.FileState.ARCHIVED)[0].accession)

    options = ["--user", SUBMITTER, "--alias", "D1", "--title", "Epilepsy WGS", "--policy", "POL"]
    created = _run("dataset", "create", *options)
    assert created.exit_code == 0, created.output
    dataset = created.stdout.strip()
    assert dataset == str(Accession(COUNTRY, "dataset", 1))

    refused = _run("dataset", "release", dataset)
    assert refused.exit_code == 1
    assert "it has no files" in refused.stderr and len(refused.stderr.splitlines()) == 1

    not_ready = _run("dataset", "add-files", dataset, files[0], waiting)
    assert not_ready.exit_code == 1
    assert f"{waiting} is archived, not ready" in not_ready.stderr

    added = _run("dataset", "add-files", "D1", *files, files[0])
    assert added.exit_code == 0, added.output
    assert added.stderr == f"2 files added to dataset {dataset}\n"

    assert _run("dataset", "list", "--released").stdout.splitlines()[1:] == []
    released = _run("dataset", "release", dataset)
    assert released.exit_code == 0, released.output
    assert released.stderr == f"dataset {dataset} released\n"

    listed = _table(_run("dataset", "list", "--released").stdout)
    assert listed == [
        ["accession", "alias", "submitter", "status", "files", "title"],
        [dataset, "D1", SUBMITTER, "released", "2", "Epilepsy WGS"],
    ]

    shown = _run("dataset", "show", dataset)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert "status: released" in lines
    policy = next(line for line in lines if line.startswith("policy: "))
    assert "DS (MONDO:0005027): disease specific research" in policy
    assert "GS=EU: geographical restriction" in policy
    header = lines.index("file accession\tfile id\tstate\tsize")
    assert [line.split("\t")[0] for line in lines[header + 1 :]] == files

    deprecated = _run("dataset", "deprecate", dataset)
    assert deprecated.exit_code == 0, deprecated.output
    assert _table(_run("dataset", "list").stdout)[1][3] == "deprecated"


def test_errors_are_one_line(node: Engine) -> None:
    missing = _run("dataset", "show", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == "error: no dataset with accession or alias 'nope': check it\n"
    typo = _run("dataset", "release", "GFBED000000000019")
    assert typo.exit_code == 1
    assert "wrong check character" in typo.stderr
    unreadable = _run("metadata", "validate", "/nowhere/samples.tsv")
    assert unreadable.exit_code == 1
    assert _table(unreadable.stdout)[1][:1] == ["samples.tsv"]
