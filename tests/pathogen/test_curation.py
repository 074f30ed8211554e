"""Curation and what follows it: approve and release, errors held back, reject, revise into a
new version, revoke (kept, flagged), released records for the queries, terms for downloads,
acknowledgements, snapshot sets and host-sample links."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from records_support import COUNTRY, TODAY, quick_analyser, samples, submit
from sqlalchemy import Engine, select

from genofed import db
from genofed.db import (
    AuditEntry,
    Grant,
    MetadataLink,
    MetadataObject,
    ObjectKind,
    ObjectStatus,
    PathogenEntry,
    PathogenState,
)
from genofed.metadata.accessions import check_character
from genofed.pathogen import acknowledgements, curation, hostlinks, snapshots, terms
from genofed.pathogen.entries import Conflict, InvalidInput, NotAllowed, NotFound, find_entry
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.processing import process_pending
from genofed.pathogen.record import RESTRICTED
from genofed.pathogen.submissions import revise
from genofed.pathogen.synthetic import write_submission
from genofed.pathogen.terms import Terms

CURATOR = "curator-ann"


def released(
    engine: Engine, folder: Path, count: int = 3, *, seed: int = 1, terms: Terms = Terms()
) -> list[str]:
    """Submit, process and approve ``count`` samples; their accession.versions."""
    outcome = submit(engine, folder, samples(count, seed=seed), terms=terms)
    assert len(outcome.accessions) == count, outcome.problems
    process_pending(engine, analyse=quick_analyser)
    with db.session_scope(db.for_writing(engine)) as session:
        for name in outcome.accessions.values():
            curation.approve(session, name, CURATOR)
    return list(outcome.accessions.values())


def write(engine: Engine):  # type: ignore[no-untyped-def]
    return db.session_scope(db.for_writing(engine))


def test_approval_releases_with_history_and_audit(db_engine: Engine, tmp_path: Path) -> None:
    [name] = released(db_engine, tmp_path, 1)
    with db.session_scope(db_engine) as session:
        entry = find_entry(session, name)
        assert entry.state == PathogenState.RELEASED and entry.released_at is not None
        assert [(e.state.value, e.actor) for e in entry.events] == [
            ("received", "lab-be"),
            ("processing", "processing"),
            ("processed", "processing"),
            ("approved", CURATOR),
            ("released", CURATOR),
        ]
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert actions == ["pathogen.approve", "pathogen.release"]
        [record] = curation.released_records(session)
        assert (record.accession_version, record.node, record.revoked) == (name, COUNTRY, False)
        assert "sequence_id" not in record.metadata
        assert record.analysis.substitutions == ("C241T",)


def test_approval_without_release_waits_for_it(db_engine: Engine, tmp_path: Path) -> None:
    outcome = submit(db_engine, tmp_path, samples(1))
    process_pending(db_engine, analyse=quick_analyser)
    [name] = outcome.accessions.values()
    with write(db_engine) as session:
        assert curation.approve(session, name, CURATOR, release=False).state == "approved"
        assert list(curation.released_records(session)) == []
        with pytest.raises(Conflict, match="not released"):
            snapshots.create_snapshot(session, COUNTRY, "reader", "too early", [name])
        assert curation.release(session, name, CURATOR).state == PathogenState.RELEASED
        with pytest.raises(Conflict, match="only approved versions"):
            curation.release(session, name, CURATOR)


def test_entries_with_errors_cannot_be_approved(db_engine: Engine, tmp_path: Path) -> None:
    batch = samples(1)
    batch[0] = type(batch[0])(batch[0].sequence_id, "B.1", "ACGT" * 10, batch[0].metadata)
    [name] = submit(db_engine, tmp_path, batch).accessions.values()
    with write(db_engine) as session, pytest.raises(Conflict, match="only processed versions"):
        curation.approve(session, name, CURATOR)  # not processed yet
    process_pending(db_engine, analyse=quick_analyser)
    with write(db_engine) as session, pytest.raises(Conflict, match="cannot be approved"):
        curation.approve(session, name, CURATOR)
    with write(db_engine) as session:
        assert find_entry(session, name).state == PathogenState.PROCESSED  # nothing harmed
        with pytest.raises(InvalidInput, match="say why"):
            curation.reject(session, name, CURATOR, "  ")
        rejected = curation.reject(session, name, CURATOR, "does not align: resequence")
        assert rejected.events[-1].detail == "does not align: resequence"
        assert list(curation.released_records(session)) == []


def test_a_revision_becomes_the_next_version(db_engine: Engine, tmp_path: Path) -> None:
    [name] = released(db_engine, tmp_path / "v1", 1)
    accession = name.rsplit(".", 1)[0]
    fixed = samples(1)
    fixed[0].metadata["location"] = "Europe / Belgium / Ghent"
    fasta, sheet = write_submission(fixed, tmp_path / "v2")
    organism = load_organism("sars-cov-2")
    with write(db_engine) as session, pytest.raises(NotAllowed):
        revise(
            session,
            accession=accession,
            submitter="lab-nl",
            organism=organism,
            fasta=fasta,
            sheet=sheet,
        )
    with write(db_engine) as session:
        outcome = revise(
            session,
            accession=accession,
            submitter="lab-be",
            organism=organism,
            fasta=fasta,
            sheet=sheet,
            today=TODAY,
        )
    assert outcome.accessions == {fixed[0].sequence_id: f"{accession}.2"}
    with write(db_engine) as session, pytest.raises(Conflict, match="in progress"):
        revise(
            session,
            accession=accession,
            submitter="lab-be",
            organism=organism,
            fasta=fasta,
            sheet=sheet,
        )
    with db.session_scope(db_engine) as session:  # version 1 is still what the queries see
        [record] = curation.released_records(session)
        assert record.version == 1
    process_pending(db_engine, analyse=quick_analyser)
    with write(db_engine) as session:
        curation.approve(session, accession, CURATOR)
    with db.session_scope(db_engine) as session:
        [latest] = curation.released_records(session)
        assert (latest.version, latest.metadata["location"]) == (2, "Europe / Belgium / Ghent")
        every = list(curation.released_records(session, all_versions=True))
        assert sorted(r.version for r in every) == [1, 2]
        assert [v["version"] for v in curation.history(session, accession)] == [1, 2]


def test_a_revoked_record_is_kept_flagged(db_engine: Engine, tmp_path: Path) -> None:
    names = released(db_engine, tmp_path, 2)
    with db.session_scope(db_engine) as session:
        before = curation.data_version(session)
    with write(db_engine) as session:
        with pytest.raises(NotAllowed):
            curation.revoke(session, names[0], "lab-nl", "not theirs", curator=False)
        curation.revoke(session, names[0], "lab-be", "sample swap", curator=False)
        with pytest.raises(Conflict, match="revoked already"):
            curation.revoke(session, names[0], CURATOR, "again", curator=True)
    with db.session_scope(db_engine) as session:
        records = {r.accession_version: r for r in curation.released_records(session)}
        assert records[names[0]].revoked and not records[names[1]].revoked
        assert curation.data_version(session) == before + 1
        [changed] = curation.released_records(session, since=before)
        assert changed.accession_version == names[0]
    fasta, sheet = write_submission(samples(1), tmp_path / "again")
    with write(db_engine) as session, pytest.raises(Conflict, match="revoked"):
        revise(
            session,
            accession=names[0],
            submitter="lab-be",
            organism=load_organism("sars-cov-2"),
            fasta=fasta,
            sheet=sheet,
        )


def test_mistyped_and_unknown_accessions(db_engine: Engine, tmp_path: Path) -> None:
    [name] = released(db_engine, tmp_path, 1)
    mistyped = name[:5] + ("1" if name[5] != "1" else "2") + name[6:]
    with db.session_scope(db_engine) as session:
        with pytest.raises(InvalidInput, match="check character"):
            find_entry(session, mistyped)
        with pytest.raises(NotFound, match="no version 7"):
            find_entry(session, name.replace(".1", ".7"))
        with pytest.raises(InvalidInput, match="not a pathogen record"):
            find_entry(session, "GFBED00000000001" + check_character("GFBED00000000001"))


def test_downloads_need_the_terms_accepted(db_engine: Engine, tmp_path: Path) -> None:
    open_names = released(db_engine, tmp_path / "open", 1)
    until = datetime.now(UTC).date() + timedelta(days=30)
    restricted_names = released(
        db_engine, tmp_path / "restricted", 1, seed=2, terms=Terms(RESTRICTED, until)
    )
    with write(db_engine) as session:
        everything = [find_entry(session, n) for n in open_names + restricted_names]
        today = datetime.now(UTC).date()
        with pytest.raises(NotAllowed, match="has not accepted"):
            terms.check_download(session, "reader", everything[:1], today)
        terms.accept(session, "reader", "open")
        terms.check_download(session, "reader", everything[:1], today)
        with pytest.raises(NotAllowed, match="restricted use"):
            terms.check_download(session, "reader", everything, today)
        terms.check_download(session, "reader", everything, until)  # the restriction ended
        terms.accept(session, "reader", RESTRICTED)
        terms.check_download(session, "reader", everything, today)
        with pytest.raises(InvalidInput):
            terms.accept(session, "reader", "whatever")


def test_acknowledgements_credit_the_labs(db_engine: Engine, tmp_path: Path) -> None:
    names = released(db_engine, tmp_path, 2)
    batch = samples(2)
    with db.session_scope(db_engine) as session:
        rows = acknowledgements.table(find_entry(session, n) for n in names)
    assert [r["accession_version"] for r in rows] == names
    assert rows[0]["originating_lab"] == batch[0].metadata["originating_lab"]
    assert rows[1]["authors"] == batch[1].metadata["authors"]
    parsed = list(csv.DictReader(io.StringIO(acknowledgements.render(rows, "csv"), newline="")))
    assert parsed == rows
    parsed_tsv = list(
        csv.DictReader(io.StringIO(acknowledgements.render(rows, "tsv")), delimiter="\t")
    )
    assert parsed_tsv == rows
    assert json.loads(acknowledgements.render(rows, "json"))["acknowledgements"] == rows
    with pytest.raises(InvalidInput, match="choose tsv, csv, json"):
        acknowledgements.render(rows, "xlsx")


_FIELD = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)


@settings(max_examples=60)
@given(
    st.lists(st.fixed_dictionaries({name: _FIELD for name in acknowledgements.COLUMNS}), max_size=5)
)
def test_acknowledgement_tables_read_back(rows: list[dict[str, str]]) -> None:
    as_csv = list(csv.DictReader(io.StringIO(acknowledgements.render(rows, "csv"), newline="")))
    assert as_csv == rows
    as_tsv = list(csv.DictReader(io.StringIO(acknowledgements.render(rows, "tsv")), delimiter="\t"))
    assert as_tsv == [{k: " ".join(v.split()) for k, v in row.items()} for row in rows]


def test_snapshot_sets_freeze_versions_and_credit(db_engine: Engine, tmp_path: Path) -> None:
    names = released(db_engine, tmp_path, 3)
    with write(db_engine) as session:
        snapshot = snapshots.create_snapshot(
            session, COUNTRY, "reader", " Paper  on B.1 ", [names[2], names[0], names[0]]
        )
        identifier = snapshot.identifier
        assert identifier.startswith("GFBEE")
    with write(db_engine) as session:
        curation.revoke(session, names[0], CURATOR, "contaminated", curator=True)
    with db.session_scope(db_engine) as session:
        view = snapshots.snapshot_view(session, snapshots.get_snapshot(session, identifier))
        assert (view["title"], view["members"]) == ("Paper on B.1", sorted([names[0], names[2]]))
        assert view["revoked_since"] == [names[0]]
        assert [a["accession_version"] for a in view["acknowledgements"]] == view["members"]
        with pytest.raises(InvalidInput, match="check character"):
            snapshots.get_snapshot(
                session, identifier[:-1] + ("0" if identifier[-1] != "0" else "1")
            )
        with pytest.raises(InvalidInput, match="not a snapshot set"):
            snapshots.get_snapshot(session, names[1].split(".")[0])
    with write(db_engine) as session:
        with pytest.raises(Conflict, match="revoked"):
            snapshots.create_snapshot(session, COUNTRY, "reader", "t", [names[0]])
        with pytest.raises(InvalidInput, match="title"):
            snapshots.create_snapshot(session, COUNTRY, "reader", " ", [names[1]])


# -- host-sample links --------------------------------------------------------------------------


def _controlled_sample(engine: Engine) -> tuple[str, str, str]:
    """A dataset → run → experiment → sample chain, and a second dataset; their accessions."""
    objects = {
        "sample": (ObjectKind.SAMPLE, "GFBEN00000000001"),
        "experiment": (ObjectKind.EXPERIMENT, "GFBEX00000000001"),
        "run": (ObjectKind.RUN, "GFBER00000000001"),
        "dataset": (ObjectKind.DATASET, "GFBED00000000001"),
        "other": (ObjectKind.DATASET, "GFBED00000000002"),
    }
    made = {}
    with write(engine) as session:
        for alias, (kind, body) in objects.items():
            row = MetadataObject(
                kind=kind,
                accession=body + check_character(body),
                alias=alias,
                submitter="hospital",
                status=ObjectStatus.RELEASED,
            )
            session.add(row)
            made[alias] = row
        session.flush()
        for source, target, relation in (
            ("dataset", "run", "runs"),
            ("run", "experiment", "experiment"),
            ("experiment", "sample", "sample"),
        ):
            session.add(
                MetadataLink(
                    source_id=made[source].id, target_id=made[target].id, relation=relation
                )
            )
        return tuple(made[a].accession for a in ("sample", "dataset", "other"))  # type: ignore[return-value]


def test_the_host_link_shows_only_with_a_grant(db_engine: Engine, tmp_path: Path) -> None:
    [name] = released(db_engine, tmp_path, 1)
    sample, dataset, other = _controlled_sample(db_engine)
    with write(db_engine) as session:
        with pytest.raises(NotAllowed):
            hostlinks.link_host_sample(
                session, COUNTRY, name.split(".")[0], sample, dataset, "lab-nl", curator=False
            )
        with pytest.raises(InvalidInput, match="not in dataset"):
            hostlinks.link_host_sample(
                session, COUNTRY, name.split(".")[0], sample, other, "lab-be", curator=False
            )
        with pytest.raises(NotFound):
            hostlinks.link_host_sample(
                session, COUNTRY, name.split(".")[0], "nobody", dataset, "lab-be", curator=False
            )
        hostlinks.link_host_sample(
            session, COUNTRY, name.split(".")[0], sample, dataset, "lab-be", curator=False
        )
        session.add(
            Grant(
                subject="approved-researcher",
                dataset_accession=dataset,
                granted_by="dac",
                expires_at=datetime.now(UTC) + timedelta(days=30),
            )
        )
        session.add(
            Grant(
                subject="other-researcher",
                dataset_accession=other,
                granted_by="dac",
                expires_at=datetime.now(UTC) + timedelta(days=30),
            )
        )
    with db.session_scope(db_engine) as session:
        entry = find_entry(session, name)
        assert hostlinks.visible_link(session, "approved-researcher", entry) == {
            "host_sample": sample,
            "host_dataset": dataset,
        }
        assert hostlinks.visible_link(session, "other-researcher", entry) == {}
        assert hostlinks.visible_link(session, "lab-be", entry) == {}
        assert hostlinks.visible_link(session, None, entry) == {}
        assert session.scalars(select(PathogenEntry.host_sample)).all() == [sample]
