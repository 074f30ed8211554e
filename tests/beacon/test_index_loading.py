"""Loading a dataset's variant files from the archive: incremental, idempotent, all or nothing;
VCF columns matched to metadata samples; the assembly checked; the CLI command and the sweep."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from index_support import (
    Record,
    archive_file,
    attach,
    expected_counts,
    indexed,
    link,
    load,
    make_node,
    metadata_object,
    random_records,
    released_dataset,
    vcf_text,
    write_vcf,
)
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from genofed import crypt4gh, db
from genofed.beacon import index
from genofed.beacon.index import (
    LOADING,
    VariantIndexError,
    VariantQuery,
    find_alleles,
    index_dataset,
    pending_datasets,
    sample_accessions,
    sample_numbers,
)
from genofed.beacon.vcf import VariantFileError
from genofed.config import Settings
from genofed.db.models import utcnow

SAMPLES = [f"S{number}" for number in range(12)]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_node(tmp_path_factory.mktemp("node"))


@pytest.fixture
def settings(node: Settings, db_engine: Engine) -> Settings:
    """The module's node (keys, archive) on this test's database."""
    return node.model_copy(
        update={"database_url": db_engine.url.render_as_string(hide_password=False)}
    )


def vcf_bytes(
    tmp_path: Path,
    seed: int,
    samples: list[str],
    kind: str = "bgzf",
    chroms: tuple[str, ...] = ("1", "2", "X"),
) -> tuple[bytes, list[Record]]:
    records = random_records(random.Random(seed), len(samples), 60, chroms=chroms)
    path = write_vcf(tmp_path / f"f{seed}.{kind}", vcf_text(records, samples), kind, index=False)
    return path.read_bytes(), records


def counts(engine: Engine, table: type) -> int:
    with db.session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


# -- a dataset from the archive ----------------------------------------------------------------


def test_index_dataset_from_the_archive(
    settings: Settings, db_engine: Engine, tmp_path: Path
) -> None:
    analysis_vcf, analysis_records = vcf_bytes(tmp_path, 1, SAMPLES, chroms=("1", "2"))
    own_bcf, _ = vcf_bytes(tmp_path, 2, ["S0", "S1", "NEW"], "bcf", chroms=("X",))
    with db.session_scope(db_engine) as session:
        samples = [
            metadata_object(session, settings, db.ObjectKind.SAMPLE, f"S{n}", sex="female")
            for n in range(11)
        ]
        by_subject = metadata_object(
            session, settings, db.ObjectKind.SAMPLE, "blood-11", sex="male", subject_id="S11"
        )
        analysis = metadata_object(
            session, settings, db.ObjectKind.ANALYSIS, "calls", assembly="GRCh38", title="Calls"
        )
        for sample in [*samples, by_subject]:
            link(session, analysis, sample, "samples")
        dataset = released_dataset(session, settings)
        link(session, dataset, analysis, "analyses")
        attach(session, analysis, archive_file(session, settings, analysis_vcf, "calls.vcf.gz"))
        attach(session, analysis, archive_file(session, settings, b"index", "calls.vcf.gz.tbi"))
        attach(session, dataset, archive_file(session, settings, own_bcf, "extra.bcf"))
        attach(session, dataset, archive_file(session, settings, b"reads", "reads.bam"))
        accession = str(dataset.accession)
        wanted = {f"S{n}": str(s.accession) for n, s in enumerate(samples)}
        wanted["S11"] = str(by_subject.accession)
        assert pending_datasets(session) == [accession]

    seen: list[tuple[str, int, int]] = []
    report = index_dataset(db_engine, settings, "cohort", progress=lambda *at: seen.append(at))
    assert [f.skipped for f in report.files] == [None, None]
    assert report.files[0].file.endswith("(calls.vcf.gz)")
    assert report.samples == 13  # 12 in the VCF, then NEW from the BCF (S0, S1 are the same)
    assert seen and seen[-1][1] == seen[-1][2]  # progress reached the file's size
    with db.session_scope(db_engine) as session:
        assert sample_accessions(session, accession, range(13)) == [
            *(wanted[name] for name in SAMPLES),
            None,
        ]
        assert set(sample_numbers(session, accession, [wanted["S11"], wanted["S3"]])) == {11, 3}
        assert pending_datasets(session) == []
    found = indexed(db_engine, accession)
    assert {key: found[key] for key in found if key[0] != "X"} == expected_counts(analysis_records)
    assert {key[0] for key in found} == {"1", "2", "X"}

    again = index_dataset(db_engine, settings, accession)
    assert [f.skipped for f in again.files] == ["already indexed", "already indexed"]


def test_merged_across_files_with_shared_samples(
    settings: Settings, db_engine: Engine, tmp_path: Path
) -> None:
    """Two files of one cohort (same VCF names): one numbering; an allele in both is summed."""
    header = vcf_text([], SAMPLES)
    line = "1\t500\t.\tA\tG\t.\tPASS\t.\tGT\t" + "\t".join(["0|1", "0|0"] * 6)
    first = write_vcf(tmp_path / "a.vcf.gz", header + line + "\n", index=False)
    other = "1\t500\t.\tA\tG\t.\tPASS\t.\tGT\t" + "\t".join(["0|0", "1|1"] * 6)
    second_text = vcf_text([], [*SAMPLES[6:], "T0"]).rstrip("\n") + "\n"
    second_line = other.split("\t")[:9] + ["1|1"] * 6 + ["0|1"]
    second = write_vcf(
        tmp_path / "b.vcf.gz", second_text + "\t".join(second_line) + "\n", index=False
    )
    load(db_engine, first)
    load(db_engine, second)
    with db.session_scope(db_engine) as session:
        (allele,) = find_alleles(
            session, ["EGAD00000000001"], VariantQuery(chrom="1", start=499, alternate_bases="G")
        )
    assert allele.ac == 6 + 13 and allele.an == 24 + 14 and allele.hom == 6
    assert set(allele.carriers) == {0, 2, 4, 6, 8, 10, 7, 9, 11, 12}


# -- incremental, idempotent, all or nothing ----------------------------------------------------


def test_a_second_file_adds_without_touching_the_first(db_engine: Engine, tmp_path: Path) -> None:
    first, first_records = vcf_bytes(tmp_path, 3, SAMPLES, chroms=("1",))
    second, second_records = vcf_bytes(tmp_path, 4, ["X1", "X2", *SAMPLES[:2]], chroms=("2",))
    (tmp_path / "one.vcf.gz").write_bytes(first)
    (tmp_path / "two.vcf.gz").write_bytes(second)
    load(db_engine, tmp_path / "one.vcf.gz")
    with db.session_scope(db_engine) as session:
        before = session.execute(select(db.BeaconAllele.__table__)).all()
        samples_before = session.execute(select(db.BeaconSample.__table__)).all()
    report = load(db_engine, tmp_path / "two.vcf.gz")
    assert report.samples == 2
    with db.session_scope(db_engine) as session:
        rows = session.execute(select(db.BeaconAllele.__table__)).all()
        samples_after = session.execute(select(db.BeaconSample.__table__)).all()
    assert [row for row in rows if row.file_id == "one.vcf.gz"] == before
    assert samples_after[: len(samples_before)] == samples_before
    assert [(s.number, s.vcf_name) for s in samples_after[len(samples_before) :]] == [
        (12, "X1"),
        (13, "X2"),
    ]
    found = indexed(db_engine)
    numbering = [12, 13, 0, 1]  # X1, X2 new; S0, S1 keep their numbers
    for key, expected in expected_counts(second_records).items():
        assert found[key].carriers == {numbering[c] for c in expected.carriers}
    assert all(found[key] == value for key, value in expected_counts(first_records).items())


def test_loading_the_same_file_twice_is_a_no_op(db_engine: Engine, tmp_path: Path) -> None:
    data, _ = vcf_bytes(tmp_path, 5, SAMPLES)
    (tmp_path / "one.vcf.gz").write_bytes(data)
    first = load(db_engine, tmp_path / "one.vcf.gz")
    alleles = counts(db_engine, db.BeaconAllele)
    assert load(db_engine, tmp_path / "one.vcf.gz").skipped == "already indexed"
    assert counts(db_engine, db.BeaconAllele) == alleles == first.alleles
    assert counts(db_engine, db.BeaconSample) == len(SAMPLES)


def test_a_failed_load_leaves_nothing(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = random_records(random.Random(8), 12, 400, chroms=("1",))
    lines = vcf_text(records, SAMPLES).split("\n")
    lines[-30] = lines[-30].replace("\t", " ", 1)  # a broken line near the end
    path = write_vcf(tmp_path / "bad.vcf.gz", "\n".join(lines), index=False)
    monkeypatch.setattr(index, "COMMIT_ALLELES", 10)  # much is committed before the bad line
    monkeypatch.setattr("genofed.beacon.vcf.BATCH_BYTES", 2000)
    with pytest.raises(VariantFileError, match=f"bad.vcf.gz, line {len(lines) - 29}: POS"):
        load(db_engine, path)
    for table in (db.BeaconAllele, db.BeaconSample, db.BeaconSource):
        assert counts(db_engine, table) == 0


def test_a_dead_load_is_cleaned_up_and_a_live_one_left_alone(
    db_engine: Engine, tmp_path: Path
) -> None:
    data, records = vcf_bytes(tmp_path, 9, SAMPLES)
    (tmp_path / "one.vcf.gz").write_bytes(data)
    dataset = "EGAD00000000001"
    with db.session_scope(db_engine) as session:
        session.add(
            db.BeaconSource(
                dataset_accession=dataset, file_id="one.vcf.gz", assembly="GRCh38",
                records=LOADING, loaded_at=utcnow(),
            )
        )  # fmt: skip
        session.add(
            db.BeaconAllele(
                dataset_accession=dataset, file_id="one.vcf.gz", assembly="GRCh38", chrom="1",
                start=5, end=6, ref="A", alt="T", variant_type="SNP", ac=1, an=2, hom=0,
                carriers=b"",
            )
        )  # fmt: skip
    assert load(db_engine, tmp_path / "one.vcf.gz").skipped == "being indexed by another process"
    with db.session_scope(db_engine) as session:
        assert find_alleles(session, [dataset], VariantQuery(chrom="1")) == []  # not finished
        source = session.get(db.BeaconSource, (dataset, "one.vcf.gz"))
        assert source is not None
        source.loaded_at = utcnow() - index.LEASE * 2  # its heartbeat stopped
        assert pending_datasets(session) == []  # (no released dataset in this database)
    report = load(db_engine, tmp_path / "one.vcf.gz")
    assert report.skipped is None
    assert indexed(db_engine) == expected_counts(records)


def test_assembly_must_agree_and_be_known(db_engine: Engine, tmp_path: Path) -> None:
    data, _ = vcf_bytes(tmp_path, 10, SAMPLES)
    (tmp_path / "one.vcf.gz").write_bytes(data)
    with pytest.raises(VariantIndexError, match="analysis says GRCh37 but the header's contigs"):
        load(db_engine, tmp_path / "one.vcf.gz", assembly="GRCh37")
    header = vcf_text([], ["a"], {"1": 1000}).encode()
    (tmp_path / "unknown.vcf").write_bytes(header)
    with pytest.raises(VariantIndexError, match="does not tell the assembly"):
        load(db_engine, tmp_path / "unknown.vcf", assembly=None)
    assert load(db_engine, tmp_path / "unknown.vcf", assembly="hg19").skipped is None
    assert counts(db_engine, db.BeaconSource) == 1


def test_a_draft_dataset_is_refused(settings: Settings, db_engine: Engine) -> None:
    with db.session_scope(db_engine) as session:
        draft = metadata_object(session, settings, db.ObjectKind.DATASET, "draft", title="D")
        draft.status = db.ObjectStatus.DRAFT
    with pytest.raises(VariantIndexError, match="is draft: Beacon indexes released datasets"):
        index_dataset(db_engine, settings, "draft")


def test_an_edit_list_is_followed(settings: Settings, db_engine: Engine, tmp_path: Path) -> None:
    data, records = vcf_bytes(tmp_path, 12, SAMPLES, "plain")
    junk = b"J" * 70_000
    with db.session_scope(db_engine) as session:
        file = archive_file(session, settings, junk + data + junk, "edited.vcf")
        secret = _node_secret(settings)
        public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
        assert file.header is not None
        file.header = crypt4gh.reencrypt_header(
            file.header, secret, [public], edit_list=[len(junk), len(data)]
        )
        file.inbox_path = "alice/edited.vcf.bgz.c4gh"
        dataset = released_dataset(session, settings, "edited")
        attach(session, dataset, file)
        accession = str(dataset.accession)
    report = index_dataset(db_engine, settings, accession, node_keys=[secret])
    assert report.records == 60
    assert indexed(db_engine, accession) == expected_counts(records)


def _node_secret(settings: Settings) -> bytes:
    from genofed.node.directory import node_secret_key

    return node_secret_key(settings)


# -- the command -------------------------------------------------------------------------------


def test_cli_index_and_genes(
    settings: Settings, db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genofed.cli.beacon import app

    data, _ = vcf_bytes(tmp_path, 13, SAMPLES)
    with db.session_scope(db_engine) as session:
        dataset = released_dataset(session, settings, "cli")
        attach(session, dataset, archive_file(session, settings, data, "cli.vcf.gz"))
        accession = str(dataset.accession)
    monkeypatch.setenv("GENOFED_DATABASE_URL", settings.database_url)
    config = str(settings.home / "genofed.toml")
    runner = CliRunner()
    result = runner.invoke(app, ["index", accession, "--config", config])
    assert result.exit_code == 0, result.output
    assert f"dataset {accession}: 1 of 1 files loaded, 60 records" in result.output
    result = runner.invoke(app, ["index", "nope", "--config", config])
    assert result.exit_code == 1
    assert "no dataset with accession or alias 'nope'" in result.output
    gff = tmp_path / "genes.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "chr13\tensembl\tgene\t32315508\t32400268\t.\t+\t.\tID=gene:ENSG00000139618;"
        "Name=BRCA2;gene_id=ENSG00000139618\n"
    )
    result = runner.invoke(app, ["genes", str(gff), "--assembly", "GRCh38", "--config", config])
    assert result.exit_code == 0, result.output
    assert "1 genes loaded for GRCh38" in result.output


@pytest.fixture(autouse=True)
def _no_spans_between_tests() -> Iterator[None]:
    index._SPANS.clear()
    yield
    index._SPANS.clear()
