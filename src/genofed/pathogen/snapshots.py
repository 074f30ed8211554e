"""Snapshot sets: a citable, frozen list of accession.versions with their acknowledgements.

In the spirit of GISAID's EPI_SET: a paper cites one identifier (``GFBEE00000000007`` + check
character) instead of thousands of accessions, and the set says exactly which versions were
used and whom to thank, whatever happens to the records later (a revoked member stays listed,
flagged when the set is shown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.db import PathogenEntry, PathogenSnapshot, PathogenState
from genofed.metadata.accessions import PATHOGEN_SET, InvalidAccession, allocate, parse
from genofed.pathogen.acknowledgements import table
from genofed.pathogen.entries import Conflict, InvalidInput, NotFound, by_accession_version

MAX_MEMBERS = 100_000
MAX_TITLE = 255


def create_snapshot(
    session: Session, country: str, creator: str, title: str, names: Sequence[str]
) -> PathogenSnapshot:
    """Freeze the released versions ``names`` (``accession.version``, or an accession for its
    newest version) under a new identifier; revoked or unreleased ones are refused."""
    title = " ".join(title.split())
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"give the set a title of 1 to {MAX_TITLE} characters, e.g. the paper's")
    unique = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if not unique or len(unique) > MAX_MEMBERS:
        raise InvalidInput(f"a snapshot set holds 1 to {MAX_MEMBERS} accession.versions")
    entries = by_accession_version(session, unique)
    revoked = [f"{e.accession}.{e.version}" for e in entries if e.state == PathogenState.REVOKED]
    if revoked:
        raise Conflict(f"revoked, so not citable: {', '.join(revoked[:10])}; leave them out")
    members = sorted({f"{e.accession}.{e.version}" for e in entries})
    identifier = str(allocate(session, country, PATHOGEN_SET))
    snapshot = PathogenSnapshot(
        identifier=identifier,
        title=title,
        created_by=creator,
        members=members,
        acknowledgements=table(sorted(entries, key=lambda e: (e.accession, e.version))),
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def get_snapshot(session: Session, identifier: str) -> PathogenSnapshot:
    try:
        parsed = parse(identifier)
    except InvalidAccession as error:
        raise InvalidInput(str(error)) from None
    if parsed.kind != PATHOGEN_SET:
        raise InvalidInput(f"{identifier} is not a snapshot set's identifier (GF..E...)")
    snapshot = session.get(PathogenSnapshot, str(parsed))
    if snapshot is None:
        raise NotFound(f"no snapshot set {identifier} on this node: check the identifier")
    return snapshot


def snapshot_view(session: Session, snapshot: PathogenSnapshot) -> dict[str, Any]:
    """The set as cited, with the members revoked since then named."""
    accessions = {member.rsplit(".", 1)[0] for member in snapshot.members}
    revoked = set()
    for chunk in _chunks(sorted(accessions), 500):
        rows = session.execute(
            select(PathogenEntry.accession, PathogenEntry.version).where(
                PathogenEntry.accession.in_(chunk),
                PathogenEntry.state == PathogenState.REVOKED,
            )
        )
        revoked |= {f"{row.accession}.{row.version}" for row in rows}
    return {
        "identifier": snapshot.identifier,
        "title": snapshot.title,
        "created_by": snapshot.created_by,
        "created_at": snapshot.created_at.isoformat(),
        "size": len(snapshot.members),
        "members": snapshot.members,
        "revoked_since": sorted(revoked & set(snapshot.members)),
        "acknowledgements": snapshot.acknowledgements,
    }


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
