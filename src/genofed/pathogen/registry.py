"""The organisms a node accepts: the shipped ones, and those its operators added.

Operators' organisms are stored in the database (reference FASTA, GFF3, schema), so that they
survive restarts and every process of the node sees them; they are checked with the same
:func:`~genofed.pathogen.organisms.build_organism` as the shipped ones before being stored.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.db import PathogenOrganism
from genofed.pathogen.clades import CladeError, parse_clades
from genofed.pathogen.entries import Conflict, InvalidInput, NotFound
from genofed.pathogen.organisms import (
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    Organism,
    OrganismError,
    build_organism,
    builtin_organisms,
    load_organism,
)

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def get_organism(session: Session, name: str) -> Organism:
    """A shipped or added organism by name (404 naming the known ones otherwise)."""
    if name in builtin_organisms():
        return load_organism(name)
    row = session.get(PathogenOrganism, name)
    if row is None:
        known = ", ".join(organism_names(session))
        raise NotFound(f"no organism named {name!r} on this node: choose one of {known}")
    return _built(
        row.name,
        row.reference_fasta,
        row.annotation_gff3,
        row.earliest_date,
        tuple(row.required),
        tuple(row.optional),
        row.clades_tsv,
    )


@lru_cache(maxsize=32)
def _built(
    name: str,
    fasta: str,
    gff3: str,
    earliest: date,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    clades: str | None,
) -> Organism:
    # keyed by the stored content, so a changed row is rebuilt, an unchanged one is not
    organism = build_organism(
        name, fasta.encode(), gff3, f"{name}.fasta", f"{name}.gff3", earliest, required, optional
    )
    if clades is None:
        return organism
    return replace(organism, clades=parse_clades(clades, f"{name}.clades.tsv", organism.reference))


def organism_names(session: Session) -> list[str]:
    added = session.scalars(select(PathogenOrganism.name).order_by(PathogenOrganism.name))
    return [*builtin_organisms(), *added]


def add_organism(
    session: Session,
    name: str,
    fasta: bytes,
    gff3: str,
    *,
    earliest_date: date,
    added_by: str,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    optional: tuple[str, ...] = OPTIONAL_FIELDS,
    clades: str | None = None,
) -> Organism:
    """Check and store an operator's organism, with its clade tree if ``clades`` (a clades
    TSV, see :mod:`~genofed.pathogen.clades`) is given; a taken name is a conflict (409)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"organism name {name!r}: use 2 to 64 lower-case letters, digits, '.', '_' or '-', "
            "e.g. mpox-clade-ib"
        )
    if name in organism_names(session):
        raise Conflict(f"an organism named {name!r} exists already: choose another name")
    try:
        text = fasta.decode("ascii")
        organism = build_organism(
            name, fasta, gff3, f"{name}.fasta", f"{name}.gff3", earliest_date, required, optional
        )
        if clades is not None:
            tree = parse_clades(clades, f"{name}.clades.tsv", organism.reference)
            organism = replace(organism, clades=tree)
    except UnicodeDecodeError:
        raise InvalidInput(f"the reference of {name!r} is not ASCII text: send a FASTA") from None
    except (OrganismError, CladeError) as error:
        raise InvalidInput(str(error)) from None
    session.add(
        PathogenOrganism(
            name=name,
            reference_fasta=text,
            annotation_gff3=gff3,
            earliest_date=earliest_date,
            required=list(organism.schema.required),
            optional=list(organism.schema.optional),
            clades_tsv=clades,
            added_by=added_by,
        )
    )
    session.flush()
    return organism


def describe(organism: Organism) -> dict[str, object]:
    """What a submitter needs to know of an organism."""
    return {
        "name": organism.name,
        "reference": organism.reference_id,
        "length": len(organism.reference),
        "genes": [feature.name for feature in organism.coding],
        "required": list(organism.schema.required),
        "optional": list(organism.schema.optional),
        "earliest_date": organism.schema.earliest_date.isoformat(),
        "clades": [clade.name for clade in organism.clades],
    }
