"""Pathogen genome analysis throughput: align + call + QC of SARS-CoV-2 genomes per second.

Generated genomes look like real submissions: each descends from one of a few lineages (40-80
shared substitutions, codon deletions, an insertion in some), adds a few private
substitutions, loses 0-3 amplicons to dropouts (N runs of ~300 nt), and has its ends trimmed
or padded with N. Measured in the same run, on the same genomes:

- ``analyse`` on one core (in this process);
- ``analyse_many`` on every core (process pool, results in order);
- the reference: minimap2's Python binding ``mappy`` aligning each genome with its difference
  string (``cs``) on one core, alignment only;
- end to end, ``--many`` genomes (10,000) from submission to processed on a node's database
  (SQLite in ``--dir``): the batch checked and stored (``submit_batch``: FASTA and sheet read,
  every field validated, accessions allocated), then ``process_pending`` on every core
  (claim, analyse, store each analysis and its outcome).

    .venv/bin/python bench/pathogen.py [--genomes 2000] [--many 10000] [--small] [--profile]
                                       [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from genofed import db
from genofed.db import PathogenEntry
from genofed.pathogen.analysis import Analysis, analyse, analyse_many
from genofed.pathogen.organisms import Organism, load_organism
from genofed.pathogen.processing import process_pending
from genofed.pathogen.submissions import submit_batch
from genofed.pathogen.synthetic import outbreak, write_submission

TARGET_PER_CORE = 100  # genomes per second
TARGET_10K_SECONDS = 120
AMPLICON = 300  # ARTIC v3 amplicons are ~400 nt with ~100 nt overlaps
BASES = "ACGT"


@dataclass(frozen=True)
class Lineage:
    substitutions: dict[int, str]  # 0-based position -> base
    deletions: tuple[tuple[int, int], ...]  # 0-based start, length
    insertion: tuple[int, str] | None


def lineages(organism: Organism, rng: random.Random, count: int = 12) -> list[Lineage]:
    """A few lineages with realistic defining mutations: 40-80 substitutions (none making a stop
    codon: a lineage with one in an essential gene would not spread), codon deletions, and an
    insertion in some."""
    reference = organism.reference
    made = []
    for _ in range(count):
        substitutions: dict[int, str] = {}
        wanted = rng.randrange(40, 81)
        while len(substitutions) < wanted:
            pos = rng.randrange(300, len(reference) - 300)
            base = rng.choice([b for b in BASES if b != reference[pos]])
            if not _makes_stop(organism, pos, base):
                substitutions[pos] = base
        deletions = tuple(
            (rng.randrange(300, len(reference) - 300), rng.choice([3, 6, 9])) for _ in range(3)
        )
        insertion = None
        if rng.random() < 0.3:
            insertion = (rng.randrange(300, len(reference) - 300), "GAGCCAGAA")
        made.append(Lineage(substitutions, deletions, insertion))
    return made


def _makes_stop(organism: Organism, pos: int, base: str) -> bool:
    for feature in organism.coding:
        if feature.start - 1 <= pos < feature.end:
            first = pos - (pos - feature.start + 1) % 3
            codon = list(organism.reference[first : first + 3])
            codon[pos - first] = base
            return "".join(codon) in ("TAA", "TAG", "TGA")
    return False


def genome(organism: Organism, lineage: Lineage, rng: random.Random) -> str:
    """One submission descending from ``lineage``."""
    reference = organism.reference
    bases = bytearray(reference.encode("ascii"))
    for pos, base in lineage.substitutions.items():
        bases[pos] = ord(base)
    for _ in range(rng.randrange(0, 12)):  # private mutations, a few
        pos = rng.randrange(len(reference))
        base = rng.choice([b for b in BASES if b != reference[pos]])
        if not _makes_stop(organism, pos, base):
            bases[pos] = ord(base)
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        start = rng.randrange(len(reference) - AMPLICON)
        bases[start : start + AMPLICON] = b"N" * AMPLICON
    # Indels last, from the right, so that each edit's position still holds.
    edits = [(start, length, b"") for start, length in lineage.deletions]
    if lineage.insertion:
        edits.append((lineage.insertion[0] + 1, 0, lineage.insertion[1].encode("ascii")))
    for start, length, text in sorted(edits, reverse=True):
        bases[start : start + length] = text
    head, tail = rng.randrange(0, 80), rng.randrange(0, 120)
    text = bases[head : len(bases) - tail].decode("ascii")
    if rng.random() < 0.2:
        text = "N" * rng.randrange(1, 40) + text
    return text


def generate(organism: Organism, count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    known = lineages(organism, rng)
    return [genome(organism, rng.choice(known), rng) for _ in range(count)]


def one_core(organism: Organism, genomes: list[str]) -> tuple[float, float, list[Analysis]]:
    """Genomes per second of wall-clock time and of CPU time (the second is what the code
    costs when other processes share the cores), and the analyses."""
    start, cpu = time.perf_counter(), time.process_time()
    results = [analyse(organism, g) for g in genomes]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(genomes) / wall, len(genomes) / cpu, results


def all_cores(organism: Organism, genomes: list[str]) -> float:
    """Genomes per second with analyse_many on every core (wall clock). The fork server its
    workers come from is started first, as a running node has it (its CPU time is not ours to
    read: the workers are the server's children)."""
    sum(1 for _ in analyse_many(organism, genomes[:8]))
    start = time.perf_counter()
    done = sum(1 for _ in analyse_many(organism, genomes))
    return done / (time.perf_counter() - start)


def mappy_rate(organism: Organism, genomes: list[str]) -> tuple[float, float] | None:
    """Genomes per second (wall clock, CPU) minimap2 (mappy) aligns with cs on one core; None
    without mappy."""
    try:
        import mappy  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    aligner = mappy.Aligner(seq=organism.reference, preset="asm20")
    start, cpu = time.perf_counter(), time.process_time()
    for g in genomes:
        for hit in aligner.map(g, cs=True):
            assert hit.cs
            break
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(genomes) / wall, len(genomes) / cpu


def end_to_end(organism: Organism, genomes: list[str], folder: Path) -> dict[str, float]:
    """Seconds to check and store a batch of ``genomes``, then to process it, on a fresh node
    database; and how the entries came out."""
    samples = [
        replace(sample, sequence=sequence)
        for sample, sequence in zip(outbreak(organism, "BE", len(genomes)), genomes, strict=True)
    ]
    fasta, sheet = write_submission(samples, folder / "batch")
    url = f"sqlite:///{folder / 'node.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    start = time.perf_counter()
    with db.session_scope(db.for_writing(engine)) as session:
        outcome = submit_batch(
            session,
            country="BE",
            submitter="bench-lab",
            organism=organism,
            fasta=fasta,
            sheet=sheet,
            today=date(2022, 6, 1),
        )
    stored = time.perf_counter()
    assert len(outcome.accessions) == len(genomes), outcome.problems[:3]
    processed = process_pending(engine)
    done = time.perf_counter()
    with db.session_scope(engine) as session:
        outcomes = dict(
            session.execute(
                select(PathogenEntry.outcome, func.count()).group_by(PathogenEntry.outcome)
            ).all()
        )
    engine.dispose()
    assert processed == len(genomes)
    return {"submit": stored - start, "process": done - stored, "total": done - start} | {
        f"outcome {name}": count for name, count in outcomes.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=2000)
    parser.add_argument("--many", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="a quick run: 200 and 1,000")
    parser.add_argument("--profile", action="store_true", help="profile the one-core run")
    parser.add_argument(
        "--dir", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    )
    args = parser.parse_args()
    if args.small:
        args.genomes, args.many = 200, 1000
    organism = load_organism("sars-cov-2")
    genomes = generate(organism, max(args.genomes, args.many))
    sample = genomes[: args.genomes]
    analyse(organism, sample[0])  # index the reference once, outside the timings

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
    rate, cpu_rate, results = one_core(organism, sample)
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    statuses = Counter(r.qc.status for r in results)
    mean_subs = sum(len(r.substitutions) for r in results) / len(results)
    print(f"{len(sample)} generated SARS-CoV-2 genomes, {mean_subs:.0f} substitutions each")
    print(f"QC: {dict(statuses)}")
    print(
        f"align + call + QC, one core:    {rate:7.1f} genomes/s, {cpu_rate:.1f} per CPU second "
        f"(target {TARGET_PER_CORE})"
    )
    reference = mappy_rate(organism, sample)
    if reference:
        print(
            f"mappy (minimap2) align + cs:    {reference[0]:7.1f} genomes/s, "
            f"{reference[1]:.1f} per CPU second, one core"
        )
        print(f"ours / mappy, per CPU second:   {cpu_rate / reference[1]:7.2f}")
    cores = os.cpu_count() or 1
    many_rate = all_cores(organism, sample)
    print(f"analyse_many, {cores} cores:         {many_rate:7.1f} genomes/s")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {cores} cores")
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        figures = end_to_end(organism, genomes[: args.many], Path(work))
    print(
        f"{args.many:,} genomes, submission to processed: {figures['total']:.1f} s "
        f"(checked and stored {figures['submit']:.1f} s, processed {figures['process']:.1f} s; "
        f"target {TARGET_10K_SECONDS} s for 10,000)"
    )
    print("outcomes:", {k[8:]: int(v) for k, v in figures.items() if k.startswith("outcome")})
    verdict = cpu_rate >= TARGET_PER_CORE
    print("PASS" if verdict else "BELOW TARGET", "(per-core throughput)")


if __name__ == "__main__":
    main()
