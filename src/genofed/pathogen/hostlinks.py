"""Host-pathogen links: a pathogen record names the human sample it came from, when that sample
belongs to a controlled dataset on the same node (COVID-19 host genomics and the like).

The link itself is sensitive (it ties a public genome to a person's controlled data), so it is
shown only to users with an active grant for that dataset; to everyone else the record has no
link at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.access import audit
from genofed.access.visas import active_grants
from genofed.db import MetadataLink, ObjectKind, PathogenEntry
from genofed.metadata.accessions import InvalidAccession
from genofed.metadata.datasets import find_object
from genofed.metadata.errors import MetadataError
from genofed.pathogen.entries import InvalidInput, NotAllowed, NotFound, versions

MAX_DEPTH = 3  # dataset → run/analysis → experiment → sample


def link_host_sample(
    session: Session,
    country: str,
    accession: str,
    sample: str,
    dataset: str,
    actor: str,
    *,
    curator: bool,
) -> list[PathogenEntry]:
    """Link every version of the record ``accession`` to ``sample`` of ``dataset``; only the
    record's submitter or a curator may, and the sample must be in the dataset."""
    entries = versions(session, accession)
    if not curator and entries[-1].submitter != actor:
        raise NotAllowed(f"{accession} is {entries[-1].submitter}'s: only they or a curator may")
    try:
        sample_row = find_object(session, country, ObjectKind.SAMPLE, sample)
        dataset_row = find_object(session, country, ObjectKind.DATASET, dataset)
    except (MetadataError, InvalidAccession) as error:
        raise NotFound(str(error)) from None
    if sample_row.id not in _reachable(session, dataset_row.id):
        raise InvalidInput(
            f"sample {sample} is not in dataset {dataset}: name the dataset whose runs or "
            "analyses hold the sample"
        )
    for entry in entries:
        entry.host_sample, entry.host_dataset = sample_row.accession, dataset_row.accession
    audit.record(
        session,
        actor=actor,
        action="pathogen.host_link",
        dataset=dataset_row.accession,
        file=accession,
        detail={"sample": sample_row.accession or ""},
    )
    return entries


def _reachable(session: Session, start: str) -> set[str]:
    """Objects a dataset reaches through its links (runs → experiments → samples, ...)."""
    seen, frontier = {start}, {start}
    for _ in range(MAX_DEPTH):
        targets = set(
            session.scalars(
                select(MetadataLink.target_id).where(MetadataLink.source_id.in_(frontier))
            )
        )
        frontier = targets - seen
        seen |= frontier
        if not frontier:
            break
    return seen


def visible_link(session: Session, subject: str | None, entry: PathogenEntry) -> dict[str, Any]:
    """``{"host_sample": ..., "host_dataset": ...}`` for a user approved for the dataset, else
    ``{}``: the others do not learn that a link exists."""
    if not entry.host_sample or not entry.host_dataset or subject is None:
        return {}
    granted = {grant.dataset_accession for grant in active_grants(session, subject)}
    if entry.host_dataset not in granted:
        return {}
    return {"host_sample": entry.host_sample, "host_dataset": entry.host_dataset}
