"""analyse_many: in order, on one process or several, failures in place; the Analysis JSON."""

from __future__ import annotations

import random

import pytest
from genome_support import random_genome

from genofed.pathogen.analysis import AlignmentError, Analysis, analyse, analyse_many
from genofed.pathogen.organisms import load_organism

SARS_COV_2 = load_organism("sars-cov-2")


@pytest.mark.parametrize("workers", [1, 2])
def test_analyse_many_keeps_order_and_returns_failures(workers: int) -> None:
    rng = random.Random(workers)
    genomes = [random_genome(SARS_COV_2.reference, rng, substitutions=rng.randrange(5, 60))]
    genomes += [random_genome(SARS_COV_2.reference, rng) for _ in range(69)]
    genomes[3] = "ACGT" * 10  # too short
    genomes[40] = ""
    results = list(analyse_many(SARS_COV_2, genomes, workers=workers))
    assert len(results) == len(genomes)
    assert isinstance(results[3], AlignmentError) and isinstance(results[40], AlignmentError)
    for genome, result in zip(genomes, results, strict=True):
        if isinstance(result, Analysis):
            assert result == analyse(SARS_COV_2, genome)


def test_analysis_json_round_trip() -> None:
    genome = random_genome(SARS_COV_2.reference, random.Random(3)).replace("ACGTA", "ACNNA")
    analysis = analyse(SARS_COV_2, genome)
    assert analysis.missing and analysis.aa_substitutions
    assert Analysis.from_json(analysis.to_json()) == analysis
    assert analysis.nucleotide_mutations[0] in analysis.substitutions + analysis.deletions
