"""Quality control of an analysed genome, in the manner of Nextclade.

Each rule scores one kind of trouble (0 is perfect, 100 is bad); the overall score is the sum of
score²/100, so one bad rule makes a bad genome but several small troubles add up slowly. Status
is good below 30, mediocre below 100, bad from 100. A bad genome, or one covering less than half
of the reference, carries errors and cannot be released; a mediocre one, or one with a
frameshift or premature stop, carries warnings for a curator.

Thresholds are Nextclade's defaults for SARS-CoV-2 (29,903 nt) and scale with the reference's
length for other organisms. Nextclade counts clustered *private* mutations, relative to the
nearest sequence of a reference tree; genofed has no tree, so the rule counts substitutions
relative to the reference, and the cut-off rises with the genome's own substitution density (a
flu HA far from an old reference is not a cluster everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genofed.pathogen.analysis import BAD, GOOD, MEDIOCRE, Qc, QcRule

SARS_COV_2_LENGTH = 29_903
MISSING_BIAS = 300  # unknown bases a genome may have for free
MISSING_THRESHOLD = 3000  # unknown bases beyond the bias that make the rule bad
MIXED_THRESHOLD = 10
MIXED_MINIMUM = 3  # mixed sites bad for any organism, however short
FRAMESHIFT_SCORE = 75
STOP_SCORE = 75
CLUSTER_WINDOW = 100
CLUSTER_CUTOFF = 6  # more substitutions than this in a window make a cluster
CLUSTER_SCORE = 50
# A window is a cluster only beyond this many times the genome's own substitution density: flu
# HA against a 2005 reference carries ~7 substitutions per 100 nt, up to ~23 at antigenic sites.
CLUSTER_BACKGROUND = 4
MIN_COVERAGE = 0.5
# Premature stops common in circulating lineages, which Nextclade's SARS-CoV-2 dataset does not
# count against quality: ORF8:Q27* (Alpha) and ORF8:K68*.
KNOWN_STOP_CODONS = {"sars-cov-2": frozenset({"ORF8:27", "ORF8:68"})}


@dataclass(frozen=True)
class Findings:
    """What QC judges, as counted by the mutation calls."""

    reference_length: int
    unknown: int  # N bases plus reference positions not covered
    mixed_sites: int
    frameshifts: Sequence[str]
    stop_codons: Sequence[str]
    substitution_positions: npt.NDArray[np.intp]  # sorted
    covered: int  # reference positions covered by a called base or a deletion
    known_stop_codons: frozenset[str] = frozenset()  # not counted, see KNOWN_STOP_CODONS

    @property
    def coverage(self) -> float:
        return self.covered / self.reference_length


def judge(findings: Findings) -> Qc:
    """Every rule's verdict, the overall one, and the warnings and errors they imply."""
    scale = findings.reference_length / SARS_COV_2_LENGTH
    stops = [stop for stop in findings.stop_codons if stop not in findings.known_stop_codons]
    rules = (
        _missing_data(findings.unknown, scale),
        _mixed_sites(findings.mixed_sites, scale),
        _counted("frameshifts", findings.frameshifts, FRAMESHIFT_SCORE),
        _counted("stop_codons", stops, STOP_SCORE),
        _clusters(findings.substitution_positions, findings.covered),
    )
    score = sum(rule.score**2 / 100 for rule in rules)
    status = _status(score)
    errors, warnings = [], []
    if status == BAD:
        bad = ", ".join(rule.name for rule in rules if rule.status == BAD) or "several rules"
        errors.append(f"quality is bad (score {score:.0f}, from {bad}): fix the assembly")
    if findings.coverage < MIN_COVERAGE:
        errors.append(
            f"the sequence covers {findings.coverage:.0%} of the reference; at least "
            f"{MIN_COVERAGE:.0%} is needed"
        )
    if status == MEDIOCRE:
        warnings.append(f"quality is mediocre (score {score:.0f}): a curator should look")
    if findings.frameshifts:
        warnings.append(f"frameshifts: {', '.join(findings.frameshifts)}")
    if stops:
        warnings.append(f"premature stop codons: {', '.join(stops)}")
    return Qc(status, round(score, 2), rules, tuple(warnings), tuple(errors))


def _status(score: float) -> str:
    return GOOD if score < 30 else MEDIOCRE if score < 100 else BAD


def _rule(name: str, score: float, detail: str) -> QcRule:
    score = round(max(0.0, score), 2)
    return QcRule(name, score, _status(score), detail)


def _missing_data(unknown: int, scale: float) -> QcRule:
    bias, threshold = MISSING_BIAS * scale, MISSING_THRESHOLD * scale
    return _rule(
        "missing_data",
        (unknown - bias) * 100 / threshold,
        f"{unknown} unknown bases (N or not covered); {bias:.0f} free, bad at "
        f"{bias + threshold:.0f}",
    )


def _mixed_sites(count: int, scale: float) -> QcRule:
    threshold = max(MIXED_MINIMUM, MIXED_THRESHOLD * scale)
    return _rule(
        "mixed_sites", count * 100 / threshold, f"{count} mixed sites; bad at {threshold:.0f}"
    )


def _counted(name: str, found: Sequence[str], each: float) -> QcRule:
    shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
    detail = f"{len(found)} {name.replace('_', ' ')}" + (f": {shown}" if found else "")
    return _rule(name, len(found) * each, detail)


def _clusters(positions: npt.NDArray[np.intp], covered: int) -> QcRule:
    """Windows of CLUSTER_WINDOW nt with more substitutions than the cut-off, merged when
    they overlap; 50 points each."""
    expected = len(positions) * CLUSTER_WINDOW / max(covered, 1)
    cutoff = max(CLUSTER_CUTOFF, math.ceil(CLUSTER_BACKGROUND * expected))
    ends = np.searchsorted(positions, positions + CLUSTER_WINDOW)
    dense = np.flatnonzero(ends - np.arange(len(positions)) > cutoff)
    clusters = 0
    reach = -1
    for i in dense.tolist():
        if positions[i] >= reach:
            clusters += 1
        reach = int(positions[i]) + CLUSTER_WINDOW
    return _rule(
        "clustered_substitutions",
        clusters * CLUSTER_SCORE,
        f"{clusters} clusters of more than {cutoff} substitutions in {CLUSTER_WINDOW} nt "
        "(relative to the reference; no tree)",
    )
