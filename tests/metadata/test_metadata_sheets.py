"""Submissions as sheets and JSON: reading, every problem located, all-or-nothing storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from metadata_support import (
    COUNTRY,
    SAMPLES,
    SUBMITTER,
    add_files,
    as_document,
    cohort,
    cohort_files,
    count_objects,
    session_of,
    sheet_text,
    write_sheets,
)
from sqlalchemy import Engine, select

from genofed import db
from genofed.metadata import service
from genofed.metadata.accessions import Accession, allocate, allocate_many
from genofed.metadata.errors import InvalidSubmission
from genofed.metadata.model import columns, required_columns
from genofed.metadata.problems import Problem
from genofed.metadata.sheets import (
    Submission,
    read_document,
    read_json,
    read_paths,
    read_sheet,
    validate_submission,
)

OBJECTS = 1 + 3 * SAMPLES + 1 + 1 + 1 + 1  # study, samples+experiments+runs, analysis, ...


def _where(problems: list[Problem]) -> list[tuple[str, int | None, str | None]]:
    return [(p.sheet, p.row, p.column) for p in problems]


def _submit(engine: Engine, submission: Submission | dict[str, object]) -> service.SubmissionResult:
    with session_of(engine) as session:
        return service.submit_metadata(session, COUNTRY, SUBMITTER, submission)


def _validate(engine: Engine, submission: Submission, submitter: str = SUBMITTER) -> list[Problem]:
    with session_of(engine) as session:
        return validate_submission(
            submission, session=session, country=COUNTRY, submitter=submitter
        )


# -- the cohort, three ways ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_cohort_sheets_are_stored_with_accessions_links_and_files(
    db_engine: Engine, tmp_path: Path, suffix: str
) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
    write_sheets(tmp_path / "cohort", cohort(files), suffix)
    submission = read_paths([tmp_path / "cohort"])

    assert _validate(db_engine, submission) == []
    result = _submit(db_engine, submission)

    assert result.counts() == {"created": OBJECTS}
    by_kind = result.accessions()
    assert len(by_kind["sample"]) == SAMPLES
    assert by_kind["dataset"]["EPI-BE-WGS"] == str(Accession(COUNTRY, "dataset", 1))
    assert by_kind["sample"]["EPI-20"] == str(Accession(COUNTRY, "sample", 20))
    with session_of(db_engine) as session:
        dataset = service.find_dataset(session, COUNTRY, "EPI-BE-WGS")
        assert len(service.dataset_files(session, dataset)) == 2 * SAMPLES + 2
        sample = service.describe(
            session, service.find_object(session, COUNTRY, db.ObjectKind.SAMPLE, "EPI-03")
        )
        assert sample["phenotypes"] == ["HP:0001263", "ICD10:G40.3"]
        assert sample["sex"] == "female"  # written NCIT:C16576
        assert sample["study"] == by_kind["study"]["EPI-BE"]
        policy = service.describe(
            session, service.find_object(session, COUNTRY, db.ObjectKind.POLICY, "EPI-POLICY")
        )
        assert policy["permission"] == "DS"
        assert policy["modifiers"][2] == {"code": "GS", "value": "EU"}
        assert policy["dac"] == by_kind["dac"]["UZL-DAC"]
        run = service.describe(
            session, service.find_object(session, COUNTRY, db.ObjectKind.RUN, "EPI-01-RUN")
        )
        assert run["files"] == files.reads[:2]


def test_a_json_document_stores_the_same_as_sheets(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
    result = _submit(db_engine, as_document(cohort(files)))
    assert result.counts() == {"created": OBJECTS}
    with session_of(db_engine) as session:
        counted = count_objects(session)
    assert counted["objects"] == OBJECTS
    assert counted["object_files"] == 2 * SAMPLES + 2


def test_excel_csv_with_semicolons_between_columns(db_engine: Engine) -> None:
    sheets = {"studies": [{"alias": "S", "title": "A study", "study_type": "exome sequencing"}]}
    content = sheet_text(sheets["studies"], delimiter=";")
    submission = read_sheet("studies.csv", content)
    assert _validate(db_engine, submission) == []
    assert _submit(db_engine, submission).counts() == {"created": 1}
    with session_of(db_engine) as session:
        study = service.find_object(session, COUNTRY, db.ObjectKind.STUDY, "S")
        assert study.body["study_type"] == "Exome Sequencing"  # the canonical spelling


def test_sheet_conventions_blank_rows_comments_bom_and_loose_headers(db_engine: Engine) -> None:
    content = (
        "\ufeffAlias\tTitle\tStudy Type\n"
        "# a comment row, skipped\n"
        "\t\t\n"
        "S1\tFirst\tWhole Genome Sequencing\n"
    ).encode()
    submission = read_sheet("study.tsv", content)  # singular names work too
    assert _validate(db_engine, submission) == []
    assert [row.number for row in submission.rows] == [4]


# -- every problem, located ---------------------------------------------------------------------


def _bad_submission(tmp_path: Path, foreign_file: str, dataset_accession: str) -> Submission:
    missing_file = str(Accession(COUNTRY, "file", 999_999))
    sheets = {
        "studies": [{"alias": "ST", "title": "A study", "study_type": "Whole Genome Sequencing"}],
        "samples": [
            {"alias": "S1", "sex": "female", "age": "P45Y", "colour": "blue"},
            {"alias": "S1", "sex": "male"},
            {"alias": "S3", "sex": "F", "age": "45", "phenotypes": "HP:123;FOO:1;HP:0001250"},
            {"alias": "", "sex": "female"},
            {"alias": "S5", "sex": "female", "study": "NOPE"},
        ],
        "experiments": [
            {
                "alias": "X1",
                "sample": "ST",
                "platform": "ILLUMINA",
                "instrument": "NovaSeq",
                "library_strategy": "WGS",
                "library_source": "GENOMIC",
                "library_selection": "RANDOM",
            }
        ],
        "runs": [
            {
                "alias": "R1",
                "experiment": "X1",
                "files": f"{missing_file};{foreign_file};notafile;{dataset_accession}",
            }
        ],
        "dacs": [{"alias": "D1", "title": "DAC", "contacts": "Jane <not an address>"}],
        "policies": [
            {"alias": "P1", "title": "Disease only", "dac": "D1", "permission": "DS"},
            {"alias": "P2", "title": "Odd", "dac": "D1", "permission": "XYZ", "modifiers": "GS"},
        ],
    }
    write_sheets(tmp_path / "bad", sheets)
    return read_paths([tmp_path / "bad"])


def test_every_problem_is_reported_with_its_location_and_nothing_is_stored(
    db_engine: Engine, tmp_path: Path
) -> None:
    with session_of(db_engine) as session:
        foreign = str(add_files(session, 1, submitter="bob")[0].accession)
    submission = _bad_submission(tmp_path, foreign, str(Accession(COUNTRY, "dataset", 7)))
    with session_of(db_engine) as session:
        before = count_objects(session)

    problems = _validate(db_engine, submission)

    assert _where(problems) == [
        ("dacs.tsv", 2, "contacts"),
        ("experiments.tsv", 1, "library_layout"),  # a missing required column
        ("experiments.tsv", 2, "sample"),  # the alias of a study
        ("policies.tsv", 2, "diseases"),  # DS without a disease
        ("policies.tsv", 3, "permission"),  # unknown DUO code
        ("policies.tsv", 3, "modifiers"),  # GS without its region
        ("runs.tsv", 2, "files"),  # not in the archive
        ("runs.tsv", 2, "files"),  # bob's
        ("runs.tsv", 2, "files"),  # neither an accession nor an id
        ("runs.tsv", 2, "files"),  # a dataset's accession
        ("samples.tsv", 1, "colour"),  # an unknown column
        ("samples.tsv", 3, "alias"),  # S1 again
        ("samples.tsv", 4, "sex"),
        ("samples.tsv", 4, "age"),
        ("samples.tsv", 4, "phenotypes"),  # HP:123
        ("samples.tsv", 4, "phenotypes"),  # FOO:1
        ("samples.tsv", 5, "alias"),  # missing
        ("samples.tsv", 6, "study"),  # NOPE exists nowhere
    ]
    assert [p.value for p in problems if p.sheet == "runs.tsv"][1:3] == [foreign, "notafile"]
    assert [p.value for p in problems if p.column == "phenotypes"] == ["HP:123", "FOO:1"]
    by_place = {(p.sheet, p.row, p.column): p for p in problems}
    assert "DUO" in by_place[("policies.tsv", 3, "permission")].problem
    assert "GS=EU" in by_place[("policies.tsv", 3, "modifiers")].fix
    assert "row 2 of samples.tsv" in by_place[("samples.tsv", 3, "alias")].problem
    assert "not of a sample" in by_place[("experiments.tsv", 2, "sample")].problem
    assert by_place[("samples.tsv", 4, "age")].fix.startswith("write the age as e.g. P45Y")
    assert all(p.problem and p.fix for p in problems)

    with pytest.raises(InvalidSubmission) as raised, session_of(db_engine) as session:
        service.submit_metadata(session, COUNTRY, SUBMITTER, submission)
    assert raised.value.problems == problems
    with session_of(db_engine) as session:
        assert count_objects(session) == before  # no object, link, file or accession taken


def test_one_bad_row_among_good_ones_stores_nothing(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
        before = count_objects(session)
    sheets = cohort(files)
    sheets["samples"][12]["phenotypes"] = "HP:0001250;HP_0002069"
    with pytest.raises(InvalidSubmission) as raised:
        _submit(db_engine, as_document(sheets))
    (problem,) = raised.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("samples", 13, "phenotypes")
    assert problem.fix == "write it as HP:0002069"
    with session_of(db_engine) as session:
        assert count_objects(session) == before


def test_references_by_accession_and_to_earlier_submissions(db_engine: Engine) -> None:
    first = _submit(
        db_engine,
        {
            "studies": [{"alias": "ST", "title": "Study", "study_type": "Other"}],
            "dacs": [{"alias": "D", "title": "DAC", "contacts": ["dac@example.org"]}],
        },
    )
    study = first.accessions()["study"]["ST"]
    dac_ega = f"EGAC{int(first.accessions()['dac']['D'][5:16]):011d}"
    second = {
        "samples": [
            {"alias": "by-alias", "sex": "male", "study": "ST"},
            {"alias": "by-accession", "sex": "male", "study": study.lower()},
        ],
        "policies": [{"alias": "P", "title": "P", "dac": dac_ega, "permission": "GRU"}],
    }
    assert _submit(db_engine, second).counts() == {"created": 3}


def test_accessions_that_are_wrong_or_elsewhere(db_engine: Engine) -> None:
    _submit(db_engine, {"studies": [{"alias": "ST", "title": "S", "study_type": "Other"}]})
    with session_of(db_engine) as session:
        _submit_as = service.submit_metadata
        bob_study = _submit_as(
            session,
            COUNTRY,
            "bob",
            {"studies": [{"alias": "BOB", "title": "S", "study_type": "Other"}]},
        ).accessions()["study"]["BOB"]
    mistyped = str(Accession(COUNTRY, "study", 1))[:-1] + "0"
    if mistyped == str(Accession(COUNTRY, "study", 1)):
        mistyped = mistyped[:-1] + "1"
    references = [
        mistyped,  # a wrong check character
        str(Accession("FI", "study", 1)),  # another node's
        str(Accession(COUNTRY, "study", 99)),  # nobody's
        bob_study,  # another submitter's study
        str(Accession(COUNTRY, "run", 1)),  # not a study
    ]
    document = {
        "samples": [
            {"alias": f"S{n}", "sex": "female", "study": reference}
            for n, reference in enumerate(references)
        ]
    }
    problems = _validate(db_engine, read_document(document))
    assert [p.row for p in problems] == [1, 2, 3, 4, 5]
    texts = [p.problem for p in problems]
    assert "check character" in texts[0]
    assert "FI node" in texts[1]
    assert texts[2] == "no study with this accession on this node"
    assert texts[3] == "the study belongs to another submitter"
    assert texts[4] == "a run accession, not a study one"


def test_a_policy_may_name_another_submitters_dac_by_accession(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        dac = service.submit_metadata(
            session,
            COUNTRY,
            "dac-office",
            {"dacs": [{"alias": "NODE-DAC", "title": "Node DAC", "contacts": ["d@x.be"]}]},
        ).accessions()["dac"]["NODE-DAC"]
    policy = {"alias": "P", "title": "Open", "dac": dac, "permission": "HMB"}
    assert _submit(db_engine, {"policies": [policy]}).counts() == {"created": 1}
    # by alias, only the submitter's own objects are found
    policy = {"alias": "P2", "title": "Open", "dac": "NODE-DAC", "permission": "HMB"}
    (problem,) = _validate(db_engine, read_document({"policies": [policy]}))
    assert (problem.column, problem.problem) == ("dac", "unknown dac alias")


# -- re-submission ------------------------------------------------------------------------------


def test_resubmitting_updates_drafts_and_keeps_accessions(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
    sheets = cohort(files)
    first = _submit(db_engine, as_document(sheets))

    sheets["samples"][0]["sex"] = "male"
    sheets["samples"][0].pop("population")
    sheets["runs"][0]["files"] = files.reads[0]  # one file less
    again = _submit(db_engine, as_document(sheets))

    assert again.accessions() == first.accessions()
    changed = {(o.kind.value, o.alias) for o in again.objects if o.change == "updated"}
    assert changed == {("sample", "EPI-01"), ("run", "EPI-01-RUN")}
    with session_of(db_engine) as session:
        sample = service.find_object(session, COUNTRY, db.ObjectKind.SAMPLE, "EPI-01")
        assert sample.body["sex"] == "male" and "population" not in sample.body
        dataset = service.find_dataset(session, COUNTRY, "EPI-BE-WGS")
        assert len(service.dataset_files(session, dataset)) == 2 * SAMPLES + 1


def test_a_released_dataset_and_its_runs_come_again_only_unchanged(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
    sheets = cohort(files)
    _submit(db_engine, as_document(sheets))
    with session_of(db_engine) as session:
        service.release_dataset(session, COUNTRY, "EPI-BE-WGS")

    assert _submit(db_engine, as_document(sheets)).counts() == {"unchanged": OBJECTS}

    sheets["samples"][0]["age"] = "P30Y"  # samples may change
    sheets["runs"][0]["files"] = files.reads[0]  # files of a released dataset may not
    sheets["datasets"][0]["title"] = "A new title"
    with pytest.raises(InvalidSubmission) as raised:
        _submit(db_engine, as_document(sheets))
    problems = raised.value.problems
    assert _where(problems) == [("runs", 1, "alias"), ("datasets", 1, "alias")]
    assert "released dataset" in problems[0].problem
    assert problems[1].fix.startswith("deprecate it")


# -- reading problems ---------------------------------------------------------------------------


def test_unreadable_and_misnamed_files_are_problems(tmp_path: Path) -> None:
    (tmp_path / "sampels.tsv").write_text("alias\nx\n")
    (tmp_path / "samples.tsv").write_bytes(b"alias\tsex\n\xff\xfe\tfemale\n")
    (tmp_path / "broken.json").write_text('{"samples": [')
    (tmp_path / "README.md").write_text("ignored in a folder")
    problems = validate_submission(read_paths([tmp_path, tmp_path / "nowhere.tsv"]))
    assert [(p.sheet, p.problem.split(":")[0]) for p in problems] == [
        ("broken.json", "is not valid JSON"),
        ("sampels.tsv", "is not named after a kind of object"),
        ("samples.tsv", "is not UTF-8 text"),
        ("nowhere.tsv", "cannot be read"),
    ]
    assert problems[1].fix.startswith("did you mean samples?")


def test_json_shape_problems() -> None:
    document = {"samples": [{"alias": "S", "sex": "female", "age": 45}, "S2"], "people": []}
    problems = validate_submission(read_document(document, "cohort.json"))
    assert _where(problems) == [
        ("cohort.json:samples", 1, "age"),
        ("cohort.json:samples", 2, None),
        ("cohort.json:people", None, None),
    ]
    assert problems[0].value == "45"
    assert validate_submission(read_json("x.json", "[1, 2]"))[0].problem == "is not a JSON object"


def test_sheet_shape_problems() -> None:
    content = "alias\tsex\tsex\t\nS1\tfemale\tmale\nS2\tfemale\t\textra\n"
    problems = validate_submission(read_sheet("samples.tsv", content))
    assert [(p.row, p.column, p.value, p.problem) for p in problems] == [
        (1, "sex", None, "the column appears twice"),
        (3, None, "extra", "a value in column 4, which has no name in row 1"),
    ]
    assert validate_submission(read_sheet("samples.tsv", ""))[0].problem == "has no header row"


def test_offline_validation_checks_what_the_submission_holds() -> None:
    document = {
        "samples": [{"alias": "S1", "sex": "female", "study": "stored-before"}],
        "experiments": [
            {
                "alias": "X1",
                "sample": "S1",
                "platform": "illumina",
                "instrument": "NovaSeq",
                "library_strategy": "wgs",
                "library_source": "genomic",
                "library_selection": "random",
                "library_layout": "paired",
            },
            {
                "alias": "X2",
                "sample": "S1",
                "platform": "nanopore",
                "instrument": "PromethION",
                "library_strategy": "WES",
                "library_source": "GENOMIC",
                "library_selection": "RANDOM",
                "library_layout": "SINGLE",
            },
        ],
    }
    problems = validate_submission(read_document(document))
    assert [(p.row, p.column, p.fix) for p in problems] == [
        (2, "platform", "did you mean OXFORD_NANOPORE?"),
        (2, "library_strategy", "whole-exome sequencing is WXS"),
    ]


def test_every_kind_documents_its_columns() -> None:
    for kind in db.ObjectKind:
        assert columns(kind)[0] == "alias"
        assert set(required_columns(kind)) <= set(columns(kind))


def test_stored_bodies_hold_no_references(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        files = cohort_files(session)
    _submit(db_engine, as_document(cohort(files)))
    with session_of(db_engine) as session:
        bodies = session.scalars(select(db.MetadataObject.body)).all()
    for body in bodies:
        assert not {"alias", "study", "sample", "files", "runs", "policy", "dac"} & set(body)


def test_checks_between_fields_run_on_rows_with_other_problems() -> None:
    policy = {"alias": "P", "title": "T", "dac": "D", "permission": "DS", "modifiers": "GS;IRB"}
    analysis = {"alias": "A", "title": "T", "study": "S", "analysis_type": "vcf", "files": "x"}
    analysis_ok_type = {**analysis, "alias": "B", "analysis_type": "reference alignment"}
    document = {"policies": [policy], "analyses": [analysis, analysis_ok_type]}
    problems = validate_submission(read_document(document))
    assert [(p.sheet, p.row, p.column) for p in problems if p.column != "files"] == [
        ("policies", 1, "modifiers"),  # GS without its region
        ("policies", 1, "diseases"),  # and, in the same pass, DS without a disease
        ("analyses", 1, "analysis_type"),  # "vcf": the assembly check waits for the type
        ("analyses", 2, "assembly"),
    ]
    assert problems[2].fix == "a VCF is SEQUENCE_VARIATION"


def test_a_submission_takes_its_accessions_in_one_block_per_kind(db_engine: Engine) -> None:
    with session_of(db_engine) as session:
        assert allocate_many(session, COUNTRY, "study", 0) == []
        block = allocate_many(session, "be", "study", 3)  # creates the counter
        assert [a.number for a in block] == [1, 2, 3] and block[0].country == COUNTRY
        assert allocate(session, COUNTRY, "study").number == 4
        assert [a.number for a in allocate_many(session, COUNTRY, "study", 2)] == [5, 6]
    result = _submit(db_engine, {"studies": [{"alias": "S", "title": "T", "study_type": "Other"}]})
    assert result.accessions()["study"]["S"] == str(Accession(COUNTRY, "study", 7))
