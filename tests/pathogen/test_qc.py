"""Quality control: each rule on crafted findings, the overall verdict, warnings versus errors,
and thresholds scaled for a short genome."""

from __future__ import annotations

import numpy as np
import pytest
from genome_support import SHARED, Plan, plant

from genofed.pathogen.analysis import BAD, GOOD, MEDIOCRE, analyse
from genofed.pathogen.fasta import iter_fasta
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.qc import Findings, judge

SARS_COV_2 = load_organism("sars-cov-2")


def findings(**changes: object) -> Findings:
    values: dict[str, object] = {
        "reference_length": 29_903,
        "unknown": 0,
        "mixed_sites": 0,
        "frameshifts": (),
        "stop_codons": (),
        "substitution_positions": np.array([], dtype=np.intp),
        "covered": 29_903,
    }
    values.update(changes)
    return Findings(**values)  # type: ignore[arg-type]


def scores(qc_findings: Findings) -> dict[str, float]:
    return {rule.name: rule.score for rule in judge(qc_findings).rules}


def test_a_clean_genome_is_good() -> None:
    qc = judge(findings())
    assert (qc.status, qc.score, qc.warnings, qc.errors) == (GOOD, 0, (), ())
    assert all(rule.status == GOOD for rule in qc.rules)


@pytest.mark.parametrize(
    ("unknown", "score", "status"),
    [(300, 0, GOOD), (1200, 30, GOOD), (2700, 80, MEDIOCRE), (3300, 100, BAD), (9000, 290, BAD)],
)
def test_missing_data_as_nextclade(unknown: int, score: float, status: str) -> None:
    qc = judge(findings(unknown=unknown, covered=29_903 - unknown))
    assert scores(findings(unknown=unknown))["missing_data"] == score
    assert qc.status == status  # overall: score²/100, good < 30 <= mediocre < 100 <= bad


def test_mixed_sites_frameshifts_and_stops() -> None:
    assert scores(findings(mixed_sites=5))["mixed_sites"] == 50
    qc = judge(findings(frameshifts=("ORF8:30-122",)))
    assert qc.status == MEDIOCRE and qc.score == 56.25
    assert any("frameshifts: ORF8:30-122" in w for w in qc.warnings) and not qc.errors
    qc = judge(findings(stop_codons=("ORF8:27", "ORF3a:100")))
    assert qc.status == BAD and "stop_codons" in qc.errors[0]


def test_clustered_substitutions() -> None:
    spread = np.arange(1000, 29_000, 500)
    assert scores(findings(substitution_positions=spread))["clustered_substitutions"] == 0
    clustered = np.sort(np.concatenate((spread, np.arange(5001, 5071, 10))))
    assert scores(findings(substitution_positions=clustered))["clustered_substitutions"] == 50
    two = np.sort(np.concatenate((clustered, np.arange(20_001, 20_081, 10))))
    assert scores(findings(substitution_positions=two))["clustered_substitutions"] == 100


def test_low_coverage_is_an_error_even_when_otherwise_fine() -> None:
    qc = judge(findings(reference_length=1737, covered=700, unknown=0))
    assert any("covers 40%" in error for error in qc.errors)


def test_analysed_genomes() -> None:
    reference = SARS_COV_2.reference
    good = analyse(SARS_COV_2, plant(reference, Plan(missing=[(1000, 1200)])))
    assert good.qc.status == GOOD and not good.qc.errors
    dropouts = Plan(missing=[(p, p + 399) for p in range(2000, 12_000, 1000)])
    bad = analyse(SARS_COV_2, plant(reference, dropouts))
    assert bad.qc.status == BAD and "missing_data" in bad.qc.errors[0]
    half = analyse(SARS_COV_2, reference[:12_000])
    assert any("covers 40%" in error for error in half.qc.errors)


def test_thresholds_scale_with_the_genome() -> None:
    flu = load_organism("flu-h3n2-ha")
    # 150 N in 1,737 nt is as bad as 2,600 in SARS-CoV-2: mediocre at least, not free.
    analysis = analyse(flu, plant(flu.reference, Plan(missing=[(500, 649)])))
    assert analysis.qc.status in (MEDIOCRE, BAD)
    rule = next(r for r in analysis.qc.rules if r.name == "missing_data")
    assert rule.score > 70
    # Three mixed sites are bad in a short genome (threshold never below 3).
    mixed = analyse(flu, plant(flu.reference, Plan(ambiguous={300: "R", 600: "Y", 900: "K"})))
    assert mixed.qc.status == BAD


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")
def test_real_h3n2_ha_sequences_pass_qc() -> None:
    # ~7% from their 2005 reference, densest at the antigenic sites: not clusters for QC.
    flu = load_organism("flu-h3n2-ha")
    with (SHARED / "flu-h3n2-ha" / "sequences.fasta").open("rb") as stream:
        records = list(iter_fasta(stream, "sequences.fasta", []))
    verdicts = [analyse(flu, record.sequence).qc for record in records]
    assert all(qc.status == GOOD and not qc.errors for qc in verdicts)
    assert all(
        rule.score == 0 for qc in verdicts for rule in qc.rules if rule.name != "mixed_sites"
    )
