"""Clades of an organism as a small tree, and the clade a genome belongs to.

A clade has a name, a parent and the nucleotide mutations (``C241T``, ``A21765-``) that set it
apart from its parent. The definitions are a TSV, one clade a row::

    clade   parent  label   mutations
    19A                     (the root: no mutations)
    20A     19A             C14408T A23403G
    20I     20B     Alpha   C14676T C15279T A23063T

Assignment is by signature mutations, not phylogenetic placement: starting at the root, the
genome moves into a child clade when it carries that child's defining mutations, and the deepest
clade reached wins. A defining position the genome leaves unknown (N, mixed base or not covered)
counts neither for nor against; a child is entered when every known defining mutation is
present and at least two thirds of all of them are. Among matching siblings, the one with more
defining mutations present wins (the more specific signature), unless the unknown sites leave
another sibling as likely: then the genome stays in the parent clade rather than guess.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from genofed.errors import GenofedError

if TYPE_CHECKING:
    from genofed.pathogen.analysis import Analysis

_MUTATION = re.compile(r"([ACGT])([1-9]\d*)([ACGT-])")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,31}")
HEADER = ("clade", "parent", "label", "mutations")
QUORUM = 2 / 3  # share of a clade's defining mutations that must be seen present


class CladeError(GenofedError):
    """A clade definitions file is unusable; the message names the line and the fix."""


@dataclass(frozen=True)
class Clade:
    name: str
    parent: str | None  # None for the root
    label: str  # a common name, e.g. "Omicron BA.1"; may be empty
    mutations: tuple[str, ...]  # defining nucleotide mutations, relative to the parent


def parse_clades(text: str, source: str, reference: str) -> tuple[Clade, ...]:
    """Clades from a definitions TSV (see the module docstring), parents before children.

    Checks every line against ``reference``: one root, known parents, no cycle, mutations in our
    notation naming the reference base at a position inside the reference.
    """
    clades: dict[str, Clade] = {}
    header = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("\t")]
        cells += [""] * (len(cells) == len(HEADER) - 1)  # a root's empty mutations, trimmed
        if not header:
            if tuple(cells) != HEADER:
                raise CladeError(
                    f"{source} line {number} is {line!r}; the first line must be the header, "
                    f"the tab-separated columns {' '.join(HEADER)}"
                )
            header = True
            continue
        clade = _clade(cells, f"{source} line {number}", reference)
        if clade.name in clades:
            raise CladeError(f"{source} line {number}: clade {clade.name} is defined twice")
        clades[clade.name] = clade
    return _ordered(clades, source)


def _clade(cells: list[str], where: str, reference: str) -> Clade:
    if len(cells) != len(HEADER):
        raise CladeError(
            f"{where} has {len(cells)} tab-separated columns; write {len(HEADER)}: "
            f"{' '.join(HEADER)} (leave parent empty for the root, label may be empty)"
        )
    name, parent, label, listed = cells
    for value in (name, parent) if parent else (name,):
        if not _NAME.fullmatch(value):
            raise CladeError(
                f"{where}: {value!r} is not a clade name; use up to 32 letters, digits, "
                "'.', '_', '/' or '-', e.g. 21K"
            )
    mutations = tuple(dict.fromkeys(listed.split()))
    for mutation in mutations:
        _check_mutation(mutation, where, reference)
    if parent and not mutations:
        raise CladeError(f"{where}: clade {name} lists no defining mutation; add at least one")
    return Clade(name, parent or None, label, mutations)


def _check_mutation(mutation: str, where: str, reference: str) -> None:
    found = _MUTATION.fullmatch(mutation)
    if found is None:
        raise CladeError(
            f"{where}: {mutation!r} is not a nucleotide mutation; write reference base, "
            "position, new base or '-', e.g. C241T or A21765-"
        )
    base, site, alt = found.group(1), int(found.group(2)), found.group(3)
    if site > len(reference):
        raise CladeError(
            f"{where}: {mutation} lies beyond the reference ({len(reference)} nt); "
            "positions are 1-based"
        )
    if reference[site - 1] != base:
        raise CladeError(
            f"{where}: the reference has {reference[site - 1]} at {site}, not {base}; "
            f"write {reference[site - 1]}{site}{alt}"
        )
    if alt == base:
        raise CladeError(f"{where}: {mutation} changes nothing; list only changes")


def _ordered(clades: dict[str, Clade], source: str) -> tuple[Clade, ...]:
    """Parents before children; exactly one root, every parent known, no cycle."""
    roots = [clade.name for clade in clades.values() if clade.parent is None]
    if len(roots) != 1:
        raise CladeError(
            f"{source} has {len(roots)} root clades ({', '.join(roots) or 'none'}); "
            "exactly one clade has an empty parent"
        )
    for clade in clades.values():
        if clade.parent is not None and clade.parent not in clades:
            raise CladeError(
                f"{source}: clade {clade.name} names an unknown parent {clade.parent}; "
                "define the parent too, or correct the name"
            )
    ordered: list[Clade] = []
    frontier = roots
    while frontier:
        ordered.extend(clades[name] for name in frontier)
        frontier = [c.name for c in clades.values() if c.parent in frontier]
    if len(ordered) != len(clades):
        stuck = sorted(set(clades) - {clade.name for clade in ordered})
        raise CladeError(
            f"{source}: clades {', '.join(stuck)} form a cycle of parents and never reach the "
            f"root {roots[0]}; break the cycle"
        )
    return tuple(ordered)


@cache
def shipped_clades(organism: str, reference: str) -> tuple[Clade, ...]:
    """The clades shipped for a built-in organism (``data/{organism}.clades.tsv``); none when
    there is no such file."""
    path = resources.files("genofed.pathogen") / "data" / f"{organism}.clades.tsv"
    if not path.is_file():
        return ()
    return parse_clades(path.read_text("utf-8"), path.name, reference)


def assign_clade(
    clades: Sequence[Clade],
    substitutions: Iterable[str],
    deletions: Iterable[str],
    unknown: Sequence[tuple[int, int]],
) -> str | None:
    """The deepest clade whose path of signatures the genome carries (None without clades).

    ``unknown`` are the reference ranges without a usable base, inclusive and sorted. At each
    step the child with the most defining mutations present is entered if it has its quorum,
    unless a sibling the genome also shows some of (and none against) might, once its unknown
    sites are read, be as specific: then the genome stays in the parent, as either is possible.
    """
    if not clades:
        return None
    carried = set(substitutions) | set(deletions)
    children: dict[str | None, list[Clade]] = {}
    for clade in clades:
        children.setdefault(clade.parent, []).append(clade)
    starts = [start for start, _ in unknown]

    def is_unknown(site: int) -> bool:
        at = bisect_right(starts, site) - 1
        return at >= 0 and unknown[at][1] >= site

    here = children[None][0]
    while True:
        evidence = {
            child.name: seen
            for child in children.get(here.name, ())
            if (seen := _evidence(child, carried, is_unknown)) is not None
        }
        entered = [
            (present, name)
            for name, (present, unread) in evidence.items()
            if present >= QUORUM * (present + unread)
        ]
        if not entered:
            return here.name
        present, name = max(entered)
        if any(
            other != name and seen and seen + unread >= present
            for other, (seen, unread) in evidence.items()
        ):
            return here.name  # two children are possible: do not guess
        here = next(child for child in children[here.name] if child.name == name)


def _evidence(
    clade: Clade, carried: set[str], is_unknown: Callable[[int], bool]
) -> tuple[int, int] | None:
    """How many of ``clade``'s mutations the genome carries and how many it leaves unknown;
    None when it has a known base at one of them that is not the clade's."""
    present = unread = 0
    for mutation in clade.mutations:
        if mutation in carried:
            present += 1
        elif is_unknown(int(mutation[1:-1])):
            unread += 1
        else:
            return None
    return present, unread


def clade_of(clades: Sequence[Clade], analysis: Analysis, reference_length: int) -> str | None:
    """:func:`assign_clade` for an analysed genome: N runs, uncovered ends and mixed sites are
    its unknown positions."""
    mixed = [(site, site) for site in (int(code[1:]) for code in analysis.ambiguous)]
    unknown = sorted([*analysis.unknown(reference_length), *mixed])
    return assign_clade(clades, analysis.substitutions, analysis.deletions, unknown)


def signature(clades: Sequence[Clade], name: str) -> tuple[str, ...]:
    """Every defining mutation on the way from the root to clade ``name``, root side first."""
    by_name = {clade.name: clade for clade in clades}
    if name not in by_name:
        raise CladeError(f"no clade named {name!r}; choose one of {', '.join(by_name)}")
    path: list[Clade] = []
    clade: Clade | None = by_name[name]
    while clade is not None:
        path.append(clade)
        clade = by_name[clade.parent] if clade.parent else None
    return tuple(mutation for clade in reversed(path) for mutation in clade.mutations)
