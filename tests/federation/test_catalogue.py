"""The catalogue: the public summary a node builds, the hub's store, and search with facets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from federation_support import add_hub_node, published, summary
from metadata_support import COUNTRY, SUBMITTER, cohort, cohort_files, session_of
from sqlalchemy import Engine, delete

from genofed.config import Settings
from genofed.db.models import HubDataset
from genofed.federation import catalogue
from genofed.federation.catalogue import CatalogueIndex, InvalidQuery, Query, combined_digest
from genofed.federation.summary import DatasetSummary, build_summary, published_datasets
from genofed.metadata import service

NODE_URL = "https://ega.example.be"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, country=COUNTRY, http={"public_url": NODE_URL})


def _release_cohort(engine: Engine) -> str:
    with session_of(engine) as session:
        service.submit_metadata(session, COUNTRY, SUBMITTER, cohort(cohort_files(session)))
    with session_of(engine) as session:
        return str(service.release_dataset(session, COUNTRY, "EPI-BE-WGS").accession)


def _summaries(engine: Engine, settings: Settings) -> list[DatasetSummary]:
    with session_of(engine) as session:
        return [build_summary(session, settings, d) for d in published_datasets(session)]


# -- the node's summary --------------------------------------------------------------------------


def test_the_summary_of_the_cohort(db_engine: Engine, settings: Settings) -> None:
    accession = _release_cohort(db_engine)
    [built] = _summaries(db_engine, settings)
    assert (built.accession, built.status, built.title) == (
        accession,
        "released",
        "Epilepsy cohort genomes and variant calls",
    )
    assert (built.individuals, built.samples, built.files) == (20, 20, 42)
    assert built.sex == {"female": 10, "male": 5, "unknown": 5}  # NCIT:C16576 is female
    assert [study.title for study in built.studies] == [
        "Whole genomes of a Belgian epilepsy cohort"
    ]
    assert built.data_types == ["SEQUENCE_VARIATION", "WGS"]
    assert built.assemblies == ["GRCh38"]
    phenotypes = {term.id: (term.label, term.count) for term in built.phenotypes}
    assert phenotypes["HP:0001250"] == ("Seizure", 8)
    # Four individuals each: fewer than min_count (5), so the count is not published.
    assert phenotypes["HP:0002069"] == ("Bilateral tonic-clonic seizure", None)
    assert phenotypes["ICD10:G40.3"][1] is None
    assert phenotypes["ICD10:G40.3"][0].startswith("Generalized idiopathic epilepsy")
    assert [(term.id, term.count) for term in built.diseases] == [("MONDO:0005027", 20)]
    assert built.policy is not None and built.dac is not None
    assert built.policy.permission.id == "DUO:0000007"
    assert [str(m.code) + ("=" + m.value if m.value else "") for m in built.policy.modifiers] == [
        "IRB",
        "PUB",
        "GS=EU",
        "TS=P2Y",
        "NPU",
    ]
    assert built.dac.contacts == ["Jane Peeters <dac@uzleuven.be>", "genomics-office@uzleuven.be"]
    assert built.how_to_apply.requests_url == f"{NODE_URL}/access/requests"
    assert "--disease MONDO:0005027 --days" in built.how_to_apply.command
    published_text = json.dumps(built.model_dump(mode="json"))
    for private in ("patient-01", "EPI-01", SUBMITTER, "P18Y"):
        assert private not in published_text  # no individual, sample alias, submitter or age


def test_the_digest_follows_status_and_metadata(db_engine: Engine, settings: Settings) -> None:
    _release_cohort(db_engine)
    [first] = _summaries(db_engine, settings)
    assert [again.digest() for again in _summaries(db_engine, settings)] == [first.digest()]
    sheets = cohort(cohort_files_of_nothing())
    with session_of(db_engine) as session:  # the study's title changes after release
        study = dict(sheets["studies"][0], title="Whole genomes of an epilepsy cohort, v2")
        service.submit_metadata(session, COUNTRY, SUBMITTER, {"studies": [study]})
    [updated] = _summaries(db_engine, settings)
    assert updated.studies[0].title.endswith("v2")
    assert updated.digest() != first.digest()
    with session_of(db_engine) as session:
        service.deprecate_dataset(session, COUNTRY, first.accession)
    [deprecated] = _summaries(db_engine, settings)
    assert deprecated.status == "deprecated"


def cohort_files_of_nothing() -> object:
    """Sheets need file accessions only for runs and analyses, which this test does not send."""
    from metadata_support import CohortFiles

    return CohortFiles(reads=[""] * 40, vcf=["", ""])


def test_a_summary_with_private_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        summary("GFBED000000000010", subject_ids=["patient-01"])


# -- the hub's store ------------------------------------------------------------------------------


def test_publish_counts_and_the_state_the_node_compares(db_engine: Engine) -> None:
    first, second = summary("GFBED000000000010"), summary("GFBED000000000028")
    with session_of(db_engine) as session:
        node = add_hub_node(session, "org.genofed.node.be", "BE")
        counts = catalogue.publish(session, node, [published(first), published(second)])
        assert counts == {"created": 2, "updated": 0, "unchanged": 0}
    with session_of(db_engine) as session:
        changed = summary("GFBED000000000028", title="Renamed")
        counts = catalogue.publish(session, node, [published(first), published(changed)])
        assert counts == {"created": 0, "updated": 1, "unchanged": 1}
        state = catalogue.catalogue_state(session, node.id)
    expected = combined_digest(
        (item.accession, "released", item.digest()) for item in (first, changed)
    )
    assert state == {"datasets": 2, "digest": expected}


# -- search ---------------------------------------------------------------------------------------


@pytest.fixture
def index(db_engine: Engine) -> CatalogueIndex:
    """Three countries' datasets, one of a node still pending."""
    policy_ds = {
        "accession": "GFFIP00000000001V",
        "title": "Epilepsy only",
        "permission": {"code": "DS", "id": "DUO:0000007", "label": "disease specific research"},
        "modifiers": [{"code": "IRB", "id": "DUO:0000021", "label": "ethics approval required"}],
    }
    with session_of(db_engine) as session:
        be = add_hub_node(session, "org.genofed.node.be", "BE")
        fi = add_hub_node(session, "org.genofed.node.fi", "FI")
        se = add_hub_node(session, "org.genofed.node.se", "SE", approved=False)
        catalogue.publish(
            session,
            be,
            [
                published(
                    summary(
                        "GFBED000000000010",
                        title="Epilepsy genomes",
                        phenotypes=[
                            {"id": "HP:0002069", "label": "Bilateral tonic-clonic seizure"}
                        ],
                    )
                ),
                published(
                    summary(
                        "GFBED000000000028",
                        title="Heart exomes",
                        description="Congenital heart disease trios",
                        data_types=["WXS"],
                        assemblies=["GRCh37"],
                        phenotypes=[{"id": "HP:0001627", "label": "Abnormal heart morphology"}],
                    )
                ),
            ],
        )
        catalogue.publish(
            session,
            fi,
            [
                published(
                    summary(
                        "GFFID000000000016",
                        title="Finnish epilepsy registry",
                        diseases=[{"id": "ICD10:G40.3"}, {"id": "MONDO:0005027"}],
                        data_types=["RNA-Seq"],
                        policy=policy_ds,
                    )
                )
            ],
        )
        catalogue.publish(
            session, se, [published(summary("GFSED000000000013", title="Epilepsy SE"))]
        )
    built = CatalogueIndex()
    with session_of(db_engine) as session:
        built.refresh(session)
    return built


def _found(index: CatalogueIndex, **query: object) -> list[str]:
    return [result["accession"] for result in index.search(Query(**query)).results]  # type: ignore[arg-type]


def test_everything_of_approved_nodes_in_a_stable_order(index: CatalogueIndex) -> None:
    assert _found(index) == ["GFBED000000000010", "GFBED000000000028", "GFFID000000000016"]
    result = index.search(Query())
    assert result.total == 3
    assert result.facets["country"] == {"BE": 2, "FI": 1}
    assert result.facets["data_type"] == {"RNA-Seq": 1, "WGS": 1, "WXS": 1}
    assert result.facets["duo"] == {"DS": 1, "GRU": 2, "IRB": 1}


def test_a_phenotype_finds_its_descendants(index: CatalogueIndex) -> None:
    """Seizure (HP:0001250) finds a dataset whose individuals have HP:0002069 only."""
    assert _found(index, phenotype=("HP:0001250",)) == ["GFBED000000000010"]
    assert _found(index, phenotype=("HP:0002069",)) == ["GFBED000000000010"]
    assert _found(index, phenotype=("HP:0001627",)) == ["GFBED000000000028"]
    assert _found(index, phenotype=("HP:0001250", "HP:0001627")) == [
        "GFBED000000000010",
        "GFBED000000000028",
    ]
    assert _found(index, phenotype=("hp:0000118",)) == ["GFBED000000000010", "GFBED000000000028"]


def test_icd10_blocks_and_unexpanded_terms(index: CatalogueIndex) -> None:
    assert _found(index, phenotype=("ICD10:G40",)) == ["GFFID000000000016"]
    assert _found(index, phenotype=("ICD10:G40-G47",)) == ["GFFID000000000016"]
    result = index.search(Query(phenotype=("MONDO:0005027",)))
    assert [r["accession"] for r in result.results] == ["GFFID000000000016"]
    assert result.unexpanded == ["MONDO:0005027"]


def test_facets_and_text_combine(index: CatalogueIndex) -> None:
    assert _found(index, country=("be",)) == ["GFBED000000000010", "GFBED000000000028"]
    assert _found(index, data_type=("rna seq",)) == ["GFFID000000000016"]
    assert _found(index, assembly=("GRCh37",)) == ["GFBED000000000028"]
    assert _found(index, duo=("DUO:0000007",)) == ["GFFID000000000016"]
    assert _found(index, duo=("IRB",), country=("BE",)) == []
    assert _found(index, access=("controlled",), country=("FI", "BE")) == [
        "GFBED000000000010",
        "GFBED000000000028",
        "GFFID000000000016",
    ]
    assert _found(index, text="epilepsy") == ["GFBED000000000010", "GFFID000000000016"]
    assert _found(index, text="heart trios") == ["GFBED000000000028"]
    assert _found(index, text="tonic-clonic") == ["GFBED000000000010"]  # a phenotype's label
    assert _found(index, text="epilepsy", country=("FI",)) == ["GFFID000000000016"]


def test_bad_terms_are_refused(index: CatalogueIndex) -> None:
    with pytest.raises(InvalidQuery, match="not a DUO term"):
        index.search(Query(duo=("XYZ",)))
    with pytest.raises(InvalidQuery, match="not an ontology term"):
        index.search(Query(phenotype=("HP:12",)))


def test_deprecation_approval_and_removal_reach_the_index(
    db_engine: Engine, index: CatalogueIndex
) -> None:
    from genofed.federation import registry

    with session_of(db_engine) as session:
        node = registry.find_node(session, "BE")
        gone = summary("GFBED000000000010", status="deprecated", title="Epilepsy genomes")
        catalogue.publish(session, node, [published(gone)])
        registry.approve(session, "SE", "operator")
    with session_of(db_engine) as session:
        index.refresh(session)
    assert _found(index) == ["GFBED000000000028", "GFFID000000000016", "GFSED000000000013"]
    with session_of(db_engine) as session:
        registry.remove(session, "FI")
        index.refresh(session)
        assert session.query(HubDataset).filter_by(node_id="org.genofed.node.fi").count() == 0
    assert _found(index) == ["GFBED000000000028", "GFSED000000000013"]


def test_pagination(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        session.execute(delete(HubDataset))
        node = add_hub_node(session, "org.genofed.node.be", "BE")
        items = [published(summary(f"GFBED{n:011d}X")) for n in range(25)]
        catalogue.publish(session, node, items)
    index = CatalogueIndex()
    with session_of(db_engine) as session:
        index.refresh(session)
    pages = [_found(index, page=page, page_size=10) for page in (1, 2, 3, 4)]
    assert [len(page) for page in pages] == [10, 10, 5, 0]
    assert [item for page in pages for item in page] == [f"GFBED{n:011d}X" for n in range(25)]
    assert index.search(Query(page=3, page_size=10)).total == 25
