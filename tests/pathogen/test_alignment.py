"""The aligner finds planted mutations exactly, rebuilds the query from its analysis, places
indels as Nextclade does, and refuses what does not align."""

from __future__ import annotations

import pytest
from genome_support import (
    Plan,
    analysis_calls,
    expected_calls,
    normalised,
    plant,
    unique_deletion,
    unique_insertion,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genofed.pathogen.alignment import AlignmentError, affine_alignment
from genofed.pathogen.analysis import aligned_sequence, analyse
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.translation import codes

SARS_COV_2 = load_organism("sars-cov-2")
REFERENCE = SARS_COV_2.reference
SLOT = 100  # one planted event per 100-nt slot, so that every event has anchors around it
KINDS = ("substitution", "deletion", "insertion", "missing", "ambiguous")


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """Random substitutions, deletions and insertions (each with a single correct placement),
    N runs, ambiguity codes and trimmed ends."""
    plan = Plan(trim_start=draw(st.integers(0, 150)), trim_end=draw(st.integers(0, 150)))
    slots = draw(st.lists(st.integers(3, len(REFERENCE) // SLOT - 3), max_size=40, unique=True))
    for slot in slots:
        kind = draw(st.sampled_from(KINDS))
        pos = slot * SLOT + draw(st.integers(0, 40))
        if kind == "substitution":
            plan.substitutions[pos] = draw(
                st.sampled_from([b for b in "ACGT" if b != REFERENCE[pos - 1]])
            )
        elif kind == "deletion":
            length = draw(st.integers(1, 30))
            pos = next(p for p in range(pos, pos + 20) if unique_deletion(REFERENCE, p, length))
            plan.deletions.append((pos, pos + length - 1))
        elif kind == "insertion":
            text = draw(st.text("ACGT", min_size=1, max_size=15))
            if unique_insertion(REFERENCE, pos, text):
                plan.insertions[pos] = text
        elif kind == "missing":
            plan.missing.append((pos, pos + draw(st.integers(0, 50))))
        else:
            plan.ambiguous[pos] = draw(st.sampled_from("RYSWKMBDHV"))
    return plan


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), lower=st.booleans())
def test_planted_mutations_are_found_exactly(plan: Plan, lower: bool) -> None:
    query = plant(REFERENCE, plan)
    analysis = analyse(SARS_COV_2, query.lower() if lower else query)
    found = {name: getattr(analysis, name) for name in expected_calls(REFERENCE, plan)}
    assert found == expected_calls(REFERENCE, plan)
    assert analysis.length == len(query)


@settings(max_examples=30, deadline=None)
@given(plan=plans())
def test_aligned_sequence_rebuilds_the_query(plan: Plan) -> None:
    query = plant(REFERENCE, plan)
    analysis = analyse(SARS_COV_2, query)
    aligned = aligned_sequence(SARS_COV_2, analysis)
    assert len(aligned) == len(REFERENCE)
    columns = list(aligned)
    for call in analysis.insertions:
        after, text = call.split(":")
        columns[int(after) - 1] += text
    assert "".join(columns).replace("-", "") == query


def test_omicron_ba1_like_calls() -> None:
    plan = Plan(
        substitutions={241: "T", 3037: "T", 23012: "A", 23403: "G", 22578: "A", 23063: "T"},
        deletions=[(21765, 21770), (11288, 11296), (22194, 22196)],
        insertions={22204: "GAGCCAGAA"},
        trim_start=54,
        trim_end=70,
    )
    analysis = analyse(SARS_COV_2, plant(REFERENCE, plan))
    assert analysis.substitutions == ("C241T", "C3037T", "G22578A", "G23012A", "A23063T", "A23403G")
    assert analysis.insertions == ("22204:GAGCCAGAA",)
    assert "A21765-" not in analysis.deletions  # T21765 is deleted, leftmost placement
    assert analysis.deletions[9:15] == tuple(f"{REFERENCE[p - 1]}{p}-" for p in range(21765, 21771))
    assert analysis.aa_deletions == (
        "ORF1a:S3675-",
        "ORF1a:G3676-",
        "ORF1a:F3677-",
        "S:H69-",
        "S:V70-",
        "S:N211-",
    )
    assert "S:L212I" in analysis.aa_substitutions
    assert analysis.aa_insertions == ("S:214:EPE",)
    assert set(analysis.aa_substitutions) >= {"S:E484K", "S:N501Y", "S:D614G", "S:G339D"}
    assert (analysis.alignment_start, analysis.alignment_end) == (55, len(REFERENCE) - 70)
    assert analysis.qc.status == "good"


def test_indel_in_a_repeat_goes_left_unless_a_codon_aligned_place_exists() -> None:
    # Outside genes: a base deleted from a homopolymer run is placed at the run's first base.
    run = next(p for p in range(29600, 29800) if len(set(REFERENCE[p - 1 : p + 3])) == 1)
    run_start = next(p for p in range(run, 0, -1) if REFERENCE[p - 2] != REFERENCE[run - 1])
    analysis = analyse(SARS_COV_2, REFERENCE[:run] + REFERENCE[run + 1 :])
    assert analysis.deletions == (f"{REFERENCE[run - 1]}{run_start}-",)
    # In S, deleting one of two equal codons: ...TTA TTA... could be placed anywhere in the run;
    # a codon-aligned place is taken (S codon 144/145 region, 21991-21993 in Alpha).
    analysis = analyse(SARS_COV_2, REFERENCE[:21990] + REFERENCE[21993:])
    assert analysis.deletions == ("T21992-", "A21993-", "T21994-")
    assert analysis.aa_deletions == ("S:Y144-",)


def test_two_indels_close_together_are_realigned() -> None:
    # A deletion and an insertion 6 nt apart: no anchor between them, one indel cannot explain
    # the stretch; the dynamic programme must find both.
    query = REFERENCE[:15000] + REFERENCE[15004:15010] + "GG" + REFERENCE[15010:]
    analysis = analyse(SARS_COV_2, query)
    assert not analysis.substitutions
    assert len(analysis.deletions) == 4
    assert len(analysis.insertions) == 1 and analysis.insertions[0].endswith(":GG")
    rebuilt = list(aligned_sequence(SARS_COV_2, analysis))
    after, text = analysis.insertions[0].split(":")
    rebuilt[int(after) - 1] += text
    assert "".join(rebuilt).replace("-", "") == query


def test_affine_alignment_finds_a_gap() -> None:
    ops = affine_alignment(codes("ACGTACGTTTGCA"), codes("ACGTACGTAAATTGCA"))
    assert ops == [("M", 8), ("D", 3), ("M", 5)]
    # Of equally good places, the leftmost: ACG[TT]T.
    assert affine_alignment(codes("ACGTTT"), codes("ACGT")) == [("M", 3), ("I", 2), ("M", 1)]


def test_junk_ends_are_clipped_not_called() -> None:
    junk = "TTTTTTTTTTGGGGGGGGGGCCCCCCCCCCAAAAAAAAAA"
    analysis = analyse(SARS_COV_2, junk + REFERENCE[100:29800] + junk)
    assert analysis.substitutions == () and analysis.insertions == ()
    assert (analysis.alignment_start, analysis.alignment_end) == (101, 29800)
    assert analysis.extra["clipped"] == 2 * len(junk)


@pytest.mark.parametrize(
    ("sequence", "message"),
    [
        ("", "is empty"),
        ("N" * 30000, "only 0 A/C/G/T bases"),
        ("ACGT", "only 4"),
        (REFERENCE[:5000] + "-" + REFERENCE[5000:], "'-' at position 5001"),
        (REFERENCE[:100] + "é", "not an IUPAC nucleotide code"),
        ("".join("ACGT"[(i * 7 + i // 3) % 4] for i in range(29000)), "no stretch|only"),
    ],
)
def test_sequences_that_do_not_align(sequence: str, message: str) -> None:
    with pytest.raises(AlignmentError, match=message):
        analyse(SARS_COV_2, sequence)


def test_other_virus_and_reverse_complement_do_not_align() -> None:
    flu = load_organism("flu-h3n2-ha")
    with pytest.raises(AlignmentError, match="this organism's genome"):
        analyse(SARS_COV_2, flu.reference)
    complement = REFERENCE[::-1].translate(str.maketrans("ACGT", "TGCA"))
    with pytest.raises(AlignmentError, match="reverse complement"):
        analyse(SARS_COV_2, complement)


@st.composite
def rough_genomes(draw: st.DrawFn) -> str:
    """Genomes with anything at any place: long indels, duplications, inversions, junk."""
    genome = REFERENCE
    for _ in range(draw(st.integers(0, 12))):
        at = draw(st.integers(0, len(genome) - 1))
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "invert", "mutate"]))
        size = draw(st.integers(1, 1500))
        piece = genome[at : at + size]
        if kind == "delete":
            genome = genome[:at] + genome[at + size :]
        elif kind == "insert":
            genome = genome[:at] + draw(st.text("ACGTN", min_size=1, max_size=300)) + genome[at:]
        elif kind == "duplicate":
            genome = genome[:at] + piece + genome[at:]
        elif kind == "invert":
            genome = genome[:at] + piece[::-1] + genome[at + size :]
        else:
            changed = "".join(
                draw(st.sampled_from("ACGT")) if i % 7 == 0 else b for i, b in enumerate(piece)
            )
            genome = genome[:at] + changed + genome[at + size :]
    return genome


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genome=rough_genomes())
def test_any_genome_aligns_or_fails_cleanly(genome: str) -> None:
    try:
        analysis = analyse(SARS_COV_2, genome)
    except AlignmentError:
        return
    aligned = aligned_sequence(SARS_COV_2, analysis)
    assert len(aligned) == len(REFERENCE)
    columns = list(aligned)
    for call in analysis.insertions:
        after, text = call.split(":")
        columns[int(after) - 1] += text
    rebuilt = "".join(columns).replace("-", "")
    # Whatever the aligner made of it, the aligned part is the genome minus its clipped ends.
    assert len(rebuilt) == len(genome) - analysis.extra["clipped"]
    assert rebuilt in genome


@pytest.mark.parametrize(
    ("plan", "deleted", "inserted"),
    [
        (Plan(deletions=[(29791, 29792)], trim_start=100, trim_end=103), {29791, 29792}, {}),
        (Plan(insertions={108: "GT"}, trim_start=100, trim_end=103), set(), {108: "GT"}),
        (Plan(deletions=[(107, 109)], trim_start=100, trim_end=103), {107, 108, 109}, {}),
        (Plan(insertions={29788: "CCA"}, trim_start=100, trim_end=103), set(), {29788: "CCA"}),
    ],
)
def test_indels_close_to_the_ends(plan: Plan, deleted: set[int], inserted: dict[int, str]) -> None:
    # A few bases from either end: no anchor beyond the indel, the ends are aligned with gaps.
    analysis = analyse(SARS_COV_2, plant(REFERENCE, plan))
    bounds = (1, len(REFERENCE))
    expected = normalised(REFERENCE, {}, deleted, inserted, bounds)
    assert normalised(REFERENCE, *analysis_calls(analysis), bounds) == expected
    assert not analysis.substitutions and analysis.extra["clipped"] == 0
    assert (analysis.alignment_start, analysis.alignment_end) == (101, len(REFERENCE) - 103)
