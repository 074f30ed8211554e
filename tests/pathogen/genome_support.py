"""Genomes with planted mutations, an independent aligner (minimap2) and indel normalisation,
for the aligner's tests."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from genofed.pathogen.analysis import Analysis

SHARED = Path(__file__).resolve().parents[2] / "../shared/data"
MINIMAP2 = shutil.which("minimap2")


@dataclass
class Plan:
    """Mutations to plant in a reference (1-based positions) and the calls they must give."""

    substitutions: dict[int, str] = field(default_factory=dict)
    deletions: list[tuple[int, int]] = field(default_factory=list)  # inclusive ranges
    insertions: dict[int, str] = field(default_factory=dict)  # after position
    missing: list[tuple[int, int]] = field(default_factory=list)  # N runs, inclusive
    ambiguous: dict[int, str] = field(default_factory=dict)
    trim_start: int = 0  # reference bases cut from either end
    trim_end: int = 0


def plant(reference: str, plan: Plan) -> str:
    """The genome ``plan`` describes."""
    bases = list(reference)
    for pos, base in plan.substitutions.items():
        bases[pos - 1] = base
    for pos, code in plan.ambiguous.items():
        bases[pos - 1] = code
    for first, last in plan.missing:
        bases[first - 1 : last] = ["N"] * (last - first + 1)
    for first, last in plan.deletions:
        bases[first - 1 : last] = [""] * (last - first + 1)
    for pos, text in plan.insertions.items():
        bases[pos - 1] += text
    return "".join(bases[plan.trim_start : len(bases) - plan.trim_end])


def expected_calls(reference: str, plan: Plan) -> dict[str, object]:
    """The nucleotide calls the plan must give, as Analysis fields."""
    return {
        "substitutions": tuple(
            f"{reference[p - 1]}{p}{b}" for p, b in sorted(plan.substitutions.items())
        ),
        "deletions": tuple(
            f"{reference[p - 1]}{p}-"
            for first, last in sorted(plan.deletions)
            for p in range(first, last + 1)
        ),
        "insertions": tuple(f"{p}:{t}" for p, t in sorted(plan.insertions.items())),
        "missing": tuple(sorted(plan.missing)),
        "ambiguous": tuple(f"{c}{p}" for p, c in sorted(plan.ambiguous.items())),
        "alignment_start": plan.trim_start + 1,
        "alignment_end": len(reference) - plan.trim_end,
    }


def unique_deletion(reference: str, first: int, length: int) -> bool:
    """True when a deletion of first..first+length-1 has a single placement."""
    last = first + length - 1
    return reference[first - 2] != reference[last - 1] and reference[first - 1] != reference[last]


def unique_insertion(reference: str, after: int, text: str) -> bool:
    """True when inserting ``text`` after ``after`` has a single placement."""
    return text[-1] != reference[after - 1] and text[0] != reference[after]


@dataclass(frozen=True)
class Calls:
    """Substitutions, deleted positions and insertions, comparable between aligners."""

    substitutions: frozenset[tuple[int, str]]
    deletions: frozenset[int]
    insertions: frozenset[tuple[int, str]]


def normalised(
    reference: str,
    substitutions: dict[int, str],
    deletions: set[int],
    insertions: dict[int, str],
    bounds: tuple[int, int],
) -> Calls:
    """Indels moved to their leftmost equivalent place, calls kept within ``bounds`` (1-based,
    inclusive): two aligners may place an indel in a repeat differently and both be right."""
    deleted = set(deletions)
    runs = _runs(sorted(deleted))
    for first, last in runs:
        while (
            first > 1
            and first - 1 not in substitutions
            and first - 1 not in deleted
            and reference[first - 2] == reference[last - 1]
        ):
            deleted.discard(last)
            deleted.add(first - 1)
            first, last = first - 1, last - 1
    moved: dict[int, str] = {}
    for after, text in sorted(insertions.items()):
        while after > 1 and after not in substitutions and after not in deleted:
            if text[-1] != reference[after - 1]:
                break
            text = reference[after - 1] + text[:-1]
            after -= 1
        moved[after] = text
    low, high = bounds
    return Calls(
        frozenset((p, b) for p, b in substitutions.items() if low <= p <= high),
        frozenset(p for p in deleted if low <= p <= high),
        frozenset((p, t) for p, t in moved.items() if low <= p < high),
    )


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p - 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


_CS = re.compile(r"(:\d+)|(\*[a-z][a-z])|([+-][a-z]+)")


@dataclass(frozen=True)
class Minimap2Hit:
    """One query's primary alignment by minimap2, in reference coordinates (1-based)."""

    start: int
    end: int
    substitutions: dict[int, str]  # A, C, G, T only: minimap2 calls N a mismatch
    deletions: set[int]
    insertions: dict[int, str]


def minimap2(reference: Path, queries: Path, preset: str = "asm20") -> dict[str, Minimap2Hit]:
    """Align with Debian's minimap2 (``-c --cs``) and read each primary hit's cs tag."""
    assert MINIMAP2
    out = subprocess.run(
        [MINIMAP2, "-c", "--cs", "--secondary=no", "-x", preset, str(reference), str(queries)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    hits = {}
    for line in out.splitlines():
        cells = line.split("\t")
        tags = dict(cell.split(":", 1) for cell in cells[12:])
        if tags.get("tp", "A:P") != "A:P" or cells[4] != "+":
            continue
        cs = next(cell[5:] for cell in cells[12:] if cell.startswith("cs:Z:"))
        hits[cells[0]] = _from_cs(int(cells[7]), int(cells[8]), cs)
    return hits


def _from_cs(start: int, end: int, cs: str) -> Minimap2Hit:
    substitutions: dict[int, str] = {}
    deletions: set[int] = set()
    insertions: dict[int, str] = {}
    pos = start  # 0-based next reference position
    for same, sub, indel in _CS.findall(cs):
        if same:
            pos += int(same[1:])
        elif sub:
            if sub[2] in "acgt":
                substitutions[pos + 1] = sub[2].upper()
            pos += 1
        elif indel[0] == "+":
            insertions[pos] = indel[1:].upper()
        else:
            deletions.update(range(pos + 1, pos + len(indel)))
            pos += len(indel) - 1
    assert pos == end, "cs tag does not add up to the alignment's span"
    return Minimap2Hit(start + 1, end, substitutions, deletions, insertions)


def analysis_calls(analysis: Analysis) -> tuple[dict[int, str], set[int], dict[int, str]]:
    """An Analysis's substitutions, deleted positions and insertions as minimap2's are."""
    substitutions = {int(c[1:-1]): c[-1] for c in analysis.substitutions}
    deletions = {int(c[1:-1]) for c in analysis.deletions}
    insertions = {int(c.split(":")[0]): c.split(":")[1] for c in analysis.insertions}
    return substitutions, deletions, insertions


def random_genome(reference: str, rng: random.Random, substitutions: int = 60) -> str:
    """A genome with ``substitutions`` random substitutions and a few indels of any placement
    (repeats included), at least 30 nt apart; its ends trimmed by up to 100 nt."""
    plan = Plan(trim_start=rng.randrange(0, 100), trim_end=rng.randrange(0, 100))
    slots = rng.sample(range(3, len(reference) // 40 - 3), substitutions + 8)
    for slot in slots[:substitutions]:
        pos = slot * 40 + rng.randrange(10)
        plan.substitutions[pos] = rng.choice([b for b in "ACGT" if b != reference[pos - 1]])
    for slot in slots[substitutions : substitutions + 4]:
        first = slot * 40 + rng.randrange(10)
        plan.deletions.append((first, first + rng.choice([1, 2, 3, 6, 9, 12, 20]) - 1))
    for slot in slots[substitutions + 4 :]:
        text = "".join(rng.choice("ACGT") for _ in range(rng.choice([1, 2, 3, 6, 9])))
        plan.insertions[slot * 40 + rng.randrange(10)] = text
    return plant(reference, plan)


MAFFT = shutil.which("mafft")


def mafft(reference: str, query: str, work: Path) -> Minimap2Hit:
    """Align a pair with Debian's mafft (global) and read its calls like minimap2's."""
    assert MAFFT
    pair = work / "pair.fasta"
    pair.write_text(f">reference\n{reference}\n>query\n{query}\n")
    out = subprocess.run(
        [MAFFT, "--quiet", "--auto", str(pair)], check=True, capture_output=True, text=True
    ).stdout
    ref_row, query_row = ("".join(block.splitlines()[1:]).upper() for block in out.split(">")[1:])
    covered = [i for i, base in enumerate(query_row) if base != "-"]
    substitutions: dict[int, str] = {}
    deletions: set[int] = set()
    insertions: dict[int, str] = {}
    pos = 0  # reference positions passed
    start = end = 0
    for column, (r, q) in enumerate(zip(ref_row, query_row, strict=True)):
        inside = covered[0] <= column <= covered[-1]
        if r == "-":
            if inside:
                insertions[pos] = insertions.get(pos, "") + q
            continue
        pos += 1
        if not inside:
            continue
        start = start or pos
        end = pos
        if q == "-":
            deletions.add(pos)
        elif q in "ACGT" and q != r:
            substitutions[pos] = q
    return Minimap2Hit(start, end, substitutions, deletions, insertions)
