"""Query semantics of the variant index: sequence, range (with deletions that start before the
range), bracket, N wildcards, variant types, lengths, assemblies, ids; genes."""

from __future__ import annotations

from pathlib import Path

import pytest
from index_support import GRCH37_CONTIGS, Record, load, vcf_text, write_vcf
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from genofed import db
from genofed.beacon import index
from genofed.beacon.index import (
    Allele,
    InvalidVariantQuery,
    VariantQuery,
    allele_by_id,
    find_alleles,
    gene_region,
    load_genes,
)

D38, D37 = "EGAD00000000038", "EGAD00000000037"
SAMPLES = ["a", "b", "c"]
RECORDS = [
    Record("1", 100, "A", ["G", "T"], [(0, 1), (2, 2), (1, 0)]),
    Record("1", 200, "ACGT", ["A"], [(0, 1), (0, 0), (0, 0)]),
    Record("1", 300, "A", ["ATT"], [(1, 1), (0, 0), (0, 0)]),
    Record("1", 1000, "N", ["<DEL>"], [(0, 1), (0, 0), (0, 0)], info="END=50000"),
    Record("1", 60000, "C", ["T"], [(0, 0), (0, 1), (0, 0)]),
    Record("1", 60010, "CG", ["TA"], [(0, 0), (0, 0), (1, 1)]),
    Record("2", 100, "G", ["C"], [(0, 1), (0, 0), (0, 0)]),
]


@pytest.fixture
def session(db_engine: Engine, tmp_path: Path) -> Session:
    index._SPANS.clear()
    path38 = write_vcf(tmp_path / "d38.vcf.gz", vcf_text(RECORDS, SAMPLES, prefix="chr"))
    load(db_engine, path38, dataset=D38)
    path37 = write_vcf(tmp_path / "d37.vcf.gz", vcf_text(RECORDS[:1], SAMPLES, GRCH37_CONTIGS))
    load(db_engine, path37, dataset=D37, assembly="GRCh37")
    made = db.session_factory(db_engine)()
    yield made  # type: ignore[misc]
    made.close()


def find(session: Session, **query: object) -> list[tuple[str, int, str, str]]:
    found = find_alleles(session, [D38, D37], VariantQuery(**query))  # type: ignore[arg-type]
    return [(a.dataset[-2:], a.start, a.ref, a.alt) for a in found]


def test_sequence_queries(session: Session) -> None:
    assert find(session, chrom="1", start=99, alternate_bases="G") == [
        ("37", 99, "A", "G"),  # by position, REF, ALT, then dataset
        ("38", 99, "A", "G"),
    ]
    assert find(session, assembly="GRCh38", chrom="chr1", start=99, alternate_bases="N") == [
        ("38", 99, "A", "G"),
        ("38", 99, "A", "T"),
    ]
    assert find(session, assembly="hg38", chrom="1", start=99, reference_bases="A") == [
        ("38", 99, "A", "G"),
        ("38", 99, "A", "T"),
    ]
    assert find(session, chrom="1", start=99, reference_bases="C", alternate_bases="G") == []
    assert find(session, chrom="1", start=100, alternate_bases="G") == []
    assert find(session, chrom="NC_000001.11", start=299, alternate_bases="ANN") == [
        ("38", 299, "A", "ATT")
    ]
    assert find(session, chrom="1", start=299, alternate_bases="AN") == []  # N is one base


def test_counts_and_carriers(session: Session) -> None:
    (g,) = find_alleles(session, [D38], VariantQuery(chrom="1", start=99, alternate_bases="G"))
    assert (g.ac, g.an, g.hom, set(g.carriers), g.af) == (2, 6, 0, {0, 2}, pytest.approx(1 / 3))
    (t,) = find_alleles(session, [D38], VariantQuery(chrom="1", start=99, alternate_bases="T"))
    assert (t.ac, t.hom, set(t.carriers)) == (2, 1, {1})


def test_range_queries_overlap_half_open(session: Session) -> None:
    assert find(session, assembly="GRCh38", chrom="1", start=150, end=201) == [
        ("38", 199, "ACGT", "A")
    ]
    assert find(session, assembly="GRCh38", chrom="1", start=203, end=299) == []  # DEL ends at 203
    assert find(session, assembly="GRCh38", chrom="1", start=202, end=299) == [
        ("38", 199, "ACGT", "A")
    ]
    assert find(session, assembly="GRCh38", chrom="1", start=299, end=300) == [
        ("38", 299, "A", "ATT")
    ]


def test_a_long_deletion_reaches_into_a_range(session: Session) -> None:
    """The <DEL> starts 39 kb before the range but covers it."""
    assert find(session, chrom="1", start=40_000, end=40_001) == [("38", 999, "N", "<DEL>")]
    assert find(session, chrom="1", start=49_999, end=59_999) == [("38", 999, "N", "<DEL>")]
    assert find(session, chrom="1", start=50_000, end=59_999) == []
    assert find(session, chrom="2", start=0, end=10_000) == [("38", 99, "G", "C")]


def test_bracket_queries(session: Session) -> None:
    deletion = [("38", 999, "N", "<DEL>")]
    query = {"chrom": "1", "start": 990, "start_max": 1000, "end_min": 49_000, "end": 50_000}
    assert find(session, **query) == deletion
    assert find(session, **{**query, "end_min": 50_001, "end": 60_000}) == []
    assert find(session, **{**query, "start": 1000}) == []
    assert find(
        session, assembly="GRCh38", chrom="1", start=0, start_max=150, end_min=0, end=101
    ) == [
        ("38", 99, "A", "G"),
        ("38", 99, "A", "T"),
    ]


def test_variant_types_and_lengths(session: Session) -> None:
    def kinds(**query: object) -> list[str]:
        found = find_alleles(session, [D38], VariantQuery(chrom="1", **query))  # type: ignore[arg-type]
        return [a.variant_type for a in found]

    assert kinds(variant_type="DEL") == ["DEL", "DEL"]
    assert kinds(variant_type="INDEL") == ["DEL", "INS", "DEL"]
    assert kinds(variant_type="snv") == ["SNP", "SNP", "SNP"]
    assert kinds(variant_type="MNP") == ["MNP"]
    assert kinds(variant_type="CNV") == ["DEL", "DEL"]
    assert kinds(min_length=10) == ["DEL"]
    assert kinds(min_length=3, max_length=4) == ["DEL", "INS"]
    assert kinds(max_length=1, start=0, end=70_000) == ["SNP", "SNP", "SNP"]
    (deletion,) = find_alleles(session, [D38], VariantQuery(chrom="1", min_length=10))
    assert deletion.length == 49_001 and deletion.end == 50_000


def test_assemblies(session: Session) -> None:
    assert find(session, assembly="GRCh37", chrom="1", start=99, alternate_bases="G") == [
        ("37", 99, "A", "G")
    ]
    assert find(session, assembly="b37", chrom="2", start=0, end=1000) == []
    with pytest.raises(InvalidVariantQuery, match="neither GRCh37 nor GRCh38"):
        find(session, assembly="T2T-CHM13", chrom="1", start=99)


def test_limit_and_order(session: Session) -> None:
    everything = find(session, chrom="1")
    assert [start for _, start, _, _ in everything] == sorted(s for _, s, _, _ in everything)
    assert find(session, chrom="1", start=0, end=70_000)[:3] == find_limited(session, 3)
    assert find_limited(session, 0) == []


def find_limited(session: Session, limit: int) -> list[tuple[str, int, str, str]]:
    found = find_alleles(
        session, [D38, D37], VariantQuery(chrom="1", start=0, end=70_000), limit=limit
    )
    return [(a.dataset[-2:], a.start, a.ref, a.alt) for a in found]


def test_unknown_datasets_and_bad_queries(session: Session) -> None:
    assert find_alleles(session, ["EGAD99"], VariantQuery(chrom="1")) == []
    assert find_alleles(session, [], VariantQuery(chrom="1")) == []
    with pytest.raises(InvalidVariantQuery, match="needs a chromosome"):
        find(session, start=5)
    with pytest.raises(InvalidVariantQuery, match="before the start"):
        find(session, chrom="1", start=10, end=5)
    with pytest.raises(InvalidVariantQuery, match="needs a start"):
        find(session, chrom="1", end=5)


def test_variant_ids(session: Session) -> None:
    (deletion,) = find_alleles(session, [D38], VariantQuery(chrom="1", min_length=10))
    assert deletion.variant_id == "GRCh38:1:999:N:<DEL>:50000"
    assert allele_by_id(session, [D38, D37], deletion.variant_id) == [deletion]
    (snp,) = find_alleles(session, [D37], VariantQuery(chrom="1", start=99, alternate_bases="G"))
    assert snp.variant_id == "GRCh37:1:99:A:G"
    assert [a.dataset for a in allele_by_id(session, [D38, D37], "GRCh37:1:99:A:G")] == [D37]
    assert allele_by_id(session, [D38], "GRCh38:1:999:N:<DEL>:40000") == []
    assert allele_by_id(session, [D38], "nonsense") == []


def test_an_allele_is_a_value() -> None:
    from pyroaring import BitMap

    allele = Allele("D", "GRCh38", "X", 5, 6, "A", "G", "SNP", 0, 0, 0, BitMap())
    assert allele.af == 0.0 and allele.length == 1
    assert allele.variant_id == "GRCh38:X:5:A:G"


# -- genes -------------------------------------------------------------------------------------

GTF = (
    '13\tHAVANA\tgene\t32315508\t32400268\t.\t+\t.\tgene_id "ENSG00000139618.19"; '
    'gene_name "BRCA2"; gene_type "protein_coding";\n'
    '13\tHAVANA\ttranscript\t32315508\t32400268\t.\t+\t.\tgene_id "ENSG00000139618.19";\n'
    'chrX\tHAVANA\tgene\t100\t200\t.\t+\t.\tgene_id "ENSG00000000001.1"; gene_name "PAR1";\n'
)
GFF3 = (
    "##gff-version 3\n"
    "13\tensembl\tgene\t32889611\t32973805\t.\t+\t.\tID=gene:ENSG00000139618;Name=BRCA2;"
    "gene_id=ENSG00000139618\n"
    "13\tensembl\tncRNA_gene\t100\t200\t.\t+\t.\tID=gene:ENSG00000200001;Name=RNU6-1\n"
)


def test_genes(db_engine: Engine, tmp_path: Path) -> None:
    import gzip

    (tmp_path / "g.gtf.gz").write_bytes(gzip.compress(GTF.encode()))
    (tmp_path / "g.gff3").write_text(GFF3)
    with db.session_scope(db_engine) as session:
        assert load_genes(session, "GRCh38", tmp_path / "g.gtf.gz") == 2
        assert load_genes(session, "hg19", tmp_path / "g.gff3") == 2
    with db.session_scope(db_engine) as session:
        assert gene_region(session, "GRCh38", "BRCA2") == ("13", 32315507, 32400268)
        assert gene_region(session, None, "BRCA2") == ("13", 32315507, 32400268)  # 38 first
        assert gene_region(session, "GRCh37", "BRCA2") == ("13", 32889610, 32973805)
        assert gene_region(session, "GRCh38", "ENSG00000139618") == ("13", 32315507, 32400268)
        assert gene_region(session, "GRCh38", "ENSG00000139618.19") == ("13", 32315507, 32400268)
        assert gene_region(session, None, "RNU6-1") == ("13", 99, 200)
        assert gene_region(session, None, "PAR1") == ("X", 99, 200)
        assert gene_region(session, None, "NOPE") is None
    with db.session_scope(db_engine) as session:
        assert load_genes(session, "GRCh38", tmp_path / "g.gff3") == 2  # replaces the GTF's
        assert gene_region(session, "GRCh38", "PAR1") is None


def test_bad_annotation(db_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "bad.gtf").write_text("13\tgene\t1\t2\n")
    with (
        db.session_scope(db_engine) as session,
        pytest.raises(index.VariantIndexError, match="line 1"),
    ):
        load_genes(session, "GRCh38", tmp_path / "bad.gtf")


def test_collection_is_paused_only_while_alleles_are_built(session: Session) -> None:
    import gc

    assert gc.isenabled()
    find(session, chrom="1", start=0, end=70_000)
    assert gc.isenabled()
    gc.disable()
    try:
        find(session, chrom="1", start=0, end=70_000)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
