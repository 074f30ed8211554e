"""Helpers for the pathogen record tests: a database with submitted batches, and a stand-in
analyser for tests about states and curation rather than alignment."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from genofed import db
from genofed.pathogen.analysis import AlignmentError, Analysis, Qc, QcRule
from genofed.pathogen.organisms import Organism, load_organism
from genofed.pathogen.submissions import SubmissionOutcome, submit_batch
from genofed.pathogen.synthetic import SyntheticSample, outbreak, write_submission
from genofed.pathogen.terms import Terms

TODAY = date(2025, 6, 1)
COUNTRY = "BE"


def quick_analysis(organism: Organism, sequence: str) -> Analysis | AlignmentError:
    """Judged on missing data alone: under 100 nt does not align, over half N is an error,
    over 5 % N a warning. Enough to drive states; the real aligner has tests of its own."""
    if len(sequence) < 100:
        return AlignmentError(f"{len(sequence)} nt do not align to {organism.name}")
    missing = sequence.count("N") / len(sequence)
    status = "bad" if missing > 0.5 else "mediocre" if missing > 0.05 else "good"
    rule = QcRule("missing_data", round(missing * 100, 1), status, f"{missing:.1%} N")
    errors = ("more than half the genome is missing",) if status == "bad" else ()
    warnings = ("much missing data",) if status == "mediocre" else ()
    return Analysis(
        organism=organism.name,
        length=len(sequence),
        alignment_start=1,
        alignment_end=len(organism.reference),
        substitutions=("C241T",),
        deletions=(),
        insertions=(),
        missing=(),
        ambiguous=(),
        aa_substitutions=("S:D614G",),
        aa_deletions=(),
        aa_insertions=(),
        frameshifts=(),
        stop_codons=(),
        qc=Qc(status, missing * 100, (rule,), warnings, errors),
    )


def quick_analyser(
    organism: Organism, sequences: Iterable[str], workers: int | None = None
) -> Iterator[Analysis | AlignmentError]:
    for sequence in sequences:
        yield quick_analysis(organism, sequence)


def samples(count: int, *, seed: int = 1, country: str = "BE") -> list[SyntheticSample]:
    return outbreak(load_organism("sars-cov-2"), country, count, seed=seed)


def submit(
    engine: Engine,
    folder: Path,
    batch: list[SyntheticSample],
    *,
    submitter: str = "lab-be",
    accept_valid: bool = False,
    terms: Terms = Terms(),
) -> SubmissionOutcome:
    fasta, sheet = write_submission(batch, folder)
    with db.session_scope(db.for_writing(engine)) as session:
        return submit_batch(
            session,
            country=COUNTRY,
            submitter=submitter,
            organism=load_organism("sars-cov-2"),
            fasta=fasta,
            sheet=sheet,
            accept_valid=accept_valid,
            terms=terms,
            today=TODAY,
        )
