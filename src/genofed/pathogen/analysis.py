"""What processing finds in one genome: its differences from the organism's reference, in
Nextclade notation, and its quality.

:class:`Analysis` is the contract between the aligner (:mod:`~genofed.pathogen.alignment`,
:mod:`~genofed.pathogen.mutations`, :mod:`~genofed.pathogen.qc`), the stored records (as JSON)
and the queries. Coordinates are 1-based and in the reference; notation as Nextclade and LAPIS
write it:

- nucleotide substitution ``C241T``, deletion per position ``A21765-``,
  insertion after a position ``22204:GAGCCAGAA``;
- amino-acid substitution ``S:E484K`` (a stop is ``*``: ``ORF8:Q27*``), deletion ``S:H69-``,
  insertion after a codon ``S:214:EPE``;
- frameshift ``ORF8:12-15`` (the codon range of the reference the shift affects).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from genofed.pathogen import alignment as alignment_module
from genofed.pathogen.alignment import AlignmentError, aligned_sequence
from genofed.pathogen.clades import clade_of
from genofed.pathogen.organisms import Organism

__all__ = [
    "AlignmentError",
    "Analysis",
    "Qc",
    "QcRule",
    "aligned_sequence",
    "analyse",
    "analyse_many",
]

GOOD, MEDIOCRE, BAD = "good", "mediocre", "bad"
_POSITION = re.compile(r"\d+")


@dataclass(frozen=True)
class QcRule:
    """One quality-control rule's verdict, e.g. ``missing_data`` with score 12.5."""

    name: str
    score: float
    status: str  # good | mediocre | bad
    detail: str  # what was counted, against which threshold


@dataclass(frozen=True)
class Qc:
    """The overall verdict: ``errors`` stop a release, ``warnings`` ask a curator to look."""

    status: str
    score: float
    rules: tuple[QcRule, ...]
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysis:
    organism: str
    length: int  # of the submitted sequence
    alignment_start: int  # first and last reference positions the sequence covers
    alignment_end: int
    substitutions: tuple[str, ...]
    deletions: tuple[str, ...]
    insertions: tuple[str, ...]
    missing: tuple[tuple[int, int], ...]  # runs of N inside the aligned range, inclusive
    ambiguous: tuple[str, ...]  # mixed sites as IUPAC code + position, e.g. ``R1234``
    aa_substitutions: tuple[str, ...]
    aa_deletions: tuple[str, ...]
    aa_insertions: tuple[str, ...]
    frameshifts: tuple[str, ...]
    stop_codons: tuple[str, ...]  # premature stops, ``ORF8:27``
    qc: Qc
    clade: str | None = None  # by signature mutations (:mod:`~genofed.pathogen.clades`)
    extra: dict[str, Any] = field(default_factory=dict)  # room for later fields, kept in JSON

    @property
    def nucleotide_mutations(self) -> tuple[str, ...]:
        """Substitutions and deletions, by position (LAPIS's ``nucleotideMutations``)."""
        return tuple(sorted(self.substitutions + self.deletions, key=position))

    @property
    def amino_acid_mutations(self) -> tuple[str, ...]:
        return self.aa_substitutions + self.aa_deletions

    def unknown(self, reference_length: int) -> tuple[tuple[int, int], ...]:
        """Reference ranges with no usable base: N runs and the uncovered ends."""
        ranges = list(self.missing)
        if self.alignment_start > 1:
            ranges.insert(0, (1, self.alignment_start - 1))
        if self.alignment_end < reference_length:
            ranges.append((self.alignment_end + 1, reference_length))
        return tuple(ranges)

    def to_json(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies every value, ~50x slower, and this runs for
        # every record stored, released and replicated.
        data = dict(vars(self), extra=dict(self.extra))
        data["qc"] = dict(vars(self.qc), rules=[dict(vars(rule)) for rule in self.qc.rules])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Analysis:
        qc = data["qc"]
        rules = tuple(QcRule(**rule) for rule in qc["rules"])
        verdict = Qc(qc["status"], qc["score"], rules, tuple(qc["warnings"]), tuple(qc["errors"]))
        plain: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in data.items()
            if key != "qc"
        }
        plain["missing"] = tuple(tuple(pair) for pair in data["missing"])
        return cls(**plain, qc=verdict)


def position(mutation: str) -> int:
    """The reference position a nucleotide mutation names (``C241T`` → 241)."""
    found = _POSITION.search(mutation)
    if found is None:
        raise ValueError(f"{mutation!r} names no position")
    return int(found.group())


def analyse(organism: Organism, sequence: str) -> Analysis:
    """Align one genome to ``organism``'s reference, call its mutations and judge its quality.

    ``clade`` is the organism's clade the genome's mutations point to (None without clades).
    ``extra`` holds ``coverage`` (the share of the reference covered by called bases or
    deletions) and ``clipped`` (query bases left unaligned at the ends). Raises
    :class:`AlignmentError` when the sequence does not align.
    """
    # Imported here: the calling modules build on this module's dataclasses.
    from genofed.pathogen import mutations, qc

    reference = _reference(organism)
    aligned = alignment_module.align(reference, sequence)
    nucleotides = mutations.nucleotide_calls(reference, aligned)
    amino_acids = mutations.amino_acid_calls(
        mutations.coding_sequences(organism.reference, organism.coding), aligned
    )
    uncovered = reference.length - (aligned.end - aligned.start)
    findings = qc.Findings(
        reference_length=reference.length,
        unknown=nucleotides.missing_count + uncovered,
        mixed_sites=len(nucleotides.ambiguous),
        frameshifts=amino_acids.frameshifts,
        stop_codons=amino_acids.stop_codons,
        substitution_positions=nucleotides.substitution_positions,
        covered=aligned.end - aligned.start - nucleotides.missing_count,
        known_stop_codons=qc.KNOWN_STOP_CODONS.get(organism.name, frozenset()),
    )
    analysis = Analysis(
        organism=organism.name,
        length=len(sequence),
        alignment_start=aligned.start + 1,
        alignment_end=aligned.end,
        substitutions=nucleotides.substitutions,
        deletions=nucleotides.deletions,
        insertions=nucleotides.insertions,
        missing=nucleotides.missing,
        ambiguous=nucleotides.ambiguous,
        aa_substitutions=tuple(amino_acids.substitutions),
        aa_deletions=tuple(amino_acids.deletions),
        aa_insertions=tuple(amino_acids.insertions),
        frameshifts=tuple(amino_acids.frameshifts),
        stop_codons=tuple(amino_acids.stop_codons),
        qc=qc.judge(findings),
        extra={"coverage": round(findings.coverage, 4), "clipped": aligned.clipped},
    )
    if not organism.clades:
        return analysis
    return replace(analysis, clade=clade_of(organism.clades, analysis, reference.length))


def _reference(organism: Organism) -> alignment_module.Reference:
    coding = tuple(f.parts for f in organism.coding if f.strand != "-")
    return alignment_module.prepare(organism.reference, coding)


def analyse_many(
    organism: Organism, sequences: Iterable[str], workers: int | None = None
) -> Iterator[Analysis | AlignmentError]:
    """:func:`analyse` over many genomes on ``workers`` processes (default: every core), in
    order; a genome that does not align yields its :class:`AlignmentError` instead."""
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        yield from map(partial(_analyse_or_error, organism), sequences)
        return
    pool = _pool(workers)
    # A few chunks per worker in flight: the input is read as the work goes, not at once.
    pending: deque[Future[list[Analysis | AlignmentError]]] = deque()
    try:
        for chunk in _chunked(sequences, CHUNK):
            pending.append(pool.submit(_analyse_chunk, organism, chunk))
            if len(pending) >= 3 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    except BrokenProcessPool:
        _forget(workers, pool)  # a worker died (killed, out of memory): the next call starts anew
        raise
    finally:
        for future in pending:
            future.cancel()  # the caller stopped reading


CHUNK = 64  # genomes per task: amortises the round trip, keeps results flowing
# Workers come from a fork server, not by forking the caller: the node calls this from a thread
# of a multi-threaded server, and a fork copies locks other threads may hold at that instant.
# The server process imports this module once, and the pool lives as long as the process, so a
# call pays no start-up (a new pool costs ~0.2 s; the node calls this for every chunk of work).
_WORKERS = multiprocessing.get_context("forkserver")
_WORKERS.set_forkserver_preload([__name__])
_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ProcessPoolExecutor:
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ProcessPoolExecutor(workers, mp_context=_WORKERS)
        return pool


def _forget(workers: int, pool: ProcessPoolExecutor) -> None:
    with _pools_lock:
        if _pools.get(workers) is pool:
            del _pools[workers]
    pool.shutdown(wait=False, cancel_futures=True)


def _chunked(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _analyse_chunk(organism: Organism, sequences: list[str]) -> list[Analysis | AlignmentError]:
    return [_analyse_or_error(organism, sequence) for sequence in sequences]


def _analyse_or_error(organism: Organism, sequence: str) -> Analysis | AlignmentError:
    try:
        return analyse(organism, sequence)
    except AlignmentError as error:
        return error
