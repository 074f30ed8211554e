"""Processing: ``received`` entries are aligned, called and checked, in chunks, on every core.

:func:`process_pending` claims a chunk (``received`` → ``processing``, in one short
transaction), analyses it with :func:`~genofed.pathogen.analysis.analyse_many` outside any
transaction, and stores each analysis with its outcome (``processed``: ok, warnings or errors).
A node runs it in a :class:`Processor` thread, woken by each submission; tests and benchmarks
call it directly. A crash between claim and store leaves entries ``processing``: :func:`recover`
puts them back at start, and analysing twice is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from genofed import db
from genofed.db import PathogenEntry, PathogenEvent, PathogenState
from genofed.pathogen import analysis as analysis_module
from genofed.pathogen.analysis import GOOD, AlignmentError, Analysis
from genofed.pathogen.entries import ERRORS, OK, WARNINGS, decompress
from genofed.pathogen.organisms import Organism
from genofed.pathogen.registry import get_organism

log = logging.getLogger(__name__)
CHUNK = 500  # large enough that starting the worker processes is a small part of a chunk
STORE_EVERY = 100  # results per transaction
PROCESSOR = "processing"  # the actor of processing's transitions
Analyser = Callable[[Organism, Iterable[str], int | None], Iterator[Analysis | AlignmentError]]


def outcome_of(result: Analysis | AlignmentError) -> str:
    """QC errors (or no alignment) stop a release; anything short of good asks a curator."""
    if isinstance(result, AlignmentError) or result.qc.errors:
        return ERRORS
    if result.qc.warnings or result.qc.status != GOOD:
        return WARNINGS
    return OK


def _default_analyser(
    organism: Organism, sequences: Iterable[str], workers: int | None
) -> Iterator[Analysis | AlignmentError]:
    # looked up at call time: the aligner module may be replaced (benchmarks, later versions)
    return analysis_module.analyse_many(organism, sequences, workers)


@dataclass(frozen=True)
class _Claimed:
    id: int
    organism: str
    sequence: bytes


def process_pending(
    engine: Engine,
    *,
    workers: int | None = None,
    chunk: int = CHUNK,
    analyse: Analyser = _default_analyser,
    limit: int | None = None,
) -> int:
    """Process ``received`` entries until none is left (or ``limit`` are done); how many."""
    done = 0
    while limit is None or done < limit:
        size = chunk if limit is None else min(chunk, limit - done)
        claimed = _claim(engine, size)
        if not claimed:
            break
        try:
            _process_chunk(engine, claimed, workers, analyse)
        except BaseException:  # give the chunk back rather than leave it stuck
            with db.session_scope(db.for_writing(engine)) as session:
                _set_state([c.id for c in claimed], PathogenState.RECEIVED, session)
            raise
        done += len(claimed)
    return done


def _claim(engine: Engine, size: int) -> list[_Claimed]:
    with db.session_scope(db.for_writing(engine)) as session:
        rows = session.execute(
            select(PathogenEntry.id, PathogenEntry.organism, PathogenEntry.sequence)
            .where(PathogenEntry.state == PathogenState.RECEIVED)
            .order_by(PathogenEntry.id)
            .limit(size)
            .with_for_update(skip_locked=True)  # PostgreSQL: processes claim different rows
        ).all()
        claimed = [_Claimed(row.id, row.organism, row.sequence) for row in rows]
        if claimed:
            _set_state([c.id for c in claimed], PathogenState.PROCESSING, session)
        return claimed


def _set_state(ids: list[int], state: PathogenState, session: Session) -> None:
    session.execute(update(PathogenEntry).where(PathogenEntry.id.in_(ids)).values(state=state))
    session.add_all(PathogenEvent(entry_id=i, state=state, actor=PROCESSOR) for i in ids)


def _process_chunk(
    engine: Engine, claimed: list[_Claimed], workers: int | None, analyse: Analyser
) -> None:
    by_organism: dict[str, list[_Claimed]] = {}
    for item in claimed:
        by_organism.setdefault(item.organism, []).append(item)
    for name, items in by_organism.items():
        with db.session_scope(engine) as session:
            organism = get_organism(session, name)
        sequences = (decompress(item.sequence) for item in items)
        results: list[Analysis | AlignmentError] = []
        stored = 0
        # stored as they come, while the workers go on with the rest of the chunk
        for result in analyse(organism, sequences, workers):
            results.append(result)
            if len(results) == STORE_EVERY:
                _store(engine, items[stored : stored + len(results)], results)
                stored, results = stored + len(results), []
        if stored + len(results) != len(items):
            raise RuntimeError(f"the analyser returned {stored + len(results)} of {len(items)}")
        if results:
            _store(engine, items[stored:], results)


def _store(engine: Engine, items: list[_Claimed], results: list[Analysis | AlignmentError]) -> None:
    changes, events = [], []
    for item, result in zip(items, results, strict=True):
        outcome = outcome_of(result)
        failed = isinstance(result, AlignmentError)
        changes.append(
            {
                "id": item.id,
                "state": PathogenState.PROCESSED,
                "outcome": outcome,
                "analysis": result.to_json() if isinstance(result, Analysis) else None,
                "error": str(result) if failed else None,
            }
        )
        events.append(
            PathogenEvent(
                entry_id=item.id, state=PathogenState.PROCESSED, actor=PROCESSOR, detail=outcome
            )
        )
    with db.session_scope(db.for_writing(engine)) as session:
        session.execute(update(PathogenEntry), changes)
        session.add_all(events)


def recover(engine: Engine) -> int:
    """Entries left ``processing`` by a stopped node go back to ``received``; how many."""
    with db.session_scope(db.for_writing(engine)) as session:
        ids = list(
            session.scalars(
                select(PathogenEntry.id).where(PathogenEntry.state == PathogenState.PROCESSING)
            )
        )
        if ids:
            _set_state(ids, PathogenState.RECEIVED, session)
        return len(ids)


class Processor:
    """The node's processing thread: runs :func:`process_pending` when woken, and every
    ``poll`` seconds in case a wake-up was missed (another process of the node submitted)."""

    def __init__(
        self,
        engine: Engine,
        *,
        workers: int | None = None,
        poll: float = 5.0,
        analyse: Analyser = _default_analyser,
    ) -> None:
        self._engine = engine
        self._workers = workers
        self._poll = poll
        self._analyse = analyse
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pathogen-processing", daemon=True)

    def start(self) -> Processor:
        recovered = recover(self._engine)
        if recovered:
            log.info("pathogen processing: %d interrupted entries taken up again", recovered)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the chunk under way, then stop."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:  # a chunk at a time, so that stopping waits for one chunk only
                done = process_pending(
                    self._engine, workers=self._workers, analyse=self._analyse, limit=CHUNK
                )
            except Exception:  # the database or the aligner failed: try again later
                log.exception("pathogen processing failed; retrying in %.0f s", self._poll)
                done = 0
            if not done:
                self._wake.wait(self._poll)
