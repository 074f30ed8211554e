"""Amino-acid calls: codon-aware substitutions, deletions and insertions, frameshifts, premature
stops, unknown codons, multi-part and minus-strand coding sequences; the genetic code."""

from __future__ import annotations

from datetime import date
from itertools import product

from genome_support import Plan, plant
from hypothesis import given
from hypothesis import strategies as st

from genofed.pathogen.analysis import analyse
from genofed.pathogen.organisms import build_organism, load_organism
from genofed.pathogen.translation import BLOSUM62, reverse_complement, similarity, translate

SARS_COV_2 = load_organism("sars-cov-2")
REFERENCE = SARS_COV_2.reference
S_START, ORF8_START, ORF8_CODONS = 21_563, 27_894, 122


def codon_start(gene_start: int, codon: int) -> int:
    """1-based position of a codon's first base."""
    return gene_start + 3 * (codon - 1)


def test_genetic_code() -> None:
    assert translate("ATGTTTTAAXXX") == "MF*X"
    assert translate("atgNTG") == "MX"
    assert translate("TGGTGATAGTAA") == "W***"
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("RYKM") == "KMRY"


def test_premature_stop_codon() -> None:
    q27 = codon_start(ORF8_START, 27)
    analysis = analyse(SARS_COV_2, plant(REFERENCE, Plan(substitutions={q27: "T"})))
    assert analysis.substitutions == (f"C{q27}T",)
    assert analysis.aa_substitutions == ("ORF8:Q27*",)
    assert analysis.stop_codons == ("ORF8:27",)
    # Alpha's ORF8:Q27* is common: not held against quality, as Nextclade does.
    assert analysis.qc.status == "good" and not analysis.qc.warnings
    q18 = codon_start(ORF8_START, 18)
    assert REFERENCE[q18 - 1 : q18 + 2] == "CAA"
    other = analyse(SARS_COV_2, plant(REFERENCE, Plan(substitutions={q18: "T"})))
    assert other.stop_codons == ("ORF8:18",)
    assert any("stop" in warning for warning in other.qc.warnings)


def test_frameshift_silences_the_rest_of_the_gene() -> None:
    deleted = codon_start(ORF8_START, 30) + 1
    downstream = codon_start(ORF8_START, 100)
    plan = Plan(deletions=[(deleted, deleted)], substitutions={downstream: "T"})
    analysis = analyse(SARS_COV_2, plant(REFERENCE, plan))
    assert analysis.frameshifts == (f"ORF8:30-{ORF8_CODONS}",)
    assert not any(call.startswith("ORF8") for call in analysis.aa_substitutions)
    assert not analysis.aa_deletions
    assert analysis.qc.warnings and "frameshift" in analysis.qc.warnings[-1]


def test_compensated_frameshift_ends_where_the_frame_returns() -> None:
    deleted = codon_start(ORF8_START, 30) + 1
    inserted_after = codon_start(ORF8_START, 40) + 1
    downstream = codon_start(ORF8_START, 100)
    base = REFERENCE[inserted_after - 1]
    text = next(b for b in "ACGT" if b not in (base, REFERENCE[inserted_after]))
    plan = Plan(
        deletions=[(deleted, deleted)],
        insertions={inserted_after: text},
        substitutions={downstream: "T" if REFERENCE[downstream - 1] != "T" else "G"},
    )
    analysis = analyse(SARS_COV_2, plant(REFERENCE, plan))
    assert analysis.frameshifts == ("ORF8:30-40",)
    assert [c for c in analysis.aa_substitutions if c.startswith("ORF8")][-1].startswith(
        "ORF8:" + translate(REFERENCE[downstream - 1 : downstream + 2]) + "100"
    )


def test_codons_with_unknown_bases_give_no_call() -> None:
    e484 = codon_start(S_START, 484)
    n501 = codon_start(S_START, 501)
    plan = Plan(substitutions={e484: "A", n501 + 2: "G"}, ambiguous={n501: "R"})
    plan.missing.append((e484 + 1, e484 + 1))
    analysis = analyse(SARS_COV_2, plant(REFERENCE, plan))
    assert analysis.substitutions == (f"G{e484}A", f"T{n501 + 2}G")
    assert analysis.aa_substitutions == ()
    assert analysis.ambiguous == (f"R{n501}",)
    assert analysis.missing == ((e484 + 1, e484 + 1),)


def test_whole_codon_insertion_moves_to_the_codon_boundary() -> None:
    # ACT (T500) with its own codon inserted after its first base (A|CTA|CT) is the same genome
    # as ACT inserted before the codon: the codon-aligned place is chosen.
    t500 = codon_start(S_START, 500)
    analysis = analyse(SARS_COV_2, plant(REFERENCE, Plan(insertions={t500: "CTA"})))
    assert analysis.insertions == (f"{t500 - 1}:ACT",)
    assert analysis.aa_insertions == ("S:499:T",)
    assert analysis.aa_substitutions == ()


def test_insertion_inside_a_codon_reads_as_a_peptide_alignment() -> None:
    # A|GGC|CT: T500 becomes R P: one inserted amino acid (before, gaps leftmost), one changed.
    t500 = codon_start(S_START, 500)
    analysis = analyse(SARS_COV_2, plant(REFERENCE, Plan(insertions={t500: "GGC"})))
    assert analysis.insertions == (f"{t500}:GGC",)
    assert analysis.aa_insertions == ("S:499:R",)
    assert analysis.aa_substitutions == ("S:T500P",)
    assert analysis.frameshifts == ()


def test_codon_deletion_in_frame_and_straddling() -> None:
    y144 = codon_start(S_START, 144)
    in_frame = analyse(SARS_COV_2, plant(REFERENCE, Plan(deletions=[(y144, y144 + 2)])))
    assert in_frame.aa_deletions == ("S:Y144-",)
    assert in_frame.aa_substitutions == ()
    # BA.1's 21987-21995: G|GT GTT TAT TA|C leaves GAC (D), most like G142: S:G142D and three
    # deletions, as Nextclade reports it.
    ba1 = analyse(SARS_COV_2, plant(REFERENCE, Plan(deletions=[(21987, 21995)])))
    assert ba1.aa_substitutions == ("S:G142D",)
    assert ba1.aa_deletions == ("S:V143-", "S:Y144-", "S:Y145-")


def test_blosum62_is_symmetric_with_its_diagonal_the_best_of_each_row() -> None:
    letters = "ARNDCQEGHILKMFPSTWYV"
    assert all(BLOSUM62[a, b] == BLOSUM62[b, a] for a in letters for b in letters)
    assert all(BLOSUM62[a, a] > BLOSUM62[a, b] for a in letters for b in letters if a != b)
    assert (BLOSUM62["W", "W"], BLOSUM62["L", "I"], BLOSUM62["N", "I"]) == (11, 2, -3)
    assert similarity("*", "*") == 1 and similarity("*", "Q") == -4


@given(st.integers(1, ORF8_CODONS - 1), st.sampled_from("ACGT"), st.integers(0, 2))
def test_every_substitution_is_called_at_its_codon(codon: int, base: str, phase: int) -> None:
    pos = codon_start(ORF8_START, codon) + phase
    if REFERENCE[pos - 1] == base:
        base = "ACGT"[("ACGT".index(base) + 1) % 4]
    analysis = analyse(SARS_COV_2, plant(REFERENCE, Plan(substitutions={pos: base})))
    before = REFERENCE[codon_start(ORF8_START, codon) - 1 :][:3]
    after = before[:phase] + base + before[phase + 1 :]
    expected = (
        ()
        if translate(before) == translate(after)
        else (f"ORF8:{translate(before)}{codon}{translate(after)}",)
    )
    assert analysis.aa_substitutions == expected


def test_minus_strand_and_multi_part_coding_sequences() -> None:
    reference = REFERENCE[:3000]
    gff3 = (
        "##gff-version 3\n"
        "ref\t.\tCDS\t1001\t1300\t.\t-\t0\tID=back;Name=back\n"
        "ref\t.\tCDS\t2001\t2099\t.\t+\t0\tID=two;Name=two\n"
        "ref\t.\tCDS\t2200\t2301\t.\t+\t0\tID=two;Name=two\n"
    )
    organism = build_organism(
        "test", f">ref\n{reference}\n".encode(), gff3, "ref.fa", "ref.gff3", date(2019, 1, 1)
    )
    protein_back = translate(reverse_complement(reference[1000:1300]))
    protein_two = translate(reference[2000:2099] + reference[2199:2301])
    # Position 1295 is the 2nd base of the minus-strand gene's 2nd codon (1300, 1299, 1298 |
    # 1297, 1296, 1295); position 2201 is the 2nd base of part two, codon 34's 2nd base.
    query = list(reference)
    query[1294] = {"A": "C", "C": "A", "G": "T", "T": "G"}[reference[1294]]
    query[2200] = {"A": "C", "C": "A", "G": "T", "T": "G"}[reference[2200]]
    analysis = analyse(organism, "".join(query))
    back_codon = reverse_complement(reference[1294:1297])
    back_new = reverse_complement("".join(query[1294:1297]))
    two_codon = reference[2199:2202]
    two_new = "".join(query[2199:2202])
    expected = []
    if translate(back_codon) != translate(back_new):
        expected.append(f"back:{protein_back[1]}2{translate(back_new)}")
    if translate(two_codon) != translate(two_new):
        expected.append(f"two:{protein_two[33]}34{translate(two_new)}")
    assert analysis.aa_substitutions == tuple(expected)
    assert expected, "the planted changes are non-synonymous in this reference"


def test_deletion_of_a_gene_end_is_no_frameshift() -> None:
    # ORF8 (27894-28259) loses its last 100 nt and a little beyond: 33 whole codons and a cut
    # one, no frameshift (nothing downstream to shift).
    analysis = analyse(SARS_COV_2, plant(REFERENCE, Plan(deletions=[(28160, 28262)])))
    assert analysis.frameshifts == ()
    orf8 = [c for c in analysis.aa_deletions if c.startswith("ORF8:")]
    assert len(orf8) == 33 and orf8[0].endswith("90-") and orf8[-1].endswith("122-")
    assert not any(c.startswith("ORF8:") for c in analysis.aa_substitutions)


def test_minus_strand_insertion() -> None:
    reference = REFERENCE[:3000]
    gff3 = "##gff-version 3\nref\t.\tCDS\t1001\t1300\t.\t-\t0\tID=back;Name=back\n"
    organism = build_organism(
        "test", f">ref\n{reference}\n".encode(), gff3, "ref.fa", "ref.gff3", date(2019, 1, 1)
    )
    # After 1-based 1201 is, read on the minus strand (from 1300 down), between codons 33 and
    # 34: three inserted bases there are one amino acid inserted after codon 33.
    text = next(
        "".join(t)
        for t in product("ACGT", repeat=3)
        if t[-1] != reference[1200] and t[0] != reference[1201]
    )
    analysis = analyse(organism, reference[:1201] + text + reference[1201:])
    assert analysis.insertions == (f"1201:{text}",)
    assert analysis.aa_insertions == (f"back:33:{translate(reverse_complement(text))}",)
    assert analysis.aa_substitutions == () and analysis.frameshifts == ()
