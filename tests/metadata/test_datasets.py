"""The dataset life cycle (draft → released → deprecated) and its FEGA broker messages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from metadata_support import (
    COUNTRY,
    SAMPLES,
    SUBMITTER,
    add_files,
    as_document,
    cohort,
    cohort_files,
    session_of,
)
from sqlalchemy import Engine, select

from genofed import db
from genofed.metadata import service
from genofed.metadata.accessions import Accession, parse
from genofed.metadata.errors import DatasetError, MetadataError, NotFound

POLICY = {
    "dacs": [{"alias": "DAC", "title": "Node DAC", "contacts": ["dac@example.be"]}],
    "policies": [{"alias": "GRU", "title": "Any research", "dac": "DAC", "permission": "GRU"}],
}


def _with_policy(engine: Engine, submitter: str = SUBMITTER) -> None:
    with session_of(engine) as session:
        service.submit_metadata(session, COUNTRY, submitter, POLICY)


def _draft(engine: Engine, alias: str = "DS1", policy: str | None = "GRU") -> str:
    with session_of(engine) as session:
        dataset = service.create_dataset(
            session, COUNTRY, SUBMITTER, alias=alias, title="A dataset", policy=policy
        )
        assert dataset.status is db.ObjectStatus.DRAFT
        return str(dataset.accession)


def _files(engine: Engine, count: int, **kwargs: Any) -> list[str]:
    with session_of(engine) as session:
        return [str(file.accession) for file in add_files(session, count, **kwargs)]


def _status(engine: Engine, dataset: str) -> db.ObjectStatus:
    with session_of(engine) as session:
        return service.find_dataset(session, COUNTRY, dataset).status


# -- creating and filling -----------------------------------------------------------------------


def test_create_add_files_release_deprecate(db_engine: Engine) -> None:
    _with_policy(db_engine)
    dataset = _draft(db_engine)
    files = _files(db_engine, 3)
    with session_of(db_engine) as session:
        added = service.add_files(session, COUNTRY, dataset, files[:2])
        assert [file.accession for file in added] == files[:2]
    with session_of(db_engine) as session:  # by file id, by EGA form; present ones are skipped
        third = session.scalars(
            select(db.ArchiveFile.id).where(db.ArchiveFile.accession == files[2])
        ).one()
        added = service.add_files(session, COUNTRY, "DS1", [third, parse(files[0]).ega])
        assert [file.accession for file in added] == [files[2]]
        assert service.released_datasets(session) == []

    with session_of(db_engine) as session:
        released = service.release_dataset(session, COUNTRY, dataset)
        assert released.status is db.ObjectStatus.RELEASED
    with session_of(db_engine) as session:
        assert [d.accession for d in service.released_datasets(session)] == [dataset]
        with pytest.raises(DatasetError, match="already released"):
            service.release_dataset(session, COUNTRY, dataset)

    with session_of(db_engine) as session:
        service.deprecate_dataset(session, COUNTRY, parse(dataset).ega)
    with session_of(db_engine) as session:
        assert service.released_datasets(session) == []
        assert _status(db_engine, dataset) is db.ObjectStatus.DEPRECATED
        with pytest.raises(DatasetError, match="is deprecated"):
            service.deprecate_dataset(session, COUNTRY, dataset)
        with pytest.raises(DatasetError, match="deprecated and its content is fixed"):
            service.release_dataset(session, COUNTRY, dataset)


def test_only_ready_files_of_the_submitter_are_added_and_then_all_or_none(
    db_engine: Engine,
) -> None:
    _with_policy(db_engine)
    dataset = _draft(db_engine)
    ready = _files(db_engine, 1)[0]
    verified = _files(db_engine, 1, state=db.FileState.VERIFIED)[0]
    bobs = _files(db_engine, 1, submitter="bob")[0]
    nowhere = str(Accession(COUNTRY, "file", 9_999))
    study = str(Accession(COUNTRY, "study", 1))
    with session_of(db_engine) as session, pytest.raises(DatasetError) as raised:
        service.add_files(session, COUNTRY, dataset, [ready, verified, bobs, nowhere, study])
    message = str(raised.value)
    assert message.startswith(f"no file was added to dataset {dataset}: ")
    assert f"{verified} is verified, not ready" in message
    assert f"{bobs} belongs to bob, not to {SUBMITTER}" in message
    assert f"{nowhere} is not in the archive" in message
    assert f"{study} is a study accession" in message
    assert ready not in message
    with session_of(db_engine) as session:
        found = service.find_dataset(session, COUNTRY, dataset)
        assert service.dataset_files(session, found) == []


def test_release_needs_a_policy_files_and_all_files_ready(db_engine: Engine) -> None:
    dataset = _draft(db_engine, policy=None)
    with session_of(db_engine) as session, pytest.raises(DatasetError) as raised:
        service.release_dataset(session, COUNTRY, dataset)
    assert "it has no policy" in str(raised.value)
    assert "it has no files" in str(raised.value)

    # files that became unready after they were added (e.g. disabled) block the release
    files = _files(db_engine, 7)
    with session_of(db_engine) as session:
        service.add_files(session, COUNTRY, dataset, files)
        for file in service.dataset_files(session, service.find_dataset(session, COUNTRY, "DS1")):
            file.state = db.FileState.BACKED_UP
    with session_of(db_engine) as session, pytest.raises(DatasetError) as raised:
        service.release_dataset(session, COUNTRY, dataset)
    assert "7 file(s) are not ready" in str(raised.value)
    assert "and 2 more" in str(raised.value)
    assert _status(db_engine, dataset) is db.ObjectStatus.DRAFT


def test_create_names_its_problems(db_engine: Engine) -> None:
    with session_of(db_engine) as session, pytest.raises(DatasetError) as raised:
        service.create_dataset(session, COUNTRY, SUBMITTER, alias="D", title="T", policy="NOPE")
    assert "policy 'NOPE': unknown policy alias" in str(raised.value)
    _with_policy(db_engine)
    _draft(db_engine)
    with session_of(db_engine) as session, pytest.raises(DatasetError, match="already has"):
        service.create_dataset(session, COUNTRY, SUBMITTER, alias="DS1", title="T")
    with session_of(db_engine) as session:
        assert len(service.list_datasets(session)) == 1


def test_a_released_dataset_takes_no_more_files(db_engine: Engine) -> None:
    _with_policy(db_engine)
    dataset = _draft(db_engine)
    first, second = _files(db_engine, 2)
    with session_of(db_engine) as session:
        service.add_files(session, COUNTRY, dataset, [first])
        service.release_dataset(session, COUNTRY, dataset)
    with session_of(db_engine) as session, pytest.raises(DatasetError, match="content is fixed"):
        service.add_files(session, COUNTRY, dataset, [second])


def test_a_cohort_dataset_carries_the_files_of_its_runs_and_analyses(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
        service.submit_metadata(session, COUNTRY, SUBMITTER, as_document(cohort(files)))
    with session_of(db_engine) as session:
        released = service.release_dataset(session, COUNTRY, "EPI-BE-WGS")
        found = service.dataset_files(session, released)
        assert sorted(str(file.accession) for file in found) == sorted(files.reads + files.vcf)
        ((listed, count),) = service.list_datasets(session, released_only=True)
        assert (listed.alias, count) == ("EPI-BE-WGS", 2 * SAMPLES + 2)


def test_alias_lookups_across_submitters(db_engine: Engine) -> None:
    for submitter in (SUBMITTER, "bob"):
        with session_of(db_engine) as session:
            service.create_dataset(session, COUNTRY, submitter, alias="same", title="T")
    with session_of(db_engine) as session:
        with pytest.raises(MetadataError, match="several submitters: give the accession"):
            service.find_dataset(session, COUNTRY, "same")
        assert service.find_dataset(session, COUNTRY, "same", submitter="bob").submitter == "bob"
        with pytest.raises(NotFound, match="no dataset with accession or alias 'other'"):
            service.find_dataset(session, COUNTRY, "other")


# -- FEGA messages ------------------------------------------------------------------------------


@pytest.fixture
def fega_schemas(shared_dir: Path) -> dict[str, dict[str, Any]]:
    folder = shared_dir / "specs" / "fega-messages"
    return {
        kind: json.loads((folder / f"dataset-{kind}.json").read_text())
        for kind in ("mapping", "release", "deprecate")
    }


def _released_cohort(engine: Engine) -> tuple[str, list[str]]:
    with session_of(engine) as session:
        files = cohort_files(session)
        service.submit_metadata(session, COUNTRY, SUBMITTER, as_document(cohort(files)))
        dataset = service.release_dataset(session, COUNTRY, "EPI-BE-WGS")
        return str(dataset.accession), files.reads + files.vcf


def test_emitted_messages_validate_against_the_fega_schemas(
    db_engine: Engine, fega_schemas: dict[str, dict[str, Any]]
) -> None:
    dataset, files = _released_cohort(db_engine)
    with session_of(db_engine) as session:
        found = service.find_dataset(session, COUNTRY, dataset)
        bodies = {kind: service.dataset_message(session, found, kind) for kind in fega_schemas}
    for kind, body in bodies.items():
        jsonschema.Draft7Validator(fega_schemas[kind]).validate(body)
        assert body["type"] == kind
        assert body["dataset_id"] == parse(dataset).ega == "EGAD00000000001"
    assert bodies["mapping"]["accession_ids"] == sorted(parse(f).ega for f in files)
    assert len(bodies["mapping"]["accession_ids"]) == 2 * SAMPLES + 2


def test_an_unknown_message_kind_is_refused(db_engine: Engine) -> None:
    dataset = _draft(db_engine, policy=None)
    with session_of(db_engine) as session:
        found = service.find_dataset(session, COUNTRY, dataset)
        with pytest.raises(MetadataError, match="use one of mapping, release, deprecate"):
            service.dataset_message(session, found, "delete")


def test_mapping_refuses_files_without_accession(db_engine: Engine) -> None:
    dataset = _draft(db_engine, policy=None)
    with session_of(db_engine) as session:
        (file,) = add_files(session, 1, accessioned=False)
        service.add_files(session, COUNTRY, dataset, [file.id])
        found = service.find_dataset(session, COUNTRY, dataset)
        with pytest.raises(DatasetError, match="files without an accession"):
            service.dataset_message(session, found, "mapping")


def test_applied_messages_drive_the_life_cycle_idempotently(
    db_engine: Engine, fega_schemas: dict[str, dict[str, Any]]
) -> None:
    _with_policy(db_engine)
    dataset = _draft(db_engine)
    files = _files(db_engine, 3)
    ega = parse(dataset).ega
    mapping = {"type": "mapping", "dataset_id": ega, "accession_ids": [parse(f).ega for f in files]}
    release = {"type": "release", "dataset_id": ega}
    deprecate = {"type": "deprecate", "dataset_id": ega}
    for body, kind in ((mapping, "mapping"), (release, "release"), (deprecate, "deprecate")):
        jsonschema.Draft7Validator(fega_schemas[kind]).validate(body)

    for _ in range(2):  # every message delivered twice
        with session_of(db_engine) as session:
            found = service.apply_dataset_message(session, COUNTRY, mapping)
            assert len(service.dataset_files(session, found)) == 3
    for _ in range(2):
        with session_of(db_engine) as session:
            service.apply_dataset_message(session, COUNTRY, release)
        assert _status(db_engine, dataset) is db.ObjectStatus.RELEASED
    with session_of(db_engine) as session:  # a mapping that adds nothing is still fine
        service.apply_dataset_message(session, COUNTRY, mapping)
    for _ in range(2):
        with session_of(db_engine) as session:
            service.apply_dataset_message(session, COUNTRY, deprecate)
        assert _status(db_engine, dataset) is db.ObjectStatus.DEPRECATED


def test_applied_messages_keep_the_rules(db_engine: Engine) -> None:
    _with_policy(db_engine)
    dataset = _draft(db_engine)
    ega = parse(dataset).ega
    first, second = _files(db_engine, 2)
    with session_of(db_engine) as session, pytest.raises(DatasetError, match="cannot be released"):
        service.apply_dataset_message(session, COUNTRY, {"type": "release", "dataset_id": ega})
    with session_of(db_engine) as session:
        service.add_files(session, COUNTRY, dataset, [first])
        service.release_dataset(session, COUNTRY, dataset)
    more = {"type": "mapping", "dataset_id": ega, "accession_ids": [parse(second).ega]}
    with session_of(db_engine) as session, pytest.raises(DatasetError, match="files are fixed"):
        service.apply_dataset_message(session, COUNTRY, more)
    unknown = {"type": "release", "dataset_id": "EGAD00000000999"}
    with session_of(db_engine) as session, pytest.raises(NotFound):
        service.apply_dataset_message(session, COUNTRY, unknown)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "delete", "dataset_id": "EGAD00000000001"}, "not a FEGA dataset message"),
        ({"type": "release", "dataset_id": "EGAD1"}, "is not EGAD + 11 digits"),
        ({"type": "release"}, "is not EGAD + 11 digits"),
        (
            {"type": "mapping", "dataset_id": "EGAD00000000001", "accession_ids": ["EGAD0"]},
            "accession_ids must be a list of EGAF",
        ),
    ],
)
def test_malformed_messages_are_refused(db_engine: Engine, body: dict[str, Any], message: str):
    with session_of(db_engine) as session, pytest.raises(MetadataError, match=re.escape(message)):
        service.apply_dataset_message(session, COUNTRY, body)
