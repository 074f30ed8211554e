"""Organisms: a reference sequence, its gene annotation and the metadata a submission needs.

Everything organism-specific lives here so that validation, alignment and mutation calling stay
generic: operators add an organism with :func:`organism_from_files` rather than new code. The
reference and annotation are checked when loaded (one sequence, IUPAC bases, features inside the
sequence, coding lengths a multiple of 3), because a bad reference would silently corrupt every
later mutation call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

from genofed.errors import GenofedError
from genofed.pathogen.clades import Clade, shipped_clades
from genofed.pathogen.fasta import FastaRecord, iter_fasta
from genofed.pathogen.problems import Problem

# GISAID / PHA4GE-style fields every organism asks for; an organism may ask for more.
REQUIRED_FIELDS = (
    "virus_name",
    "collection_date",
    "location",
    "host",
    "originating_lab",
    "originating_lab_address",
    "submitting_lab",
    "submitting_lab_address",
    "authors",
    "sequencing_technology",
)
OPTIONAL_FIELDS = (
    "assembly_method",
    "coverage",
    "passage",
    "specimen_source",
    "sex",
    "age",
    "originating_lab_sample_id",
    "submitting_lab_sample_id",
    "comment",
)


class OrganismError(GenofedError):
    """An organism's reference or annotation is unusable; the message names the file and fix."""


@dataclass(frozen=True)
class MetadataSchema:
    """Which metadata fields a submission must fill, which it may, and the earliest plausible
    collection date (a sample cannot predate the virus's emergence)."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    earliest_date: date

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class Feature:
    """An annotated gene or CDS, 1-based inclusive; ``parts`` for a CDS split over several rows
    (e.g. a ribosomal frameshift), in order."""

    name: str
    kind: str
    start: int
    end: int
    strand: str
    parts: tuple[tuple[int, int], ...]

    @property
    def length(self) -> int:
        return sum(end - start + 1 for start, end in self.parts)


@dataclass(frozen=True)
class Organism:
    """A pathogen we accept submissions for."""

    name: str
    reference_id: str
    reference: str
    features: tuple[Feature, ...]
    schema: MetadataSchema
    clades: tuple[Clade, ...] = ()  # its clade tree, parents first; none: no clade assigned

    @property
    def genes(self) -> dict[str, Feature]:
        """Features by name (genes and CDS alike, the CDS winning a clash)."""
        by_name = {f.name: f for f in self.features if f.kind != "CDS"}
        by_name.update({f.name: f for f in self.features if f.kind == "CDS"})
        return by_name

    @property
    def coding(self) -> tuple[Feature, ...]:
        """The coding sequences: CDS rows, or, as in Nextclade annotations without any, genes."""
        cds = tuple(f for f in self.features if f.kind == "CDS")
        return cds or tuple(f for f in self.features if f.kind == "gene")


_BUILTIN = {
    "sars-cov-2": date(2019, 11, 1),  # first cases Dec 2019; a month's margin
    "flu-h3n2-ha": date(1968, 1, 1),  # A(H3N2) emerged in the 1968 pandemic
}


def builtin_organisms() -> tuple[str, ...]:
    """The names of the organisms shipped with genofed."""
    return tuple(_BUILTIN)


@cache
def load_organism(name: str) -> Organism:
    """A shipped organism by name (see :func:`builtin_organisms`)."""
    if name not in _BUILTIN:
        raise OrganismError(
            f"no organism named {name!r}; choose one of {', '.join(_BUILTIN)}, "
            "or add one with organism_from_files"
        )
    data = resources.files("genofed.pathogen") / "data"
    fasta = (data / f"{name}.fasta").read_bytes()
    gff3 = (data / f"{name}.gff3").read_text("utf-8")
    organism = build_organism(name, fasta, gff3, f"{name}.fasta", f"{name}.gff3", _BUILTIN[name])
    return replace(organism, clades=shipped_clades(name, organism.reference))


def organism_from_files(
    name: str,
    fasta: Path,
    gff3: Path,
    *,
    earliest_date: date,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    optional: tuple[str, ...] = OPTIONAL_FIELDS,
) -> Organism:
    """An operator's own organism from a reference FASTA and a GFF3 annotation."""
    try:
        fasta_bytes = fasta.read_bytes()
        gff3_text = gff3.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OrganismError(f"cannot read the organism {name!r}'s files: {error}") from error
    return build_organism(
        name, fasta_bytes, gff3_text, fasta.name, gff3.name, earliest_date, required, optional
    )


def build_organism(
    name: str,
    fasta: bytes,
    gff3: str,
    fasta_name: str,
    gff3_name: str,
    earliest_date: date,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    optional: tuple[str, ...] = OPTIONAL_FIELDS,
) -> Organism:
    """Check and assemble an organism from file contents."""
    record = _single_record(fasta, fasta_name)
    features = parse_gff3(gff3, gff3_name, record.id, len(record.sequence))
    missing = [field for field in REQUIRED_FIELDS[:3] if field not in required]
    if missing:
        raise OrganismError(
            f"organism {name!r} must require {', '.join(missing)}: validation depends on them"
        )
    schema = MetadataSchema(
        required, tuple(f for f in optional if f not in required), earliest_date
    )
    return Organism(name, record.id, record.sequence, features, schema)


def _single_record(fasta: bytes, fasta_name: str) -> FastaRecord:
    """The one, clean sequence of a reference FASTA."""
    problems: list[Problem] = []
    records = list(iter_fasta(fasta.splitlines(keepends=True), fasta_name, problems))
    if len(records) != 1:
        raise OrganismError(
            f"{fasta_name} holds {len(records)} sequences; a reference holds exactly one"
        )
    found = problems + list(records[0].problems)
    if found:
        raise OrganismError(f"{fasta_name} is not a usable reference: {found[0]}")
    return records[0]


def parse_gff3(text: str, name: str, seqid: str, length: int) -> tuple[Feature, ...]:
    """Genes and CDS of a GFF3 annotation, checked against the reference they describe.

    A CDS in several rows sharing an ID (or name) becomes one feature with several parts.
    """
    rows: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, key, start, end, strand = _gff3_row(line, name, number, seqid, length)
        if kind in ("gene", "CDS"):
            rows.setdefault((kind, key), []).append((start, end, strand))
    features = tuple(_feature(kind, key, parts) for (kind, key), parts in rows.items())
    if not features:
        raise OrganismError(f"{name} annotates no gene or CDS; add at least one")
    coding = [f for f in features if f.kind == "CDS"] or list(features)
    for feature in coding:
        if feature.length % 3:
            raise OrganismError(
                f"{name}: the coding sequence {feature.name} is {feature.length} nt long, not a "
                "multiple of 3; check its start and end"
            )
    return features


def _gff3_row(
    line: str, name: str, number: int, seqid: str, length: int
) -> tuple[str, str, int, int, str]:
    """One GFF3 row: type, name, start, end, strand; coordinates must lie in the reference."""
    where = f"{name} line {number}"
    cells = line.split("\t")
    if len(cells) != 9:
        raise OrganismError(f"{where} has {len(cells)} tab-separated columns; GFF3 has 9")
    if cells[0] not in (".", seqid):
        raise OrganismError(
            f"{where} annotates sequence {cells[0]!r}, not the reference {seqid!r}; "
            "use the reference's id (or '.')"
        )
    try:
        start, end = int(cells[3]), int(cells[4])
    except ValueError:
        raise OrganismError(f"{where}: start and end must be whole numbers") from None
    if not 1 <= start <= end <= length:
        raise OrganismError(
            f"{where}: {start}..{end} is not within the reference (1..{length}); "
            "coordinates are 1-based, start ≤ end"
        )
    if cells[6] not in "+-.":
        raise OrganismError(f"{where}: strand {cells[6]!r} must be '+', '-' or '.'")
    attributes = _attributes(cells[8])
    key = next(
        (attributes[k] for k in ("gene_name", "Name", "gene", "ID") if attributes.get(k)), None
    )
    if key is None:
        raise OrganismError(f"{where} has no name; add Name=... (or gene_name=...)")
    return cells[2], key, start, end, cells[6]


def _attributes(cell: str) -> dict[str, str]:
    """GFF3 attributes ``key=value;...``; quotes around values (Nextclade writes them) dropped."""
    pairs = (item.split("=", 1) for item in cell.split(";") if "=" in item)
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def _feature(kind: str, name: str, parts: list[tuple[int, int, str]]) -> Feature:
    spans = tuple((start, end) for start, end, _ in parts)
    return Feature(
        name, kind, min(s for s, _ in spans), max(e for _, e in spans), parts[0][2], spans
    )
