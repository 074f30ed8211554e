"""The index's answers equal bcftools' on the same generated files: AC, AN, homozygotes and
carriers per allele, for VCF (bgzipped, gzipped, plain) and BCF, with multi-allelic records,
missing and haploid calls, indels, extra FORMAT fields, 'chr' and plain chromosome names."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from index_support import (
    bcftools_counts,
    expected_counts,
    indexed,
    load,
    random_records,
    vcf_text,
    write_vcf,
)
from sqlalchemy import Engine

SAMPLES = [f"S{number:03d}" for number in range(37)]


@pytest.mark.parametrize("prefix", ["", "chr"])
def test_counts_equal_bcftools(db_engine: Engine, tmp_path: Path, prefix: str) -> None:
    records = random_records(random.Random(7), len(SAMPLES), 300, prefix=prefix)
    path = write_vcf(tmp_path / "cohort.vcf.gz", vcf_text(records, SAMPLES, prefix=prefix))
    report = load(db_engine, path)
    assert report.records == 300
    assert report.samples == len(SAMPLES)
    reference = bcftools_counts(path, SAMPLES)
    assert reference == expected_counts(records)  # the helper and bcftools agree
    assert indexed(db_engine) == reference
    assert report.alleles == len(reference)


@pytest.mark.parametrize("kind", ["bcf", "gzip", "plain"])
def test_every_format_gives_the_same_index(db_engine: Engine, tmp_path: Path, kind: str) -> None:
    records = random_records(random.Random(11), len(SAMPLES), 120, prefix="chr")
    text = vcf_text(records, SAMPLES, prefix="chr")
    path = write_vcf(tmp_path / f"cohort.{kind}", text, kind)
    load(db_engine, path)
    assert indexed(db_engine) == expected_counts(records)


def test_one_thread_reads_the_same(db_engine: Engine, tmp_path: Path) -> None:
    records = random_records(random.Random(3), len(SAMPLES), 80)
    path = write_vcf(tmp_path / "cohort.vcf.gz", vcf_text(records, SAMPLES))
    load(db_engine, path, threads=1)
    assert indexed(db_engine) == expected_counts(records)
