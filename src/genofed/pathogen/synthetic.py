"""Synthetic SARS-CoV-2 submissions for the demo and tests: genomes and a metadata sheet.

Nobody's samples: each genome is the reference plus the signature of a Nextstrain clade and a
few well-known changes of it (so that queries such as ``S:E484K`` or ``S:H69-`` have something to
find, and each genome is assigned its clade), a couple of private substitutions, amplicon
dropouts as runs of N away from those changes, and trimmed ends, as real consensus genomes have.
Everything follows from a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from genofed.pathogen.clades import signature
from genofed.pathogen.organisms import Organism

# Nucleotide changes as (position, reference, alternative); "" deletes, a longer alt inserts
# after the reference base. Each lineage is a shipped clade (data/sars-cov-2.clades.tsv): its
# genomes carry the clade's whole signature (see :func:`changes`) plus these well-known changes
# of it (D614G's companions, H69-V70 deletion, E484K, N501Y, L452R, T478K, ins214EPE, ...).
_ANCESTRAL = ((241, "C", "T"), (3037, "C", "T"))
LINEAGES: dict[str, tuple[tuple[int, str, str], ...]] = {
    "20A": _ANCESTRAL,
    "20I": (*_ANCESTRAL, (21765, "TACATG", ""), (23604, "C", "A")),
    "20H": (*_ANCESTRAL, (22813, "G", "T")),
    "21A": (*_ANCESTRAL, (22917, "T", "G"), (22995, "C", "A"), (23604, "C", "G")),
    "21K": (
        *_ANCESTRAL,
        (21765, "TACATG", ""),
        (22204, "T", "TGAGCCAGAA"),
        (22995, "C", "A"),
        (23063, "A", "T"),
    ),
    "22B": (*_ANCESTRAL, (21765, "TACATG", ""), (22917, "T", "G"), (22995, "C", "A")),
}
COUNTRIES = {
    "BE": ("Belgium", ("Brussels", "Antwerp", "Ghent", "Liège")),
    "FI": ("Finland", ("Helsinki", "Tampere", "Turku", "Oulu")),
    "SE": ("Sweden", ("Stockholm", "Gothenburg", "Malmö", "Uppsala")),
}
TECHNOLOGIES = ("Illumina NovaSeq 6000", "Oxford Nanopore GridION", "Illumina MiSeq")


@dataclass(frozen=True)
class SyntheticSample:
    sequence_id: str
    lineage: str
    sequence: str
    metadata: dict[str, str]


def outbreak(
    organism: Organism, country: str, count: int, *, seed: int = 1, start: date = date(2021, 1, 4)
) -> list[SyntheticSample]:
    """``count`` samples from ``country`` (a code of :data:`COUNTRIES`), collected over a year
    from ``start``, the lineages succeeding each other as they did."""
    rng = random.Random(f"{country}-{seed}")
    name, regions = COUNTRIES[country]
    lab = f"{name} National Reference Laboratory"
    samples = []
    for number in range(1, count + 1):
        day = start + timedelta(days=int(365 * number / (count + 1)))
        lineage = _lineage_on(day - start, rng)
        sequence_id = f"{country}-{seed:02d}-{number:05d}"
        metadata = {
            "sequence_id": sequence_id,
            "virus_name": f"hCoV-19/{name}/{sequence_id}/{day.year}",
            "collection_date": day.isoformat(),
            "location": f"Europe / {name} / {rng.choice(regions)}",
            "host": "Human",
            "originating_lab": f"{name} Hospital Virology {1 + number % 3}",
            "originating_lab_address": f"{1 + number % 3} Hospital Street, {regions[0]}",
            "submitting_lab": lab,
            "submitting_lab_address": f"1 Science Park, {regions[0]}",
            "authors": f"A. {name[:3]}sson, B. Virolog, C. Sequencer{number % 5}",
            "sequencing_technology": rng.choice(TECHNOLOGIES),
            "assembly_method": "iVar 1.4",
            "coverage": f"{rng.randint(200, 3000)}x",
        }
        sequence = genome(organism.reference, changes(organism, lineage), rng)
        samples.append(SyntheticSample(sequence_id, lineage, sequence, metadata))
    return samples


def changes(organism: Organism, lineage: str) -> tuple[tuple[int, str, str], ...]:
    """The edits making a genome of ``lineage``: its clade's signature and its known changes."""
    planted = {change[0]: change for change in LINEAGES[lineage]}
    for mutation in signature(organism.clades, lineage):
        site, ref, alt = int(mutation[1:-1]), mutation[0], mutation[-1]
        planted.setdefault(site, (site, ref, "" if alt == "-" else alt))
    return tuple(sorted(planted.values()))


def _lineage_on(since: timedelta, rng: random.Random) -> str:
    """Lineages in the order they dominated, with some overlap."""
    order = tuple(LINEAGES)
    step = 365 / len(order)
    phase = min(len(order) - 1, max(0, int(since.days / step + rng.uniform(-0.6, 0.6))))
    return order[phase]


def genome(reference: str, changes: tuple[tuple[int, str, str], ...], rng: random.Random) -> str:
    """The reference with ``changes``, two private substitutions, dropouts and trimmed ends."""
    private = []
    planted = {position for position, _, _ in changes}
    for position in rng.sample(range(1000, len(reference) - 1000), 2):
        if any(abs(position - other) < 12 for other in planted):
            continue  # keep edits apart: overlapping ones would not mean what they say
        ref = reference[position - 1]
        private.append((position, ref, rng.choice([b for b in "ACGT" if b != ref])))
    edits = sorted(set(changes) | set(private), key=lambda change: change[0])
    pieces, cursor = [], 0
    for position, ref, alt in edits:
        pieces.append(reference[cursor : position - 1])
        pieces.append(alt)
        cursor = position - 1 + len(ref)
    pieces.append(reference[cursor:])
    sequence = list("".join(pieces))
    for _ in range(rng.randint(0, 2)):  # amplicon dropouts, outside the spike gene here
        length = rng.randint(150, 300)
        begin = rng.choice((rng.randint(2000, 21000), rng.randint(25500, len(sequence) - 2000)))
        if any(begin - 400 < site < begin + length + 400 for site in planted):
            continue  # keep the lineage's changes readable, so that its clade is assigned
        sequence[begin : begin + length] = ["N"] * length
    head, tail = rng.randint(0, 60), rng.randint(0, 80)
    return "".join(sequence[head : len(sequence) - tail])


def write_submission(samples: list[SyntheticSample], folder: Path) -> tuple[Path, Path]:
    """The FASTA and the TSV sheet of ``samples``, as a lab would send them."""
    folder.mkdir(parents=True, exist_ok=True)
    fasta, sheet = folder / "sequences.fasta", folder / "metadata.tsv"
    with fasta.open("w", encoding="ascii") as out:
        for sample in samples:
            out.write(f">{sample.sequence_id}\n")
            out.writelines(_lines(sample.sequence))
    fields = list(samples[0].metadata) if samples else ["sequence_id"]
    with sheet.open("w", encoding="utf-8") as out:
        out.write("\t".join(fields) + "\n")
        for sample in samples:
            out.write("\t".join(sample.metadata[field] for field in fields) + "\n")
    return fasta, sheet


def _lines(sequence: str, width: int = 70) -> Iterator[str]:
    for start in range(0, len(sequence), width):
        yield sequence[start : start + width] + "\n"
