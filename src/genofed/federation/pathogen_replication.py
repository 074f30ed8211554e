"""A node's side of pathogen replication: push released records and revocations to the hub.

Every release and revocation on the node takes the next number of the node's change sequence
(``change_seq``, see :mod:`genofed.pathogen.entries`). The hub keeps, with the records it holds,
the number up to which it holds the node's changes (its cursor) and tells it in every heartbeat
reply. Each sync cycle then sends what comes after, oldest first, in signed batches of one
organism (:class:`~genofed.federation.pathogen_hub.Replication`): each record as
:meth:`~genofed.pathogen.record.PathogenRecord.to_json` with its unaligned sequence packed
against the organism's reference. The hub's reply carries its cursor after the batch, and the
node goes on from there. Nothing is kept on the node: a node that was stopped, a hub that was
down or restored from a backup, a batch lost on the way: each is one more cycle sending from the
hub's cursor, and the hub applies a record twice without harm (highest version, sticky
revocation).

This relies on change numbers being taken in commit order, so that no change commits below a
cursor the hub already passed: SQLite's single writer guarantees it; on PostgreSQL, releases
and revocations must take their number under a lock held until commit.

Why the sequences travel with the records rather than being fetched from the node when asked:
packed against the reference they cost ~150 bytes each, the hub then answers sequence
downloads for the whole federation while a node is down, and no query at the hub has to wait on
a node's link.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from genofed import db
from genofed.db.models import PathogenEntry
from genofed.errors import GenofedError
from genofed.federation.pathogen_hub import (
    MAX_BATCH,
    REPLICATE_PATH,
    Replicated,
    Replication,
    encode,
    reference_digest,
)
from genofed.pathogen.curation import data_version, record_of
from genofed.pathogen.entries import PUBLIC_STATES, decompress
from genofed.pathogen.record import PathogenRecord
from genofed.pathogen.registry import get_organism

log = logging.getLogger(__name__)
# A cycle stops sending after this long and leaves the rest to the next ones: the heartbeat of
# each cycle must reach the hub before it calls the node late (hub.late_after_seconds, 90 s).
SECONDS_PER_SYNC = 20.0
MAX_BATCH_BYTES = 4 * 1024 * 1024  # the hub reads signed bodies up to 8 MiB


class ReplicationError(GenofedError):
    """The hub refused a batch or cannot be reached; the node tries again at its next sync."""


@dataclass(frozen=True)
class Change:
    """One release or revocation of the node, as the hub is sent it."""

    change_seq: int
    record: PathogenRecord
    sequence: str | None  # unaligned; None when the node has none to give


def node_changes(session: Session, after: int, limit: int) -> list[Change]:
    """The node's releases and revocations after ``after``, oldest first: every public
    version, since each was a change (the hub keeps the highest)."""
    entries = session.scalars(
        select(PathogenEntry)
        .where(PathogenEntry.state.in_(PUBLIC_STATES), PathogenEntry.change_seq > after)
        .order_by(PathogenEntry.change_seq)
        .limit(limit)
    )
    return [
        Change(int(entry.change_seq or 0), record_of(entry), decompress(entry.sequence))
        for entry in entries
    ]


@dataclass(frozen=True)
class ReplicationReport:
    """What :func:`replicate` did in one sync."""

    records: int = 0  # records sent
    batches: int = 0
    cursor: int = 0  # the hub's cursor after them


def replicate(
    engine: Engine,
    client: httpx.Client,
    held: Mapping[str, Any] | None,
) -> ReplicationReport:
    """Send the hub the node's changes after its cursor ``held`` (the heartbeat reply's
    ``pathogen``; None from a hub that does not replicate pathogen records: nothing is sent).

    Raises :class:`ReplicationError` when the hub refuses a batch or cannot be reached, or
    holds more of this node's changes than the node has.
    """
    if not held:
        return ReplicationReport()
    position = int(held["cursor"])
    _check_hub_not_ahead(engine, position)
    sent = batches = 0
    deadline = time.monotonic() + SECONDS_PER_SYNC
    while time.monotonic() < deadline:
        with db.session_scope(engine) as session:
            pending = node_changes(session, position, MAX_BATCH)
            if not pending:
                break
            batch = _batch(session, position, pending)
        reply = _push(client, batch)
        sent += len(batch.records)
        batches += 1
        _warn_once(reply.get("unqueryable"))
        # the hub's cursor: the batch's end, or where the hub really is if it was not where the
        # batch followed (it lost records, or another push went ahead); go on from there
        position = int(reply["cursor"])
    if sent:
        log.info("replicated %d pathogen records to the hub (%d batches)", sent, batches)
    return ReplicationReport(sent, batches, position)


_warned: set[str] = set()


def _warn_once(unqueryable: str | None) -> None:
    """The hub keeps records it cannot query (its organism or reference differs): say so once
    per process, not at every batch."""
    if unqueryable and unqueryable not in _warned:
        _warned.add(unqueryable)
        log.warning("the hub keeps but cannot query some records: %s", unqueryable)


def _check_hub_not_ahead(engine: Engine, position: int) -> None:
    """The hub's cursor cannot be past the node's newest change, unless the node's database
    was replaced under the same identity: then its new records would never be sent."""
    with db.session_scope(engine) as session:
        newest = data_version(session)
    if position > newest:
        raise ReplicationError(
            f"the hub holds this node's pathogen changes up to number {position}, but the "
            f"node's newest is {newest}: was the node's database replaced? The hub's operator "
            "removes the node ('genofed hub remove'); it then joins again and, once approved, "
            "sends all its records"
        )


def _batch(session: Session, after: int, pending: list[Change]) -> Replication:
    """The leading run of ``pending`` that is of one organism and fits in one push."""
    name = pending[0].record.organism
    species = get_organism(session, name)
    items: list[Replicated] = []
    through, size = after, 0
    for change in pending:
        if change.record.organism != name or size > MAX_BATCH_BYTES:
            break
        item = Replicated(
            record=change.record.to_json(),
            sequence=encode(species, change.sequence) if change.sequence else None,
        )
        size += len(item.model_dump_json())
        items.append(item)
        through = change.change_seq
    return Replication(
        organism=name,
        reference=reference_digest(species),
        after=after,
        through=through,
        records=items,
    )


def _push(client: httpx.Client, batch: Replication) -> dict[str, Any]:
    try:
        response = client.post(REPLICATE_PATH, content=batch.model_dump_json(), headers=_JSON)
    except httpx.HTTPError as error:
        raise ReplicationError(
            f"the hub at {client.base_url} cannot be reached ({type(error).__name__}): the node "
            "sends its pathogen records at its next sync"
        ) from None
    if response.status_code != 200:
        try:
            detail = str(response.json().get("detail"))
        except ValueError:
            detail = response.text[:200]
        raise ReplicationError(
            f"the hub refused {len(batch.records)} {batch.organism} records "
            f"({response.status_code}): {detail}"
        )
    reply: dict[str, Any] = response.json()
    return reply


_JSON = {"Content-Type": "application/json"}
