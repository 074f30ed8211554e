"""Synthetic released records for the query tests, and a brute-force reading of them.

Records draw their mutations from a small pool of real reference positions so that queries hit
overlapping sets; unknown ranges (N runs, uncovered ends, mixed sites) are random, and no
mutation is called inside one (an aligner calls none there). :func:`base_at` and
:func:`amino_acid_at` say what a record has at a site, straight from its analysis: the oracle
the store's bitmaps are checked against.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

from genofed.pathogen.analysis import Analysis, Qc
from genofed.pathogen.organisms import Organism, load_organism
from genofed.pathogen.record import OPEN, PathogenRecord
from genofed.pathogen.variant_query import (
    AminoAcidMutation,
    And,
    Expression,
    Insertion,
    Leaf,
    NOf,
    Not,
    NucleotideMutation,
    Or,
)

ORGANISM: Organism = load_organism("sars-cov-2")
REFERENCE = ORGANISM.reference
LENGTH = len(REFERENCE)
POSITIONS = (241, 3037, 14408, 21765, 21766, 23063, 23403, 28881)
AA_SITES = {("S", 484): "E", ("S", 501): "N", ("S", 69): "H", ("N", 203): "R"}
AA_SYMBOLS = "KYQ-"
INSERTIONS = ("22204:GAGCCAGAA", "22204:GAG", "28262:AACA")
AA_INSERTIONS = ("S:214:EPE", "S:214:E")
PLACES = (
    "Europe / Belgium / Brussels",
    "Europe / Belgium / Antwerp",
    "Europe / Belgium",
    "Europe / Belgium2 / Liège",
    "Europe / Finland / Uusimaa",
    "Asia / Japan / Tokyo",
)
DATES = ("2021", "2021-03", "2021-03-15", "2021-03-31", "2021-04-02", "2022-01", "2022-02-10", "")
QC = Qc("good", 0.0, ())


def codon_span(gene: str, codon: int) -> tuple[int, int]:
    """First and last reference position of a codon of a single-part, forward gene."""
    feature = ORGANISM.genes[gene]
    first = feature.start + 3 * (codon - 1)
    return first, first + 2


def analysis(
    substitutions: Sequence[str] = (),
    deletions: Sequence[str] = (),
    insertions: Sequence[str] = (),
    missing: Sequence[tuple[int, int]] = (),
    start: int = 1,
    end: int = LENGTH,
    aa_substitutions: Sequence[str] = (),
    aa_deletions: Sequence[str] = (),
    aa_insertions: Sequence[str] = (),
    ambiguous: Sequence[str] = (),
    status: str = "good",
) -> Analysis:
    return Analysis(
        organism=ORGANISM.name,
        length=end - start + 1,
        alignment_start=start,
        alignment_end=end,
        substitutions=tuple(substitutions),
        deletions=tuple(deletions),
        insertions=tuple(insertions),
        missing=tuple(missing),
        ambiguous=tuple(ambiguous),
        aa_substitutions=tuple(aa_substitutions),
        aa_deletions=tuple(aa_deletions),
        aa_insertions=tuple(aa_insertions),
        frameshifts=(),
        stop_codons=(),
        qc=Qc(status, QC.score, ()),
    )


def record(
    accession: str,
    result: Analysis | None = None,
    *,
    version: int = 1,
    metadata: Mapping[str, str] | None = None,
    terms: str = OPEN,
    until: date | None = None,
    revoked: bool = False,
    node: str = "BE",
) -> PathogenRecord:
    fields = {"collection_date": "2021-03-15", "location": PLACES[0], "host": "Human"}
    fields.update(metadata or {})
    return PathogenRecord(
        accession=accession,
        version=version,
        organism=ORGANISM.name,
        node=node,
        metadata=fields,
        analysis=result or analysis(),
        data_use_terms=terms,
        restricted_until=until,
        released_at=datetime(2022, 6, 1, tzinfo=UTC),
        revoked=revoked,
    )


def random_record(rng: random.Random, number: int) -> PathogenRecord:
    start = rng.choice((1, 1, 1, 200, 250))
    end = rng.choice((LENGTH, LENGTH, 29000, 28000))
    missing = []
    for _ in range(rng.randrange(3)):
        first = rng.randrange(start, end - 400)
        missing.append((first, first + rng.randrange(1, 400)))
    ambiguous_at = rng.sample(POSITIONS, 1) if rng.random() < 0.1 else []
    unknown = [(1, start - 1), (end + 1, LENGTH), *missing, *[(p, p) for p in ambiguous_at]]

    def known(first: int, last: int) -> bool:
        return not any(a <= last and first <= b for a, b in unknown)

    substitutions, deletions = [], []
    for place in POSITIONS:
        roll = rng.random()
        if known(place, place) and roll < 0.35:
            alt = rng.choice([b for b in "ACGT" if b != REFERENCE[place - 1]])
            substitutions.append(f"{REFERENCE[place - 1]}{place}{alt}")
        elif known(place, place) and roll < 0.45:
            deletions.append(f"{REFERENCE[place - 1]}{place}-")
    aa_substitutions, aa_deletions = [], []
    for (gene, codon), ref in AA_SITES.items():
        if known(*codon_span(gene, codon)) and rng.random() < 0.4:
            symbol = rng.choice(AA_SYMBOLS)
            (aa_deletions if symbol == "-" else aa_substitutions).append(
                f"{gene}:{ref}{codon}{symbol}"
            )
    return record(
        f"GFBE{number:08d}",
        analysis(
            substitutions,
            deletions,
            rng.sample(INSERTIONS, rng.randrange(2)),
            missing,
            start,
            end,
            aa_substitutions,
            aa_deletions,
            rng.sample(AA_INSERTIONS, rng.randrange(2)),
            [f"R{p}" for p in ambiguous_at],
            rng.choice(("good", "good", "mediocre", "bad")),
        ),
        metadata={
            "collection_date": rng.choice(DATES),
            "location": rng.choice(PLACES),
            "host": rng.choice(("Human", "Human", "Mink")),
            "coverage": rng.choice(("100x", "1500", "250.5x", "", "n/a")),
            "age": str(rng.randrange(0, 90)),
        },
        node=rng.choice(("BE", "FI")),
    )


def random_records(seed: int, count: int) -> list[PathogenRecord]:
    rng = random.Random(seed)
    return [random_record(rng, number) for number in range(count)]


# -- the oracle ---------------------------------------------------------------------------------


def _unknown(item: PathogenRecord) -> list[tuple[int, int]]:
    ranges = list(item.analysis.unknown(LENGTH))
    return ranges + [(int(a[1:]), int(a[1:])) for a in item.analysis.ambiguous]


def base_at(item: PathogenRecord, place: int) -> str | None:
    """The record's base at ``place``: a letter, '-', '.' (the reference) or None (unknown)."""
    for mutation in item.analysis.substitutions + item.analysis.deletions:
        if int(mutation[1:-1]) == place:
            return mutation[-1]
    if any(a <= place <= b for a, b in _unknown(item)):
        return None
    return "."


def amino_acid_at(item: PathogenRecord, gene: str, codon: int) -> str | None:
    for mutation in item.analysis.aa_substitutions + item.analysis.aa_deletions:
        name, rest = mutation.split(":")
        if name == gene and int(rest[1:-1]) == codon:
            return rest[-1]
    first, last = codon_span(gene, codon)
    if any(a <= last and first <= b for a, b in _unknown(item)):
        return None
    return "."


def holds(expression: Expression, item: PathogenRecord) -> bool:
    """Whether a record satisfies a variant query, read from its analysis one by one."""
    if isinstance(expression, And):
        return all(holds(child, item) for child in expression.children)
    if isinstance(expression, Or):
        return any(holds(child, item) for child in expression.children)
    if isinstance(expression, Not):
        return not holds(expression.child, item)
    if isinstance(expression, NOf):
        hits = sum(holds(child, item) for child in expression.children)
        return hits == expression.count if expression.exactly else hits >= expression.count
    return leaf_holds(expression, item)


def leaf_holds(leaf: Leaf, item: PathogenRecord) -> bool:
    if isinstance(leaf, Insertion):
        found = item.analysis.aa_insertions if leaf.gene else item.analysis.insertions
        prefix = f"{leaf.gene}:{leaf.position}:" if leaf.gene else f"{leaf.position}:"
        return any(
            _wildcard(leaf.pattern, key[len(prefix) :]) for key in found if key.startswith(prefix)
        )
    if isinstance(leaf, NucleotideMutation):
        have = base_at(item, leaf.position)
        symbol = "." if leaf.symbol == REFERENCE[leaf.position - 1] else leaf.symbol
    elif isinstance(leaf, AminoAcidMutation):
        have = amino_acid_at(item, leaf.gene, leaf.position)
        symbol = leaf.symbol
    if symbol is None:
        return have not in (None, ".")
    return have == symbol


def _wildcard(pattern: str, symbols: str) -> bool:
    """``?`` matches any run, by plain recursion (independent of the store's regex)."""
    if not pattern:
        return not symbols
    if pattern[0] == "?":
        return any(_wildcard(pattern[1:], symbols[i:]) for i in range(len(symbols) + 1))
    return bool(symbols) and symbols[0] == pattern[0] and _wildcard(pattern[1:], symbols[1:])


def leaf_pool() -> list[Leaf]:
    """Leaves a test may ask about: every symbol at the pool's sites, reference and any."""
    pool: list[Leaf] = []
    for place in POSITIONS:
        ref = REFERENCE[place - 1]
        pool += [NucleotideMutation(place, None, s) for s in ("A", "C", "G", "T", "-", ".")]
        pool += [NucleotideMutation(place, ref, None), NucleotideMutation(place, None, None)]
    for (gene, codon), ref in AA_SITES.items():
        pool += [AminoAcidMutation(gene, codon, ref, s) for s in (*AA_SYMBOLS, ".")]
        pool += [AminoAcidMutation(gene, codon, None, None)]
    pool += [
        Insertion(None, 22204, "GAG"),
        Insertion(None, 22204, "GAG?"),
        Insertion("S", 214, "E"),
    ]
    return pool
