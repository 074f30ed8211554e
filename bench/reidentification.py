"""The Beacon membership attack against genofed's privacy guard, off and on.

A cohort is generated: members (the beacon's dataset) and non-members from one population, over
SNPs whose allele frequencies follow the neutral spectrum (density ∝ 1/f between 1e-5 and 0.5:
a third of the SNPs rarer than 1 in 2,000), genotypes by Hardy-Weinberg. The beacon is those
alleles (the variant index's own :class:`~genofed.beacon.index.Allele`) behind the real
:func:`genofed.beacon.guard.answer_variants`, on a real SQLite database
(budgets, answered questions and audit entries are the production code).

The attacker holds each target's genome, knows the population's allele frequencies (a large
reference panel) and asks about the alleles the target carries, rarest first, computing the
likelihood-ratio statistic of Shringarpure & Bustamante, "Privacy risks from genomic data-sharing
beacons", Am J Hum Genet 97:631-646 (2015), with per-SNP frequencies as in the improved attack of
Raisaro et al., "Addressing Beacon re-identification attacks: quantification and mitigation of
privacy risks", JAMIA 24:799-805 (2017). For a beacon of N individuals, an allele of frequency
f, and D_N = (1 - f)^(2N) the probability that none of N people carries it, a "yes" adds
log((1 - D_N) / (1 - δ D_(N-1))) and a "no" log(D_N / (δ D_(N-1))) to Λ (δ = 1e-6, the chance
that the target's own allele was missed). Small Λ means member; the threshold is Λ's 5th
percentile over non-members, so the false-positive rate is 5 %, and power is the share of members
below it. With the guard on a second attacker knows the threshold k (the answers' note says
it): its likelihoods are those of "at least k carriers" (k - 1 others if the target is in), and
it asks first the alleles whose answers tell most (largest expected log-likelihood ratio).

Every target is attacked from an account of its own, with a full budget: the strongest case
for the attacker (one account attacking many people runs out after the first few).

    .venv/bin/python bench/reidentification.py [--members 1000] [--non-members 1000]
        [--snps 200000] [--queries-off 20] [--queries-on 200] [--budgets 2,4,8,40]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap
from sqlalchemy import Engine

from genofed import db
from genofed.beacon.guard import (
    DEFAULT_BUDGET_BITS,
    DEFAULT_MIN_COUNT,
    BudgetExhausted,
    Caller,
    Granularity,
    answer_variants,
    configure,
    query_digest,
)
from genofed.beacon.index import Allele

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
DATASET = "EGAD00000000001"
ASSEMBLY = "GRCh38"
DELTA = 1e-6  # Shringarpure & Bustamante's genotyping error
FPR = 0.05
LOWEST_FREQUENCY = 1e-5
YES, NO, UNANSWERED = 1, 0, -1


@dataclass
class Cohort:
    """The generated population: the beacon's alleles and every target's genome."""

    frequencies: Floats  # per SNP, ascending: SNP j is rarer than SNP j + 1
    alleles: list[Allele | None]  # the beacon's allele of SNP j; None when no member has it
    carried: list[Ints]  # per target, the SNPs whose allele it carries, rarest first
    members: int  # targets 0 .. members-1 are in the beacon, the others are not

    @property
    def beacon_size(self) -> int:
        return self.members

    @property
    def is_member(self) -> npt.NDArray[np.bool_]:
        return np.arange(len(self.carried)) < self.members


def snp_position(snp: int) -> int:
    """Where SNP ``snp`` sits on chromosome 1 (0-based): the SNPs are 10 bases apart."""
    return 1_000_000 + 10 * snp


def generate(
    members: int, non_members: int, snps: int, keep: int, seed: int, dataset: str = DATASET
) -> Cohort:
    """Draw the cohort; each target keeps its ``keep`` rarest alleles (all an attack asks)."""
    rng = np.random.default_rng(seed)
    frequencies = np.sort(np.exp(rng.uniform(math.log(LOWEST_FREQUENCY), math.log(0.5), snps)))
    people = members + non_members
    alleles: list[Allele | None] = []
    carried: list[list[int]] = [[] for _ in range(people)]
    for first in range(0, snps, 4096):
        block = frequencies[first : first + 4096]
        dosage = rng.binomial(2, block, size=(people, len(block))).astype(np.int8)
        alleles.extend(_beacon_alleles(dosage[:members], first, dataset))
        for person in range(people):
            wanted = keep - len(carried[person])
            if wanted > 0:
                found = np.flatnonzero(dosage[person])[:wanted] + first
                carried[person].extend(found.tolist())
    return Cohort(frequencies, alleles, [np.array(c, dtype=np.int64) for c in carried], members)


def _beacon_alleles(dosage: npt.NDArray[np.int8], first: int, dataset: str) -> list[Allele | None]:
    """The beacon's alleles of one block of SNPs, from its members' allele dosages."""
    found: list[Allele | None] = []
    for column in range(dosage.shape[1]):
        counts = dosage[:, column]
        carriers = np.flatnonzero(counts)
        if len(carriers) == 0:
            found.append(None)
            continue
        start = snp_position(first + column)
        found.append(
            Allele(
                dataset=dataset,
                assembly=ASSEMBLY,
                chrom="1",
                start=start,
                end=start + 1,
                ref="A",
                alt="G",
                variant_type="SNP",
                ac=int(counts.sum()),
                an=2 * dosage.shape[0],
                hom=int((counts == 2).sum()),
                carriers=BitMap(carriers.tolist()),
            )
        )
    return found


# -- the attackers' statistics ----------------------------------------------------------------


@dataclass(frozen=True)
class Attacker:
    """A likelihood-ratio attack: Λ's term for a yes and a no per SNP, and the order it asks."""

    name: str
    yes: Floats
    no: Floats
    priority: Floats | None = None  # ask larger first; None: rarest first

    def plan(self, carried: Ints, queries: int) -> Ints:
        """The SNPs asked about for one target, in order."""
        if self.priority is None:
            return carried[:queries]
        return carried[np.argsort(-self.priority[carried], kind="stable")][:queries]


def shringarpure_bustamante(frequencies: Floats, beacon_size: int) -> Attacker:
    """The published statistic: a truthful beacon, per-SNP frequencies, rarest first."""
    log_none_of_n = 2 * beacon_size * np.log1p(-frequencies)  # log D_N, in logs: no underflow
    log_none_of_others = (2 * beacon_size - 2) * np.log1p(-frequencies)
    yes = np.log(-np.expm1(log_none_of_n)) - np.log1p(-DELTA * np.exp(log_none_of_others))
    no = log_none_of_n - math.log(DELTA) - log_none_of_others
    return Attacker("Shringarpure-Bustamante, rarest first", yes, no)


def threshold_aware(frequencies: Floats, beacon_size: int, min_count: int) -> Attacker:
    """The same test for a beacon that says yes only for alleles of >= k carriers."""
    carrier_probability = 1.0 - (1.0 - frequencies) ** 2
    p_out = _at_least(beacon_size, carrier_probability, min_count)
    p_in = _at_least(beacon_size - 1, carrier_probability, min_count - 1)
    yes = np.log(p_out) - np.log(p_in)
    no = np.log1p(-np.minimum(p_out, 1 - 1e-15)) - np.log1p(-np.minimum(p_in, 1 - 1e-15))
    information = p_in * -yes + (1 - p_in) * -no  # expected evidence when the target is in
    return Attacker("threshold-aware, most telling first", yes, no, information)


def _at_least(n: int, p: Floats, k: int) -> Floats:
    """P(Binomial(n, p) >= k), for small k."""
    below = np.zeros_like(p)
    for x in range(k):
        below += math.comb(n, x) * p**x * (1 - p) ** (n - x)
    return np.clip(1.0 - below, 1e-300, 1.0)


def power(statistic: Floats, is_member: npt.NDArray[np.bool_], fpr: float = FPR) -> float:
    """The share of members flagged by the test whose false-positive rate is exactly ``fpr``.

    Λ below the non-members' ``fpr`` quantile flags a member; ties at the threshold are broken
    at random (Neyman-Pearson), so an attack whose answers say nothing scores ``fpr``, not 0.
    """
    rounded = np.round(statistic, 9)
    null, alternative = np.sort(rounded[~is_member]), rounded[is_member]
    threshold = null[min(math.floor(fpr * len(null)), len(null) - 1)]
    below, at = float(np.mean(null < threshold)), float(np.mean(null == threshold))
    share = (fpr - below) / at if at else 0.0
    return float(np.mean(alternative < threshold) + share * np.mean(alternative == threshold))


# -- running an attack against the guard ------------------------------------------------------


@dataclass
class Run:
    """One attack's answers: per target and query, YES, NO or UNANSWERED, and its SNPs."""

    attacker: Attacker
    asked: Ints  # targets x queries: the SNP asked (-1 past the plan)
    answers: npt.NDArray[np.int8]
    seconds: float
    refusals: int = 0

    @property
    def answered(self) -> int:
        return int(np.sum(self.answers != UNANSWERED))

    def statistic(self, queries: int | None = None) -> Floats:
        """Λ per target over its first ``queries`` questions (unanswered ones add nothing)."""
        asked, answers = self.asked[:, :queries], self.answers[:, :queries]
        snp = np.maximum(asked, 0)
        terms = np.where(
            answers == YES,
            self.attacker.yes[snp],
            np.where(answers == NO, self.attacker.no[snp], 0.0),
        )
        return np.asarray(terms.sum(axis=1), dtype=np.float64)

    def power(self, is_member: npt.NDArray[np.bool_], queries: int | None = None) -> float:
        return power(self.statistic(queries), is_member)


@dataclass
class Beacon:
    """The generated cohort's alleles behind the guard, on a database."""

    engine: Engine
    cohort: Cohort
    dataset: str = DATASET
    digests: dict[int, str] = field(default_factory=dict)

    def question(self, snp: int) -> str:
        """The digest of "is there a G at this position?", as the API would compute it."""
        digest = self.digests.get(snp)
        if digest is None:
            parameters = {
                "assemblyId": ASSEMBLY,
                "referenceName": "1",
                "start": [snp_position(snp)],
                "referenceBases": "A",
                "alternateBases": "G",
            }
            digest = self.digests[snp] = query_digest(parameters, [])
        return digest

    def ask(
        self, caller: Caller, snps: Sequence[int], granularity: Granularity = "boolean"
    ) -> list[int]:
        """Ask about ``snps`` in order, in one transaction, until the budget refuses."""
        replies: list[int] = []
        with db.session_scope(db.for_writing(self.engine)) as session:
            for snp in snps:
                allele = self.cohort.alleles[snp]
                try:
                    answer = answer_variants(
                        session,
                        caller,
                        self.dataset,
                        [] if allele is None else [allele],
                        granularity,
                        self.question(snp),
                    )
                except BudgetExhausted:
                    break  # committed all the same: the refusal's audit entry stays
                replies.append(YES if answer.exists else NO)
        return replies

    def attack(self, attacker: Attacker, queries: int, account: str) -> Run:
        """Attack every target from an account of its own (a full budget each)."""
        targets = len(self.cohort.carried)
        asked = np.full((targets, queries), -1, dtype=np.int64)
        answers = np.full((targets, queries), UNANSWERED, dtype=np.int8)
        refusals = 0
        started = time.perf_counter()
        for target, carried in enumerate(self.cohort.carried):
            plan = attacker.plan(carried, queries)
            asked[target, : len(plan)] = plan
            replies = self.ask(Caller(f"{account}-{target}@example.org"), plan.tolist())
            answers[target, : len(replies)] = replies
            refusals += len(replies) < len(plan)
        return Run(attacker, asked, answers, time.perf_counter() - started, refusals)


def open_beacon(
    cohort: Cohort,
    url: str,
    *,
    guard: bool,
    min_count: int = DEFAULT_MIN_COUNT,
    budget_bits: float = DEFAULT_BUDGET_BITS,
    level: str = "controlled",
) -> Beacon:
    """A migrated database at ``url`` whose dataset holds ``cohort``, configured as given."""
    db.upgrade(url)
    engine = db.make_engine(url)
    with db.session_scope(db.for_writing(engine)) as session:
        configure(
            session,
            DATASET,
            level=level,
            min_count=min_count,
            budget_bits=budget_bits,
            enabled=guard,
            actor="bench",
        )
    return Beacon(engine, cohort)


# -- ordinary use -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What an ordinary user without access got: questions asked and answered."""

    asked: int
    answered: int
    common: int
    rare: int


def ordinary_user(
    beacon: Beacon,
    common: int,
    rare: int,
    seed: int,
    granularity: Granularity = "boolean",
    subject: str = "researcher@example.org",
    rare_first: bool = True,
) -> Usage:
    """A researcher asks about ``common`` variants (AF > 5 %) and ``rare`` ones (AF < 0.5 %);
    rare ones first is the order that leaves the least for the others."""
    rng = np.random.default_rng(seed)
    frequencies = beacon.cohort.frequencies
    common_snps = rng.choice(np.flatnonzero(frequencies > 0.05), common, replace=False)
    rare_snps = rng.choice(np.flatnonzero(frequencies < 0.005), rare, replace=False)
    rare_list, common_list = [int(s) for s in rare_snps], [int(s) for s in common_snps]
    snps = rare_list + common_list if rare_first else common_list + rare_list
    replies = beacon.ask(Caller(subject), snps, granularity)
    return Usage(len(snps), len(replies), common, rare)


# -- the report -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    options = _options(argv)
    started = time.perf_counter()
    keep = max(options.queries_off, options.queries_on, 3000)
    cohort = generate(options.members, options.non_members, options.snps, keep, options.seed)
    print(
        f"cohort: {options.members} members, {options.non_members} non-members, "
        f"{options.snps:,} SNPs (neutral spectrum), generated in "
        f"{time.perf_counter() - started:.1f} s; every target attacked from its own account"
    )
    with tempfile.TemporaryDirectory() as folder:
        _report_off(cohort, options, Path(folder))
        for budget in options.budgets:
            _report_on(cohort, options, Path(folder), budget)


def _report_off(cohort: Cohort, options: argparse.Namespace, folder: Path) -> None:
    beacon = open_beacon(cohort, f"sqlite:///{folder / 'off.db'}", guard=False)
    attacker = shringarpure_bustamante(cohort.frequencies, cohort.beacon_size)
    run = beacon.attack(attacker, options.queries_off, "off")
    by_queries = ", ".join(
        f"{q}: {run.power(cohort.is_member, q):.3f}"
        for q in (1, 2, 5, options.queries_off)
        if q <= options.queries_off
    )
    print(
        f"guard off: {attacker.name}: power at 5 % FPR {run.power(cohort.is_member):.3f} "
        f"({run.answered:,} queries answered in {run.seconds:.1f} s, "
        f"{1e3 * run.seconds / max(run.answered, 1):.2f} ms each); by queries per target: "
        f"{by_queries}"
    )
    beacon.engine.dispose()


def _report_on(cohort: Cohort, options: argparse.Namespace, folder: Path, budget: float) -> None:
    url = f"sqlite:///{folder / f'on-{budget:g}.db'}"
    beacon = open_beacon(cohort, url, guard=True, budget_bits=budget, min_count=options.min_count)
    attackers = (
        shringarpure_bustamante(cohort.frequencies, cohort.beacon_size),
        threshold_aware(cohort.frequencies, cohort.beacon_size, options.min_count),
    )
    for number, attacker in enumerate(attackers):
        run = beacon.attack(attacker, options.queries_on, f"on{number}")
        print(
            f"guard on (controlled, min_count {options.min_count}, budget {budget:g} bits): "
            f"{attacker.name}: power at 5 % FPR {run.power(cohort.is_member):.3f} "
            f"({run.answered:,} queries answered, {run.answered / len(cohort.carried):.1f} per "
            f"target, {run.refusals:,} targets stopped by the budget, {run.seconds:.1f} s)"
        )
    use = ordinary_user(beacon, common=100, rare=3, seed=options.seed)
    print(
        f"guard on, budget {budget:g} bits: an ordinary user asking {use.common} common and "
        f"{use.rare} rare variants got {use.answered} of {use.asked} answers"
    )
    with db.session_scope(db.for_writing(beacon.engine)) as session:
        configure(session, beacon.dataset, level="registered", actor="bench")
    counted = ordinary_user(beacon, 100, 3, options.seed, "count", "counting@example.org")
    last = ordinary_user(beacon, 100, 3, options.seed, "count", "patient@example.org", False)
    print(
        f"guard on, budget {budget:g} bits, registered data asked for counts: the same "
        f"questions got {counted.answered} of {counted.asked} answers, {last.answered} when the "
        "rare ones come last"
    )
    beacon.engine.dispose()


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=1000, help="individuals in the beacon")
    parser.add_argument("--non-members", type=int, default=1000, help="the null's individuals")
    parser.add_argument("--snps", type=int, default=200_000, help="SNPs in the genomes")
    parser.add_argument("--queries-off", type=int, default=20, help="per target, guard off")
    parser.add_argument("--queries-on", type=int, default=200, help="per target, guard on")
    parser.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT)
    parser.add_argument(
        "--budgets", type=_budgets, default=[DEFAULT_BUDGET_BITS], help="e.g. 2,4,8,40"
    )
    parser.add_argument("--seed", type=int, default=2015)
    return parser.parse_args(argv)


def _budgets(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    main()
