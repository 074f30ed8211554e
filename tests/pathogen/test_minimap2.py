"""Correctness against independent aligners: our substitutions and indels equal those Debian's
minimap2 (``-c --cs``) finds, indels of both moved to their leftmost equivalent place, on the 48
real H3N2 HA sequences and on generated SARS-CoV-2 genomes; and those mafft finds on real HA
sequences with planted indels. Each test skips when its aligner is absent."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from genome_support import (
    MAFFT,
    MINIMAP2,
    SHARED,
    Minimap2Hit,
    analysis_calls,
    mafft,
    minimap2,
    normalised,
    random_genome,
)

from genofed.pathogen.analysis import Analysis, analyse
from genofed.pathogen.fasta import iter_fasta
from genofed.pathogen.organisms import Organism, load_organism

needs_minimap2 = pytest.mark.skipif(MINIMAP2 is None, reason="minimap2 is not installed")


def _compare(organism: Organism, ours: Analysis, theirs: Minimap2Hit) -> None:
    # Within the range both aligned; ends may be clipped differently.
    bounds = (
        max(ours.alignment_start, theirs.start) + 1,
        min(ours.alignment_end, theirs.end) - 1,
    )
    reference = organism.reference
    mine = normalised(reference, *analysis_calls(ours), bounds)
    other = normalised(reference, theirs.substitutions, theirs.deletions, theirs.insertions, bounds)
    assert mine == other


@needs_minimap2
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")
def test_real_h3n2_ha_sequences_agree_with_minimap2() -> None:
    organism = load_organism("flu-h3n2-ha")
    folder = SHARED / "flu-h3n2-ha"
    with (folder / "sequences.fasta").open("rb") as stream:
        records = list(iter_fasta(stream, "sequences.fasta", []))
    assert len(records) == 48
    hits = minimap2(folder / "reference.fasta", folder / "sequences.fasta")
    assert len(hits) == 48
    for record in records:
        _compare(organism, analyse(organism, record.sequence), hits[record.id])


@needs_minimap2
def test_generated_sars_cov_2_genomes_agree_with_minimap2(tmp_path: Path) -> None:
    organism = load_organism("sars-cov-2")
    rng = random.Random(7)
    genomes = {f"g{i}": random_genome(organism.reference, rng) for i in range(40)}
    reference = tmp_path / "reference.fasta"
    reference.write_text(f">ref\n{organism.reference}\n")
    queries = tmp_path / "genomes.fasta"
    queries.write_text("".join(f">{name}\n{seq}\n" for name, seq in genomes.items()))
    hits = minimap2(reference, queries)
    assert set(hits) == set(genomes)
    for name, sequence in genomes.items():
        _compare(organism, analyse(organism, sequence), hits[name])


@pytest.mark.skipif(MAFFT is None, reason="mafft is not installed")
@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")
def test_h3n2_ha_with_planted_indels_agree_with_mafft(tmp_path: Path) -> None:
    # Real, divergent HA sequences (~7% from the reference) with indels planted in them: the
    # indels must be found amid many substitutions, where mafft finds them.
    organism = load_organism("flu-h3n2-ha")
    with (SHARED / "flu-h3n2-ha" / "sequences.fasta").open("rb") as stream:
        records = list(iter_fasta(stream, "sequences.fasta", []))
    rng = random.Random(5)
    for record in records[::6]:
        sequence = record.sequence
        cut = rng.randrange(200, 700)
        sequence = sequence[:cut] + sequence[cut + rng.choice([3, 6, 9]) :]
        at = rng.randrange(900, 1500)
        sequence = sequence[:at] + "".join(rng.choice("ACGT") for _ in range(6)) + sequence[at:]
        ours = analyse(organism, sequence)
        assert ours.deletions and ours.insertions
        _compare(organism, ours, mafft(organism.reference, sequence, tmp_path))
