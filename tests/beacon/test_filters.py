"""Ontologies and filters: descendants from HPO and ICD-10, operator OBO files, similarity, the
alphanumeric fields (ages as durations), custom terms, scopes, and the listed filtering terms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import SAMPLES, release_cohort
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from genofed import db
from genofed.beacon.entities import Catalogue, catalogue
from genofed.beacon.filters import duration_days, filtering_terms, select_records
from genofed.beacon.ontology import load_ontologies, read_obo
from genofed.beacon.requests import InvalidRequest, parse_filter

MONDO = """format-version: 1.2
data-version: mondo/releases/2025-01-01
ontology: mondo

[Term]
id: MONDO:0000001
name: disease

[Term]
id: MONDO:0005027
name: epilepsy
is_a: MONDO:0000001 ! disease
alt_id: MONDO:0000999

[Term]
id: MONDO:0100062
name: early-onset epilepsy
is_a: MONDO:0005027 ! epilepsy {source="x"}

[Term]
id: MONDO:0000002
name: retired
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""


@pytest.fixture(scope="module")
def ontologies() -> Any:
    return load_ontologies()


@pytest.fixture
def cohort_catalogue(db_engine: Engine) -> Iterator[Catalogue]:
    release_cohort(db_engine)
    with db.session_scope(db_engine) as session:
        yield catalogue(session)


def individuals(found: Catalogue, ontologies: Any, *filters: Any, entry: Any = "individual") -> int:
    selection = select_records([parse_filter(f) for f in filters], entry, found, ontologies)
    if selection.samples is None:
        return len(found.individuals)
    return len({found.samples[s].individual for s in selection.samples})


# -- ontologies ---------------------------------------------------------------------------------


def test_hpo_terms_expand_to_their_descendants(ontologies: Any) -> None:
    seizure = ontologies.expand("HP:0001250")
    assert seizure.known and "HP:0002069" in seizure.terms  # bilateral tonic-clonic seizure
    assert ontologies.label("HP:0001250") == "Seizure"
    assert ontologies.expand("HP:0001250", descendants=False).terms == {"HP:0001250"}


def test_icd10_codes_expand_through_blocks_and_chapters(ontologies: Any) -> None:
    assert "ICD10:G40.3" in ontologies.expand("ICD10:G40").terms
    assert "ICD10:G40.3" in ontologies.expand("ICD10:G40-G47").terms
    assert ontologies.label("ICD10:G40.9") == "Epilepsy, unspecified"


def test_similarity_widens_to_the_ancestors_subtrees(ontologies: Any) -> None:
    exact = ontologies.expand("ICD10:G40.3").terms
    high = ontologies.expand("ICD10:G40.3", similarity="high").terms
    assert exact == {"ICD10:G40.3"} and "ICD10:G40.9" in high and "ICD10:G41" not in high
    assert "ICD10:G41" in ontologies.expand("ICD10:G40.3", similarity="medium").terms


def test_a_term_of_an_unloaded_ontology_matches_only_itself(ontologies: Any) -> None:
    found = ontologies.expand("MONDO:0005027")
    assert found.terms == {"MONDO:0005027"} and not found.known


def test_an_operator_obo_file_serves_its_prefix(tmp_path: Path) -> None:
    path = tmp_path / "mondo.obo"
    path.write_text(MONDO)
    loaded = load_ontologies([path])
    assert loaded.expand("MONDO:0005027").terms == {
        "MONDO:0005027",
        "MONDO:0100062",
        "MONDO:0000999",
    }
    assert loaded.label("MONDO:0000999") == "epilepsy"  # an alt_id
    assert loaded.label("MONDO:0000002") is None  # obsolete
    assert loaded.resources(["MONDO"])[0]["version"] == "2025-01-01"
    assert loaded.label("HP:0001250") == "Seizure"  # the built-in ones stay


def test_a_file_without_terms_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.obo"
    path.write_text("format-version: 1.2\n")
    with pytest.raises(ValueError, match="no \\[Term\\]"):
        read_obo(path)


# -- ages ---------------------------------------------------------------------------------------


def test_ages_compare_as_lengths_of_time() -> None:
    assert duration_days("P1Y") > duration_days("P11M") > duration_days("P47W")  # type: ignore[operator]
    assert duration_days("P18M") == duration_days("P1Y6M")
    assert duration_days("p70y") == duration_days("P70Y")
    assert duration_days("70") is None and duration_days("P") is None


@given(st.integers(0, 150), st.integers(0, 11), st.integers(0, 150), st.integers(0, 11))
def test_age_order_follows_years_then_months(y1: int, m1: int, y2: int, m2: int) -> None:
    first, second = duration_days(f"P{y1}Y{m1}M"), duration_days(f"P{y2}Y{m2}M")
    assert first is not None and second is not None
    assert (first < second) == ((y1, m1) < (y2, m2))


# -- filters on the cohort ----------------------------------------------------------------------


def test_ontology_filters_find_descendants_unless_told_not_to(
    cohort_catalogue: Catalogue, ontologies: Any
) -> None:
    # HP:0001250 on its own for 8 people, its descendant HP:0002069 for 4 more
    assert individuals(cohort_catalogue, ontologies, "HP:0001250") == 12
    exact = {"id": "HP:0001250", "includeDescendantTerms": False}
    assert individuals(cohort_catalogue, ontologies, exact) == 8
    assert individuals(cohort_catalogue, ontologies, "ICD10:G40") == 8  # G40.3 and G40.9
    assert individuals(cohort_catalogue, ontologies, "HP:0000118", "ICD10:G40") == 4  # AND


def test_sex_as_a_term_or_a_field(cohort_catalogue: Catalogue, ontologies: Any) -> None:
    assert individuals(cohort_catalogue, ontologies, "NCIT:C16576") == SAMPLES // 2
    assert individuals(cohort_catalogue, ontologies, "sex=male") == SAMPLES // 4
    assert individuals(cohort_catalogue, ontologies, "sex!female") == SAMPLES // 2
    as_term = {"id": "sex", "operator": "=", "value": "NCIT:C20197"}
    assert individuals(cohort_catalogue, ontologies, as_term) == SAMPLES // 4


def test_age_filters(cohort_catalogue: Catalogue, ontologies: Any) -> None:
    # ages P18Y..P37Y, one each
    assert individuals(cohort_catalogue, ontologies, "age>=P30Y") == 8
    assert individuals(cohort_catalogue, ontologies, "age<P216M") == 0  # 18 years in months
    assert individuals(cohort_catalogue, ontologies, "age<=P216M") == 1
    assert individuals(cohort_catalogue, ontologies, "age=P20Y") == 1
    assert individuals(cohort_catalogue, ontologies, "age!P20Y") == SAMPLES - 1
    two = [{"id": "age", "operator": ">", "value": "P20Y"}, "age<P25Y"]
    assert individuals(cohort_catalogue, ontologies, *two) == 4


def test_text_fields_with_wildcards_and_custom_terms(
    cohort_catalogue: Catalogue, ontologies: Any
) -> None:
    assert individuals(cohort_catalogue, ontologies, "population=euro%") == SAMPLES
    assert individuals(cohort_catalogue, ontologies, "population=Asian") == 0
    assert individuals(cohort_catalogue, ontologies, "population:European") == SAMPLES
    custom = {"id": "population:european", "scope": "biosamples"}
    assert individuals(cohort_catalogue, ontologies, custom, entry="biosample") == SAMPLES


def test_run_and_analysis_fields_select_samples(
    cohort_catalogue: Catalogue, ontologies: Any
) -> None:
    runs = select_records(
        [parse_filter("libraryStrategy=WGS")], "run", cohort_catalogue, ontologies
    )
    assert runs.samples is not None and len(runs.samples) == SAMPLES
    none = select_records([parse_filter("platform=PACBIO%")], "run", cohort_catalogue, ontologies)
    assert none.samples == frozenset()
    scoped = {"id": "assembly", "operator": "=", "value": "GRCh38", "scope": "analysis"}
    found = select_records([parse_filter(scoped)], "individual", cohort_catalogue, ontologies)
    assert found.samples is not None and len(found.samples) == SAMPLES


def test_dataset_filters_select_datasets(cohort_catalogue: Catalogue, ontologies: Any) -> None:
    (dataset,) = cohort_catalogue.datasets
    by_duo = select_records(
        [parse_filter("DUO:0000007")], "individual", cohort_catalogue, ontologies
    )
    assert by_duo.datasets == frozenset({dataset}) and by_duo.samples is None
    other = select_records([parse_filter("DUO:0000042")], "dataset", cohort_catalogue, ontologies)
    assert other.datasets == frozenset()
    # MONDO:0005027 is on every person and on the policy: the endpoint's type decides
    on_people = select_records(
        [parse_filter("MONDO:0005027")], "individual", cohort_catalogue, ontologies
    )
    assert on_people.samples is not None and on_people.datasets is None
    assert any("not loaded" in warning for warning in on_people.warnings)
    on_datasets = select_records(
        [parse_filter("MONDO:0005027")], "dataset", cohort_catalogue, ontologies
    )
    assert on_datasets.datasets == frozenset({dataset})


REFUSED: list[tuple[Any, Any, str]] = [
    ("height>P1Y", "individual", "not a field"),
    ("sex>female", "individual", "compares with = and !"),
    ("sex=woman", "individual", "not a sex"),
    ("age>=70", "individual", "not an age"),
    ("european", "individual", "not a custom term"),
    ({"id": "HP:0001250", "scope": "people"}, "individual", "not an entry type"),
    ("HP:0001250", "dataset", "dataset filters only"),
    ("sex=female", "cohort", "dataset filters only"),
    ({"id": "HP:0001250", "scope": "g_variants"}, "individual", "request parameters"),
]


def test_filters_the_beacon_cannot_apply_are_refused(
    cohort_catalogue: Catalogue, ontologies: Any
) -> None:
    for raw, entry, message in REFUSED:  # one database for all: each case is pure
        with pytest.raises(InvalidRequest, match=message):
            select_records([parse_filter(raw)], entry, cohort_catalogue, ontologies)


# -- filtering terms ----------------------------------------------------------------------------


def test_terms_of_few_people_are_not_listed(cohort_catalogue: Catalogue, ontologies: Any) -> None:
    (dataset,) = cohort_catalogue.datasets
    listed = filtering_terms(cohort_catalogue, ontologies, {dataset: 5})
    ids = {term["id"]: term for term in listed["filteringTerms"]}
    assert ids["HP:0001250"]["label"] == "Seizure"
    assert ids["HP:0001250"]["scopes"] == ["individual", "biosample"]
    assert "HP:0002069" not in ids  # 4 people < 5
    assert "HP:0002069" in _ids(filtering_terms(cohort_catalogue, ontologies, {dataset: 4}))
    assert ids["MONDO:0005027"]["scopes"] == ["individual", "biosample", "dataset"]
    assert ids["DUO:0000007"]["scopes"] == ["dataset"]
    assert ids["age"]["type"] == "alphanumeric" and ids["sex"]["values"] == [
        "female",
        "male",
        "unknown",
    ]
    assert ids["population:European"]["type"] == "custom"
    assert {r["nameSpacePrefix"] for r in listed["resources"]} >= {"HP", "NCIT", "DUO"}


def test_terms_of_one_scope(cohort_catalogue: Catalogue, ontologies: Any) -> None:
    (dataset,) = cohort_catalogue.datasets
    listed = filtering_terms(cohort_catalogue, ontologies, {dataset: 5}, scopes=["run"])
    assert {term["id"] for term in listed["filteringTerms"]} >= {"libraryStrategy", "platform"}
    assert all("run" in term["scopes"] for term in listed["filteringTerms"])
    nothing = filtering_terms(cohort_catalogue, ontologies, {}, datasets=[])["filteringTerms"]
    assert nothing and all(term["type"] == "alphanumeric" for term in nothing)


def _ids(listed: dict[str, Any]) -> set[str]:
    return {term["id"] for term in listed["filteringTerms"]}


# -- genofed beacon terms -----------------------------------------------------------------------


def test_the_terms_command(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from genofed.cli.beacon_terms import terms

    app = typer.Typer()
    app.command("terms")(terms)
    app.command("unused")(lambda: None)  # two commands: "terms" is a subcommand, as in genofed
    (tmp_path / "mondo.obo").write_text(MONDO)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENOFED_DATABASE_URL", db_engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    expanded = runner.invoke(app, ["terms", "MONDO:0005027", "--obo", "mondo.obo"])
    assert expanded.exit_code == 0, expanded.output
    assert "MONDO:0005027\tepilepsy" in expanded.output and "MONDO:0100062" in expanded.output
    unknown = runner.invoke(app, ["terms", "MONDO:0005027"])
    assert unknown.exit_code == 0 and "no loaded ontology" in unknown.output
    release_cohort(db_engine)
    listed = runner.invoke(app, ["terms"])
    assert listed.exit_code == 0, listed.output
    assert "HP:0001250\tSeizure\t[Human Phenotype Ontology; individual, biosample]" in listed.output
    missing = runner.invoke(app, ["terms", "HP:0001250", "--obo", "nope.obo"])
    assert missing.exit_code != 0 and "no such file" in missing.output
