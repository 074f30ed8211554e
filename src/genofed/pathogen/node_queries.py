"""LAPIS queries on a node over its own released records: one in-memory store per organism.

The stores are filled in the background when the node starts and caught up by the change
sequence (:func:`~genofed.pathogen.curation.released_records` with ``since``): at once after a
release or revocation through this process, and at most a second late for changes made by
another process of the node. Sequences come from the node's database; downloading them needs a
registered user who accepted the terms (and the restricted-use terms when the selection holds
restricted records), and every download is audited.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from fastapi import HTTPException, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from genofed import db
from genofed.access import audit
from genofed.access.http import bearer_identity
from genofed.pathogen import curation, terms
from genofed.pathogen.lapis import lapis_router, parse_filter, read_params
from genofed.pathogen.organisms import Organism
from genofed.pathogen.record import OPEN, RESTRICTED, PathogenRecord
from genofed.pathogen.registry import get_organism, organism_names
from genofed.pathogen.store import PathogenStore
from genofed.pathogen.variant_query import QueryError

log = logging.getLogger(__name__)
CATCH_UP_SECONDS = 1.0
LAPIS_PREFIX = "/lapis/{organism}"  # under /pathogen, as on the hub


class NodeQueries:
    """The node's query stores, kept up with its releases and revocations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._stores: dict[str, PathogenStore] = {}
        self._seq = 0
        self._checked = 0.0
        self._refreshing = threading.Lock()

    def start(self) -> NodeQueries:
        """Fill the stores in the background: the node answers other requests meanwhile."""
        threading.Thread(target=self._load, name="pathogen-queries", daemon=True).start()
        return self

    def _load(self) -> None:
        try:
            started = time.monotonic()
            read = self.refresh()
            log.info("loaded %d pathogen records in %.1f s", read, time.monotonic() - started)
        except Exception:  # queries retry the refresh
            log.exception("loading the pathogen records into the query stores failed")

    def store(self, organism: str) -> PathogenStore | None:
        """The store of ``organism``, caught up (None: the node has no such organism)."""
        if time.monotonic() - self._checked > CATCH_UP_SECONDS:
            self.refresh(wait=False)
        store = self._stores.get(organism)
        if store is None:
            with db.session_scope(self.engine) as session:
                if organism not in organism_names(session):
                    return None
                species = get_organism(session, organism)
            store = self._stores.setdefault(organism, PathogenStore(species))
        return store

    def refresh(self, *, wait: bool = True) -> int:
        """Read what was released or revoked since the last refresh; how many records.
        ``wait=False`` returns at once (0) when another thread is refreshing."""
        if not self._refreshing.acquire(blocking=wait):
            return 0
        try:
            self._checked = time.monotonic()
            read = 0
            with db.session_scope(self.engine) as session:
                seq = curation.data_version(session)
                if seq <= self._seq:
                    return 0
                by_organism: dict[str, list[PathogenRecord]] = {}
                for record in curation.released_records(
                    session, since=self._seq, all_versions=True
                ):
                    by_organism.setdefault(record.organism, []).append(record)
                    read += 1
                for name, records in by_organism.items():
                    if name not in self._stores:
                        self._stores[name] = PathogenStore(get_organism(session, name))
                    self._stores[name].add_many(records)
                self._seq = seq
            return read
        finally:
            self._refreshing.release()


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
    name = request.path_params["organism"]
    store = _queries(request).store(name)
    if store is None:
        with db.session_scope(_queries(request).engine) as session:
            known = ", ".join(organism_names(session))
        raise HTTPException(404, f"this node has no organism {name[:64]!r}: choose one of {known}")
    return store


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
    asked = chosen.equals.get("dataUseTerms")
    restricted = (
        None
        if asked is not None and RESTRICTED not in asked
        else replace(chosen, equals={**chosen.equals, "dataUseTerms": (RESTRICTED,)})
    )

    def check() -> str | None:
        with db.session_scope(db.for_writing(_queries(request).engine)) as session:
            held = terms.accepted(session, identity.subject)
            problem = None
            if OPEN not in held:
                problem = (
                    f"{identity.subject} has not accepted the pathogen data-use terms: read "
                    "them at GET /pathogen/terms and accept with POST /pathogen/terms/accept"
                )
            elif (
                RESTRICTED not in held
                and restricted is not None
                and store.aggregated(restricted).data[0]["count"]
            ):
                problem = (
                    "the selection holds records under restricted use: accept the "
                    'restricted-use terms (POST /pathogen/terms/accept {"terms": "restricted"}) '
                    "or add dataUseTerms=open"
                )
            audit.record(
                session,
                actor=identity.subject,
                action="pathogen.download",
                outcome="denied" if problem else "allowed",
                detail={"path": request.url.path, "query": str(request.url.query)[:500]},
            )
        return problem

    problem = await run_in_threadpool(check)
    if problem:
        raise HTTPException(403, problem)
    return identity.subject


lapis_routes = lapis_router(_store, sequences=_sequences, sequence_access=_downloader)
