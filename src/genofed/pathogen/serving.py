"""Serving the query stores, on a node and on the hub alike: one in-memory
:class:`~genofed.pathogen.store.PathogenStore` per organism, filled in the background at start
and caught up with the database's changes, and the terms check before any sequence leaves.

The database stays the truth: any number of processes can serve queries, each catching up at
most every :data:`CATCH_UP_SECONDS` (in a worker thread, never inside a query), and at once when
its own process released or revoked something (:meth:`LiveStores.refresh`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from fastapi import HTTPException
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import audit
from genofed.pathogen import terms
from genofed.pathogen.organisms import Organism
from genofed.pathogen.record import OPEN, RESTRICTED
from genofed.pathogen.registry import organism_names
from genofed.pathogen.store import PathogenStore, SampleFilter

log = logging.getLogger(__name__)
CATCH_UP_SECONDS = 1.0  # a query looks for newer changes at most this often


class LiveStores:
    """Query stores per organism over a database's released records; subclasses say how to
    read the changes since the last catch-up and how to find an organism."""

    where = "this node"  # in messages: "this node has no organism ..."

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._stores: dict[str, PathogenStore] = {}
        self._checked = 0.0
        self._refreshing = threading.Lock()

    def start(self) -> LiveStores:
        """Load in the background: a large archive takes a while, and queries meanwhile answer
        from what is loaded, under its data version."""
        threading.Thread(target=self._load, name="pathogen-stores", daemon=True).start()
        return self

    def _load(self) -> None:
        try:
            started = time.monotonic()
            read = self.refresh()
            log.info("loaded %d pathogen records in %.1f s", read, time.monotonic() - started)
        except Exception:  # queries retry the refresh
            log.exception("loading the pathogen records into the query stores failed")

    def store(self, organism: str) -> PathogenStore | None:
        """The store of ``organism`` (None: no such organism here)."""
        if time.monotonic() - self._checked > CATCH_UP_SECONDS and not self._refreshing.locked():
            self._checked = time.monotonic()
            threading.Thread(target=self.refresh, kwargs={"wait": False}, daemon=True).start()
        store = self._stores.get(organism)
        if store is None:
            with db.session_scope(self.engine) as session:
                species = self._organism(session, organism)
            if species is None:
                return None
            store = self._stores.setdefault(organism, PathogenStore(species))
        return store

    def store_or_404(self, organism: str) -> PathogenStore:
        store = self.store(organism)
        if store is None:
            with db.session_scope(self.engine) as session:
                known = ", ".join(organism_names(session))
            raise HTTPException(
                404, f"{self.where} has no organism {organism[:64]!r}: choose one of {known}"
            )
        return store

    def refresh(self, *, wait: bool = True) -> int:
        """Read what changed since the last refresh; how many records were read.
        ``wait=False`` returns at once (0) when another thread is refreshing."""
        if not self._refreshing.acquire(blocking=wait):
            return 0
        try:
            self._checked = time.monotonic()
            with db.session_scope(self.engine) as session:
                return self._catch_up(session)
        finally:
            self._refreshing.release()

    def _store_for(self, session: Session, organism: str) -> PathogenStore:
        """The store to add ``organism``'s records to, made on first use."""
        store = self._stores.get(organism)
        if store is None:
            species = self._organism(session, organism)
            assert species is not None, "records are only read for known organisms"
            store = self._stores.setdefault(organism, PathogenStore(species))
        return store

    def _catch_up(self, session: Session) -> int:
        raise NotImplementedError

    def _organism(self, session: Session, name: str) -> Organism | None:
        raise NotImplementedError


def restricted_part(chosen: SampleFilter) -> SampleFilter | None:
    """The restricted records of a selection, as a filter (None: the selection asks for open
    records only, so it holds none)."""
    asked = chosen.equals.get("dataUseTerms")
    if asked is not None and RESTRICTED not in asked:
        return None
    return replace(chosen, equals={**chosen.equals, "dataUseTerms": (RESTRICTED,)})


def download_refusal(
    session: Session,
    subject: str,
    store: PathogenStore,
    chosen: SampleFilter,
    *,
    where: str,
    request_detail: dict[str, str],
) -> str | None:
    """Why ``subject`` may not download ``chosen`` (None: they may): the terms not accepted, or
    the restricted-use terms when the selection holds restricted records. Audited either way,
    so the caller commits ``session`` before refusing."""
    held = terms.accepted(session, subject)
    restricted = restricted_part(chosen)
    problem = None
    if OPEN not in held:
        problem = (
            f"{subject} has not accepted the pathogen data-use terms {where}: read them at "
            "GET /pathogen/terms and accept with POST /pathogen/terms/accept"
        )
    elif (
        RESTRICTED not in held
        and restricted is not None
        and store.aggregated(restricted).data[0]["count"]
    ):
        problem = (
            "the selection holds records under restricted use: accept the restricted-use terms "
            '(POST /pathogen/terms/accept {"terms": "restricted"}) or add dataUseTerms=open'
        )
    audit.record(
        session,
        actor=subject,
        action="pathogen.download",
        outcome="denied" if problem else "allowed",
        detail=request_detail,
    )
    return problem
