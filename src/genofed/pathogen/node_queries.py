"""LAPIS queries on a node over its own released records: one in-memory store per organism.

The stores (:class:`~genofed.pathogen.serving.LiveStores`) are filled in the background when the
node starts and caught up by the change sequence
(:func:`~genofed.pathogen.curation.released_records` with ``since``): at once after a release or
revocation through this process, and about a second late for changes made by another process.
Sequences come from the node's database; downloading them needs a registered user who accepted
the terms (and the restricted-use terms when the selection holds restricted records), and every
download is audited.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from genofed import db
from genofed.access.http import bearer_identity
from genofed.pathogen import curation
from genofed.pathogen.lapis import lapis_router, parse_filter, read_params
from genofed.pathogen.organisms import Organism
from genofed.pathogen.record import PathogenRecord
from genofed.pathogen.registry import get_organism, organism_names
from genofed.pathogen.serving import LiveStores, download_refusal
from genofed.pathogen.store import PathogenStore
from genofed.pathogen.variant_query import QueryError

LAPIS_PREFIX = "/lapis/{organism}"  # under /pathogen, as on the hub


class NodeQueries(LiveStores):
    """The node's query stores, kept up with its releases and revocations."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._seq = 0  # the newest change read

    def _catch_up(self, session: Session) -> int:
        seq = curation.data_version(session)
        if seq <= self._seq:
            return 0
        by_organism: dict[str, list[PathogenRecord]] = {}
        for record in curation.released_records(session, since=self._seq, all_versions=True):
            by_organism.setdefault(record.organism, []).append(record)
        for name, records in by_organism.items():
            self._store_for(session, name).add_many(records)
        self._seq = seq
        return sum(len(records) for records in by_organism.values())

    def _organism(self, session: Session, name: str) -> Organism | None:
        return get_organism(session, name) if name in organism_names(session) else None


class NodeSequences:
    """The genomes of the node's released records, for LAPIS's sequence routes."""

    def __init__(self, engine: Engine, organism: Organism) -> None:
        self.engine = engine
        self.organism = organism

    def unaligned(self, accession_version: str) -> str:
        return self._one(accession_version, aligned=False)

    def aligned(self, accession_version: str) -> str:
        return self._one(accession_version, aligned=True)

    def _one(self, accession_version: str, *, aligned: bool) -> str:
        with db.session_scope(self.engine) as session:
            [(_, sequence)] = curation.sequences(session, [accession_version], aligned=aligned)
            return sequence


def _queries(request: Request) -> NodeQueries:
    queries: NodeQueries = request.app.state.pathogen_queries
    return queries


def _store(request: Request) -> PathogenStore:
    return _queries(request).store_or_404(request.path_params["organism"])


def _sequences(request: Request) -> NodeSequences:
    return NodeSequences(_queries(request).engine, _store(request).organism)


async def _downloader(request: Request) -> str:
    """A registered user who accepted the terms (and the restricted-use terms when the selection
    holds restricted records); allowed and denied downloads are audited."""
    identity = await bearer_identity(request)
    store = _store(request)
    try:
        chosen = parse_filter(await read_params(request), store)
    except QueryError:
        return identity.subject  # the route answers 400 with the details
    detail = {"path": request.url.path, "query": str(request.url.query)[:500]}

    def check() -> str | None:
        with db.session_scope(db.for_writing(_queries(request).engine)) as session:
            subject = identity.subject
            return download_refusal(
                session, subject, store, chosen, where="at this node", request_detail=detail
            )

    problem = await run_in_threadpool(check)
    if problem:
        raise HTTPException(403, problem)
    return identity.subject


lapis_routes = lapis_router(_store, sequences=_sequences, sequence_access=_downloader)
