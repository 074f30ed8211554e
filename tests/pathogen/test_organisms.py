"""The shipped organisms load with the right reference and genes; bad files fail clearly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from genofed.pathogen.organisms import (
    OrganismError,
    builtin_organisms,
    load_organism,
    organism_from_files,
)


def test_builtin_names() -> None:
    assert set(builtin_organisms()) == {"sars-cov-2", "flu-h3n2-ha"}


def test_sars_cov_2_reference_and_genes() -> None:
    organism = load_organism("sars-cov-2")
    assert organism.reference_id == "MN908947"
    assert len(organism.reference) == 29_903
    assert organism.reference.startswith("ATTAAAGGTTTATACC")
    genes = organism.genes
    assert (genes["S"].start, genes["S"].end) == (21_563, 25_384)
    assert (genes["ORF1a"].start, genes["ORF1a"].end) == (266, 13_468)
    assert (genes["ORF1b"].start, genes["ORF1b"].end) == (13_468, 21_555)
    assert (genes["N"].start, genes["N"].end) == (28_274, 29_533)
    # S starts with ATG (Met) and ends with a stop codon: the coordinates are right.
    spike = organism.reference[genes["S"].start - 1 : genes["S"].end]
    assert spike.startswith("ATG") and spike[-3:] in {"TAA", "TAG", "TGA"}
    assert all(feature.length % 3 == 0 for feature in organism.coding)
    assert organism.schema.earliest_date == date(2019, 11, 1)
    assert "collection_date" in organism.schema.required


def test_flu_reference_and_genes() -> None:
    organism = load_organism("flu-h3n2-ha")
    assert organism.reference_id == "CY163680.1"
    assert len(organism.reference) == 1_737
    assert [f.name for f in organism.features] == ["SigPep", "HA1", "HA2"]
    assert (organism.genes["HA1"].start, organism.genes["HA1"].end) == (66, 1_052)
    assert organism.reference[17:20] == "ATG"  # SigPep starts at 18 with Met


def test_unknown_organism() -> None:
    with pytest.raises(OrganismError, match="no organism named 'ebola'"):
        load_organism("ebola")


def _files(tmp_path: Path, fasta: str, gff3: str) -> tuple[Path, Path]:
    (tmp_path / "ref.fasta").write_text(fasta)
    (tmp_path / "ref.gff3").write_text(gff3)
    return tmp_path / "ref.fasta", tmp_path / "ref.gff3"


GOOD_FASTA = ">ref1 my virus\nATGAAATAG\nCC\n"
GOOD_GFF = "##gff-version 3\nref1\tx\tCDS\t1\t9\t.\t+\t0\tID=g1;Name=G1\n"


def test_operator_organism(tmp_path: Path) -> None:
    organism = organism_from_files(
        "toy", *_files(tmp_path, GOOD_FASTA, GOOD_GFF), earliest_date=date(2000, 1, 1)
    )
    assert organism.reference == "ATGAAATAGCC"
    assert organism.genes["G1"].length == 9


def test_split_cds_is_one_feature(tmp_path: Path) -> None:
    gff = "ref1\tx\tCDS\t1\t4\t.\t+\t0\tID=ab;Name=AB\nref1\tx\tCDS\t4\t8\t.\t+\t0\tID=ab;Name=AB\n"
    organism = organism_from_files(
        "toy", *_files(tmp_path, GOOD_FASTA, gff), earliest_date=date(2000, 1, 1)
    )
    assert organism.genes["AB"].parts == ((1, 4), (4, 8))
    assert organism.genes["AB"].length == 9


@pytest.mark.parametrize(
    ("fasta", "gff3", "message"),
    [
        (">a\nACGT\n>b\nACGT\n", GOOD_GFF, "holds 2 sequences"),
        (">ref1\nACGTXX\n", GOOD_GFF, "non-IUPAC character 'X'"),
        (">ref1\n\n", GOOD_GFF, "empty sequence"),
        (GOOD_FASTA, "ref1\tx\tCDS\t1\t12\t.\t+\t0\tName=G1\n", r"1..12 is not within .*1..11"),
        (GOOD_FASTA, "ref1\tx\tCDS\t5\t3\t.\t+\t0\tName=G1\n", "not within"),
        (GOOD_FASTA, "ref1\tx\tCDS\t1\t8\t.\t+\t0\tName=G1\n", "8 nt long, not a multiple of 3"),
        (GOOD_FASTA, "other\tx\tCDS\t1\t9\t.\t+\t0\tName=G1\n", "annotates sequence 'other'"),
        (GOOD_FASTA, "ref1\tx\tCDS\t1\t9\n", "has 5 tab-separated columns"),
        (GOOD_FASTA, "ref1\tx\tCDS\ta\t9\t.\t+\t0\tName=G1\n", "whole numbers"),
        (GOOD_FASTA, "ref1\tx\tCDS\t1\t9\t.\t+\t0\tcolour=red\n", "has no name"),
        (GOOD_FASTA, "##gff-version 3\n", "annotates no gene or CDS"),
    ],
)
def test_bad_operator_files(tmp_path: Path, fasta: str, gff3: str, message: str) -> None:
    with pytest.raises(OrganismError, match=message):
        organism_from_files("toy", *_files(tmp_path, fasta, gff3), earliest_date=date(2000, 1, 1))
