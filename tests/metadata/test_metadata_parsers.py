"""Properties of the parsers: any content yields problems, never an exception; what validates,
stores (on SQLite and PostgreSQL); canonical forms are stable."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metadata_support import COUNTRY, SUBMITTER, add_files
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session

from genofed import db
from genofed.metadata import duo, ontology
from genofed.metadata.model import columns, split
from genofed.metadata.problems import Problem
from genofed.metadata.sheets import (
    read_document,
    read_json,
    read_sheet,
    validate_submission,
)
from genofed.metadata.store import submit_metadata

KINDS = list(db.ObjectKind)
SHEETS = ["studies", "samples", "experiments", "runs", "analyses", "datasets", "dacs", "policies"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Cells as people and programs fill them: any text, separators, CURIE-ish and accession-ish bits.
cell = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="HPICDNTMOEFRA0123456789:;_=. \t\n\"'<>@GFBX", max_size=30),
    st.sampled_from(
        ["HP:0001250", "ICD10:G40.3", "DS", "GS=EU", "female", "P45Y", "GFBEF00000000001X"]
    ),
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated database for all examples of a module (each example rolls back)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'genofed.db'}"
        yield from _migrated(url)
        return
    server = os.environ.get("GENOFED_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("GENOFED_TEST_POSTGRES_URL is not set")
    schema = f"genofed_f_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield from _migrated(url.render_as_string(hide_password=False))
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    finally:
        admin.dispose()


def _migrated(url: str) -> Iterator[Engine]:
    db.upgrade(url)
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        add_files(session, 3)
    yield engine
    engine.dispose()


def _tsv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _well_formed(problems: list[Problem]) -> None:
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.row is None or problem.row >= 1
        assert problem.problem and problem.fix
        for shown in (problem.value, problem.column, problem.sheet):
            assert shown is None or all(c.isprintable() for c in shown)
        str(problem)


@st.composite
def sheets(draw: st.DrawFn) -> tuple[str, str]:
    """A structurally valid sheet of any kind, with any cells in known and unknown columns."""
    name = draw(st.sampled_from(SHEETS))
    kind = KINDS[SHEETS.index(name)]
    known = columns(kind)
    header = draw(
        st.lists(st.one_of(st.sampled_from(known), st.text(max_size=8)), max_size=len(known) + 2)
    )
    rows = draw(
        st.lists(st.lists(cell, min_size=len(header), max_size=len(header) + 1), max_size=4)
    )
    return f"{name}.{draw(st.sampled_from(['tsv', 'csv']))}", _tsv(header, rows)


@FUZZ
@given(sheet=sheets())
def test_any_cells_yield_problems_never_an_exception(fuzz_engine: Engine, sheet: tuple[str, str]):
    name, content = sheet
    submission = read_sheet(name, content)
    _well_formed(validate_submission(submission))
    with Session(fuzz_engine) as session:
        problems = validate_submission(
            submission, session=session, country=COUNTRY, submitter=SUBMITTER
        )
        _well_formed(problems)
        session.rollback()


@FUZZ
@given(name=st.sampled_from(SHEETS), content=st.binary(max_size=300))
def test_any_bytes_yield_problems(name: str, content: bytes) -> None:
    _well_formed(validate_submission(read_sheet(f"{name}.tsv", content)))
    _well_formed(validate_submission(read_json(f"{name}.json", content)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | cell,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@FUZZ
@given(
    document=st.dictionaries(
        st.sampled_from([*SHEETS, "sample", "other"]),
        st.lists(
            st.dictionaries(
                st.sampled_from(["alias", "sex", "title", "files", "modifiers", "contacts"]),
                json_values,
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    )
)
def test_any_json_document_yields_problems(document: dict[str, object]) -> None:
    _well_formed(validate_submission(read_document(document)))
    # and it survives a trip through text, lone surrogates included
    _well_formed(validate_submission(read_json("x.json", json.dumps(document))))


free_text = st.text(min_size=1, max_size=300)


@FUZZ
@given(title=free_text, description=free_text, alias=free_text, population=free_text)
def test_what_validates_also_stores(
    fuzz_engine: Engine, title: str, description: str, alias: str, population: str
) -> None:
    """Validation is complete: no text it lets through can fail in the database."""
    document = {
        "studies": [
            {"alias": alias, "title": title, "description": description, "study_type": "Other"}
        ],
        "samples": [{"alias": alias, "sex": "unknown", "population": population, "study": alias}],
    }
    with Session(fuzz_engine) as session:
        problems = validate_submission(
            read_document(document), session=session, country=COUNTRY, submitter=SUBMITTER
        )
        if not problems:
            result = submit_metadata(session, COUNTRY, SUBMITTER, document)
            assert result.counts() == {"created": 2}
        session.rollback()


@given(
    prefix=st.sampled_from(["HP", "hp", "MONDO", "EFO"]),
    number=st.integers(min_value=0, max_value=9_999_999),
)
def test_curies_are_canonical_and_stable(prefix: str, number: int) -> None:
    written = f" {prefix}:{number:07d} "
    canonical = ontology.curie(written)
    assert canonical == f"{prefix.upper()}:{number:07d}"
    assert ontology.curie(canonical) == canonical


@given(values=st.lists(st.text().filter(lambda t: ";" not in t and t.strip()), max_size=5))
def test_multi_valued_cells_split_back_into_their_values(values: list[str]) -> None:
    assert split(";".join(values)) == [value.strip() for value in values]


@given(code=st.sampled_from(duo.MODIFIERS), value=st.text(max_size=10))
def test_modifiers_either_parse_canonically_or_explain(code: str, value: str) -> None:
    written = f"{code.lower()}={value}" if value else code.lower()
    try:
        parsed = duo.modifier(written)
    except PydanticCustomError as error:
        assert error.context and error.context["fix"]
        return
    assert parsed.code == code
    assert duo.modifier(str(parsed)) == parsed
