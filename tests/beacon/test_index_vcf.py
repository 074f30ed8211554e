"""The VCF/BCF reader alone: random genotype matrices written as VCF come back as the counts
they hold, whichever decoding path a line takes; bad files are refused with the line and the fix;
chromosome, assembly and variant-type rules."""

from __future__ import annotations

import gzip
import io
import random
from pathlib import Path

import numpy as np
import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from index_support import Counts, Record, expected_counts, random_records, vcf_text, write_vcf
from pyroaring import BitMap

from genofed.beacon import vcf
from genofed.beacon.vcf import (
    VariantFileError,
    classify,
    infer_assembly,
    normalize_assembly,
    normalize_chrom,
    read_variants,
)

Key = tuple[str, int, str, str]


def parse(data: bytes, *, numbers: list[int] | None = None, threads: int = 2) -> dict[Key, Counts]:
    with read_variants(io.BytesIO(data), name="test.vcf", threads=threads) as reader:
        mapping = numbers if numbers is not None else list(range(len(reader.header.samples)))
        found = {}
        for batch in reader.alleles(mapping):
            for a in batch.alleles:
                carriers = frozenset(BitMap.deserialize(a.carriers))
                found[(a.chrom, a.start, a.ref, a.alt)] = Counts(a.ac, a.an, a.hom, carriers)
    return found


def bgzf(text: str, tmp_path: Path) -> bytes:
    return write_vcf(tmp_path / "t.vcf.gz", text, index=False).read_bytes()


# -- random matrices: every decoding path gives the counts -------------------------------------


@st.composite
def genotype_records(draw: st.DrawFn) -> tuple[list[str], list[Record]]:
    n = draw(st.integers(1, 9))
    samples = [f"s{i}" for i in range(n)]
    records = []
    pos = 100
    for _ in range(draw(st.integers(1, 12))):
        pos += draw(st.integers(1, 50))
        nalt = draw(st.sampled_from([1, 1, 1, 2, 3, 11]))
        alts = ["G", "T", "C", *(f"A{'C' * i}" for i in range(1, 10))][:nalt]
        allele = st.one_of(st.none(), st.integers(0, nalt))
        haploid_ok = draw(st.booleans())
        genotypes = []
        for _ in range(n):
            ploidy = draw(st.sampled_from([1, 2])) if haploid_ok else 2
            genotypes.append(tuple(draw(allele) for _ in range(ploidy)))
        records.append(
            Record(
                "1",
                pos,
                "A",
                alts,
                genotypes,
                phased=draw(st.booleans()),
                extra_format=draw(st.booleans()),
            )
        )
    return samples, records


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=genotype_records(), batch=st.sampled_from([64, 300, 4 << 20]))
def test_random_matrices_parse_back(data: tuple[list[str], list[Record]], batch: int) -> None:
    samples, records = data
    text = vcf_text(records, samples)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vcf, "BATCH_BYTES", batch)  # many small jobs: lines cut at every place
        assert parse(text.encode()) == expected_counts(records)
        assert parse(gzip.compress(text.encode()), threads=1) == expected_counts(records)


def test_fast_path_mixed_with_other_lines(tmp_path: Path) -> None:
    """Lines of the 4-byte stride (GT only, diploid, one digit) interleaved with lines that
    leave it (missing, haploid, GT:DP, unphased, ten alleles) decode alike."""
    rng = random.Random(5)
    records = random_records(rng, 50, 400, missing=0.02)
    for record in records[::3]:
        record.extra_format = False
        record.genotypes = [
            tuple(a or 0 for a in g) + (0,) * (2 - len(g)) for g in record.genotypes
        ]
    samples = [f"P{i}" for i in range(50)]
    data = bgzf(vcf_text(records, samples), tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vcf, "BATCH_BYTES", 4096)
        patch.setattr(vcf, "READ_SIZE", 1000)  # BGZF blocks split across reads
        assert parse(data) == expected_counts(records)


def test_sample_numbers_map_columns() -> None:
    records = [Record("1", 10, "A", ["G"], [(0, 1), (1, 1), (0, 0)])]
    text = vcf_text(records, ["a", "b", "c"]).encode()
    assert parse(text, numbers=[7, 3, 9])[("1", 9, "A", "G")].carriers == {7, 3}
    assert parse(text, numbers=[100, 101, 102])[("1", 9, "A", "G")].carriers == {100, 101}


def test_alleles_nobody_carries_are_not_indexed() -> None:
    records = [Record("1", 10, "A", ["G", "T"], [(0, 2), (0, 0)])]
    assert set(parse(vcf_text(records, ["a", "b"]).encode())) == {("1", 9, "A", "T")}


def test_sites_only_vcf_takes_counts_from_info() -> None:
    records = [
        Record("1", 10, "A", ["G", "T"], info="AC=3,0;AN=10"),
        Record("1", 20, "C", ["G"], info="."),
    ]
    found = parse(vcf_text(records, []).encode())
    assert found == {
        ("1", 9, "A", "G"): Counts(3, 10, 0, frozenset()),
        ("1", 19, "C", "G"): Counts(0, 0, 0, frozenset()),
    }


def test_spanning_deletions_and_reference_only_sites_are_skipped() -> None:
    records = [
        Record("1", 10, "A", ["*", "G"], [(1, 2), (2, 2)]),
        Record("1", 20, "C", [], [(0, 0), (0, 0)]),
    ]
    found = parse(vcf_text(records, ["a", "b"]).encode())
    assert list(found) == [("1", 9, "A", "G")]
    assert found[("1", 9, "A", "G")] == Counts(3, 4, 1, frozenset({0, 1}))


def test_symbolic_alleles_end_from_info() -> None:
    records = [
        Record("1", 1000, "N", ["<DEL>"], [(0, 1)], info="END=5000;SVLEN=-4000"),
        Record("1", 2000, "A", ["<DUP>"], [(1, 1)], info="SVLEN=300"),
        Record("1", 3000, "G", ["G[2:300["], [(1, 0)]),
    ]
    text = vcf_text(records, ["a"]).encode()
    with read_variants(io.BytesIO(text), name="sv.vcf") as reader:
        alleles = [a for batch in reader.alleles([0]) for a in batch.alleles]
    assert [(a.start, a.end, a.variant_type) for a in alleles] == [
        (999, 5000, "DEL"),
        (1999, 2300, "DUP"),
        (2999, 3000, "BND"),
    ]


def test_bcf_symbolic_ends_follow_htslib(tmp_path: Path) -> None:
    records = [Record("1", 1000, "N", ["<DEL>"], [(0, 1)], info="END=5000")]
    path = write_vcf(tmp_path / "sv.bcf", vcf_text(records, ["a"]), "bcf")
    with read_variants(io.BytesIO(path.read_bytes()), name="sv.bcf") as reader:
        assert reader.header.kind == "bcf"
        alleles = [a for batch in reader.alleles([0]) for a in batch.alleles]
    assert [(a.start, a.end, a.alt) for a in alleles] == [(999, 5000, "<DEL>")]


def test_crlf_line_ends() -> None:
    records = [Record("1", 10, "A", ["G"], [(0, 1), (1, 1)])]
    text = vcf_text(records, ["a", "b"]).replace("\n", "\r\n").encode()
    assert parse(text) == expected_counts(records)


def test_large_batches_use_the_numpy_path_for_many_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 300
    haps = (rng.random((40, 2 * n)) < 0.1).astype(int)
    records = [
        Record(
            "2", 100 + 10 * i, "C", ["T"], [(int(h[2 * j]), int(h[2 * j + 1])) for j in range(n)]
        )
        for i, h in enumerate(haps)
    ]
    data = bgzf(vcf_text(records, [f"x{j}" for j in range(n)]), tmp_path)
    assert parse(data) == expected_counts(records)


# -- bad files: the line, the problem, the fix; nothing read past it ---------------------------


GOOD = vcf_text([Record("1", 10, "A", ["G"], [(0, 1), (1, 1)])], ["a", "b"])
BODY_LINE = GOOD.count("\n")  # the record's line number


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1\tten\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1", f"line {BODY_LINE}: POS b'ten' is not a"),
        ("1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1", f"line {BODY_LINE}: it has 10 tab-separated"),
        ("1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0", f"line {BODY_LINE}: it has 12"),
        ("1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\ta/1", "sample 2 has GT 'a/1', not a genotype"),
        ("1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/2", "names allele 2 but ALT has 1"),
        ("1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/1/1", "ploidy 3"),
        ("1\t10\t.\t7\tG\t.\tPASS\t.\tGT\t0/1\t0/1", "REF b'7' is not a sequence of bases"),
        ("1\t10\t.\tA\tG", f"line {BODY_LINE}: it has 5 tab-separated columns, the header 11"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    text = GOOD.rsplit("\n", 2)[0] + "\n" + line + "\n"
    for data in (text.encode(), bgzf(text, tmp_path)):
        with pytest.raises(VariantFileError, match=message.replace("(", r"\(")):
            parse(data)


def test_a_bad_line_among_many_is_named_by_its_number(tmp_path: Path) -> None:
    records = random_records(random.Random(2), 20, 500, chroms=("1",))
    lines = vcf_text(records, [f"s{i}" for i in range(20)]).split("\n")
    header = sum(1 for line in lines if line.startswith("#"))
    broken = lines[header + 300].split("\t")
    broken[9] = "0|x"
    lines[header + 300] = "\t".join(broken)
    data = bgzf("\n".join(lines), tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vcf, "BATCH_BYTES", 2048)
        with pytest.raises(VariantFileError, match=f"line {header + 301}: sample 1 has GT '0|x'"):
            parse(data)


def test_truncated_and_damaged_bgzf(tmp_path: Path) -> None:
    records = random_records(random.Random(4), 30, 300)
    data = bgzf(vcf_text(records, [f"s{i}" for i in range(30)]), tmp_path)
    with pytest.raises(VariantFileError, match="truncated"):
        parse(data[: len(data) // 2])
    with pytest.raises(VariantFileError, match="no BGZF end-of-file block: it is truncated"):
        parse(data[:-28])  # whole blocks, but no EOF marker
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    with pytest.raises(VariantFileError, match="damaged BGZF block at byte"):
        parse(bytes(damaged))


def test_truncated_gzip_and_bcf(tmp_path: Path) -> None:
    text = vcf_text(random_records(random.Random(6), 10, 200), [f"s{i}" for i in range(10)])
    zipped = gzip.compress(text.encode())
    with pytest.raises(VariantFileError, match="ends inside a gzip member: it is truncated"):
        parse(zipped[: len(zipped) - 100])
    bcf = write_vcf(tmp_path / "t.bcf", text, "bcf").read_bytes()
    with pytest.raises(VariantFileError, match="truncated"):
        parse(bcf[: len(bcf) - 200])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"hello world\n", "is not '##fileformat=VCFv4.x'"),
        (b"##fileformat=VCFv4.2\n##contig=<ID=1>\n1\t10\t.\tA\tG\n", "no '#CHROM' header line"),
        (b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\n", "line 2: the header line must be"),
        (b"##fileformat=VCFv4.2\n" + GOOD.split("\n")[-3].encode() + b"\ta\n", "two columns"),
    ],
)
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(VariantFileError, match=message):
        parse(data)


def test_old_bcf_is_refused() -> None:
    with pytest.raises(VariantFileError, match=r"BCF 2\.1; genofed reads BCF 2\.2"):
        parse(b"BCF\x02\x01" + b"\0" * 20)


# -- names, assemblies, variant types ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("chr1", "1"),
        ("1", "1"),
        ("chrX", "X"),
        ("x", "X"),
        ("chrM", "MT"),
        ("M", "MT"),
        ("MT", "MT"),
        ("NC_000017.11", "17"),
        ("NC_000023.10", "X"),
        ("NC_012920.1", "MT"),
        ("chr7_KI270803v1_alt", "7_KI270803v1_alt"),
        ("GL000192.1", "GL000192.1"),
    ],
)
def test_normalize_chrom(name: str, normalized: str) -> None:
    assert normalize_chrom(name) == normalized


def test_assembly_from_header() -> None:
    assert infer_assembly({"chr1": 248956422}, []) == "GRCh38"
    assert infer_assembly({"1": 249250621, "MT": 16569}, []) == "GRCh37"
    assert infer_assembly({"1": None}, ["##reference=file:///ref/hs37d5.fa"]) == "GRCh37"
    assert infer_assembly({"1": 248956422}, ["##reference=hg19.fa"]) == "GRCh38"  # lengths win
    assert infer_assembly({"1": 12345}, []) is None
    assert normalize_assembly("hg38") == "GRCh38"
    assert normalize_assembly("T2T-CHM13") is None


def test_assembly_from_written_header(tmp_path: Path) -> None:
    text = vcf_text([Record("1", 10, "A", ["G"], [(0, 1)])], ["a"], {"1": 249250621}, prefix="chr")
    path = write_vcf(tmp_path / "t.vcf.gz", text)
    with read_variants(io.BytesIO(path.read_bytes()), name="t") as reader:
        assert reader.header.assembly == "GRCh37"
        assert reader.header.samples == ("a",)
        assert reader.header.contigs == {"chr1": 249250621}


@pytest.mark.parametrize(
    ("ref", "alt", "kind", "end"),
    [
        ("A", "G", "SNP", 11),
        ("AC", "GT", "MNP", 12),
        ("A", "AT", "INS", 11),
        ("AT", "A", "DEL", 12),
        ("AT", "GCC", "INDEL", 12),
        ("A", "<INV>", "INV", 11),
        ("A", "<DUP:TANDEM>", "DUP", 11),
        ("A", "A]1:5]", "BND", 11),
        ("A", ".A", "BND", 11),
    ],
)
def test_classify(ref: str, alt: str, kind: str, end: int) -> None:
    assert classify(ref, alt, 10, None, None) == (kind, end)


def test_bcf_made_by_pysam_reads_like_its_vcf(tmp_path: Path) -> None:
    records = random_records(random.Random(9), 15, 150, prefix="chr")
    text = vcf_text(records, [f"s{i}" for i in range(15)], prefix="chr")
    bcf = write_vcf(tmp_path / "t.bcf", text, "bcf")
    assert pysam.VariantFile(str(bcf)).header.version  # a real BCF
    assert parse(bcf.read_bytes()) == parse(text.encode()) == expected_counts(records)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 65535), max_size=5000))
def test_carrier_bitmaps_serialize_as_pyroaring_does(numbers: set[int]) -> None:
    ordered = np.array(sorted(numbers), dtype="<u2")
    written = vcf._serialized(ordered)
    assert BitMap.deserialize(written) == BitMap(numbers)
    assert written == BitMap(numbers).serialize()
