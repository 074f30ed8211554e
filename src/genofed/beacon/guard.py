"""The Beacon privacy guard: who gets which answer from a dataset, and what each answer costs.

A beacon that truthfully says whether anyone in a dataset carries an allele leaks membership:
with a person's genome, asking about the rarest alleles they carry tells whether they are in
the dataset (Shringarpure & Bustamante 2015; with known allele frequencies and rarest-first
queries, Raisaro et al. 2017). Measured here (``bench/reidentification.py``, figures in
``docs/privacy.md``): against a raw beacon of 1,000 genomes two queries per person find 100 % of
the members at a 5 % false-positive rate. This module decides every dataset answer the Beacon
API gives, so that such an attack fails while ordinary questions keep their answers.

Settings, per dataset (``beacon_datasets``; ``genofed beacon configure``)
-------------------------------------------------------------------------

- ``level``: ``public``, ``registered`` or ``controlled``;
- ``min_count``: the threshold, 3 to 100 individuals (default 5);
- ``budget_bits``: each user's information budget for the dataset (default 3 bits);
- ``enabled``: the guard itself (default on).

A dataset without a row is ``controlled`` with these defaults: safe by default.

Who gets what (applied in this order)
-------------------------------------

1. **Readers**: a caller with a visa for the dataset (``dataset in caller.readable``) gets
   what they ask, exact, at any granularity, with no threshold and no budget.
2. **Login**: ``registered`` and ``controlled`` datasets answer identified callers only; an
   anonymous caller gets :class:`LoginRequired` (the API answers 401). For a query over several
   datasets the API catches it per dataset, skips that dataset with a note, and answers 401
   only when no dataset could answer. ``public`` datasets answer anonymous callers, who share
   one budget per dataset (the budget is per identity, and they have none).
3. **Granularity** (without a visa): ``controlled`` gives ``boolean`` at most, ``public`` and
   ``registered`` give ``count`` at most; ``record`` needs a visa. With the guard off,
   ``public`` and ``registered`` datasets also give ``record`` (the operator declared the data
   open); ``controlled`` never does. The answer says what it gave (``granularity``,
   ``meta.returnedGranularity``) and why it gave less (``note``).
4. **Threshold** (guard on, no visa): an allele carried by fewer than ``min_count``
   individuals is never disclosed, not even its existence: for such a caller it is
   indistinguishable from an absent allele. ``exists`` means "carried by at least min_count
   individuals", ``count`` (individuals carrying a disclosed allele) is 0 with ``exact=False``
   when nothing can be disclosed, and every such answer carries the same note. The same holds for
   :func:`answer_count`: a count below ``min_count`` is shown as 0, ``exact=False``, exists
   false. Why not a truthful boolean for a singleton: that boolean *is* the attack (one answer
   about a person's private allele tells whether they are in the dataset), and no budget can
   make a single decisive answer safe; refusing only the rare ones would say they are rare.
5. **Budget** (guard on, no visa): every new allele answer costs bits (below); a user whose
   spending has reached ``budget_bits`` gets :class:`BudgetExhausted` for every *new* question,
   whatever it would have cost -- a refusal that depended on the answer would disclose it. The
   answer that crosses the limit is still given. A question asked before and answered the same
   way is answered again for free, even when the budget is spent; if the data changed so that
   its answer changed, the new answer is a new answer and costs again. Budgets never reset: the
   attack needs only patience.

With the guard off (``enabled=False``) the dataset is the raw beacon: rules 1-3 still apply
(login, the cap for ``controlled`` data), rules 4 and 5 do not. Every answer and every refusal
writes an audit entry (action ``beacon.query``; identifiers and numbers only: the question's
digest, the granularity asked and given, the cost and spending in millibits).

What an answer costs
--------------------

A cost is the evidence an answer could give someone holding the genome of a person who carries
the allele: log2 of how much likelier the answer is if that person is in the dataset than if
not. It depends on how common the allele is in the population, which the dataset estimates
from its own count ``c`` of carriers: the other carriers' expected number λ has the posterior
Gamma(c - 1, 1) given a neutral site-frequency spectrum (prior ∝ 1/λ), X ~ Poisson(λ) others,
and with threshold k:

- a disclosed ``yes`` (boolean): ``b(c) = log2 E[P(X >= k-1) / P(X >= k)]``, with ``c`` the
  most common disclosed allele of the answer (it alone would explain the yes). For k = 5:
  0.96 bits at c = 5, 0.30 at 8, 0.015 at 15, under a millionth of a bit (free) from 34 on;
- a disclosed count costs ``b(c)`` for *each* disclosed allele (each one moves the count: a
  rare allele asked together with a common one would otherwise be disclosed at the common
  one's price) plus, for the count ``U`` itself, ``log2 E[U / λ] = log2(U / (U - 2))`` (0.74
  bits at 5, 0.03 at 100, 0.003 at 1,000): an exact count says a little about each carrier,
  which adds up over many questions (Homer et al. 2008);
- an answer that discloses nothing (``no``, or a count below the threshold) costs ``b(k)``, as
  much as the most revealing ``yes``: otherwise the budget would run down faster for members
  than for non-members, and the moment it ran out would tell which one a person is;
- ``record`` answers are only given without a budget (visa or guard off).

So yes/no questions about common variants cost nothing (exact counts of them a few hundredths
of a bit), and each question about a rare or absent allele about one bit: with the default
budget of 3 bits a user without access asks any number of yes/no questions about common
variants and three about rare ones; a fourth is answered and spends the budget, after which the
user is asked to apply for access. Why 3 bits: a budget of B bits
lets the evidence about one person reach odds of about 2**B to 1 -- 40 bits would be 10**12 to
1, certainty -- and 3 is the most of those measured that kept the attack below 20 % while an
ordinary session (a hundred common variants and three rare ones, in any order) is answered in
full. Measured on 1,000 generated genomes, the published attack finds 4 % of the members
against the default guard (chance: 5 %), and a variant that knows the threshold and asks the
most telling alleles first 19 % (``docs/privacy.md``, with other budgets).

Transactions
------------

:func:`answer_variants`, :func:`answer_count` and :func:`configure` write (budgets, answered
questions, audit entries) in the caller's session, which must be a writing one:
``session_scope(db.for_writing(engine))``. A refusal (:class:`LoginRequired`,
:class:`BudgetExhausted`) is raised *after* its audit entry is written into that session: catch
it, commit, then answer the error, or the refusal is not kept in the audit log.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pyroaring import BitMap
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genofed.access import audit
from genofed.db.models import BeaconAnswered, BeaconBudget, BeaconDataset
from genofed.errors import GenofedError

if TYPE_CHECKING:
    from genofed.access.visas import Permissions
    from genofed.beacon.index import Allele

Granularity = Literal["boolean", "count", "record"]
Level = Literal["public", "registered", "controlled"]
GRANULARITIES: tuple[Granularity, ...] = ("boolean", "count", "record")
LEVELS: tuple[Level, ...] = ("public", "registered", "controlled")

DEFAULT_LEVEL: Level = "controlled"
DEFAULT_MIN_COUNT = 5
DEFAULT_BUDGET_BITS = 3.0
MIN_COUNT_RANGE = (3, 100)  # below 3 one answer can name a person; above 100 nothing is left
MAX_BUDGET_BITS = 1024.0
FREE_BITS = 1e-6  # costs below this are nothing
AUDIT_ACTION = "beacon.query"
ANONYMOUS_ACTOR = "(anonymous)"
ANONYMOUS_KEY = ""  # the budget anonymous callers share: no token subject is empty
# Request parameters that change how an answer is presented, not which question it answers.
PRESENTATION_KEYS = frozenset(
    {"requestedGranularity", "skip", "limit", "includeResultsetResponses", "datasetIds"}
)


class GuardSettingsError(GenofedError):
    """A setting out of its range; the message names the allowed values."""


class LoginRequired(GenofedError):
    """An anonymous caller asked a dataset that answers identified users only (HTTP 401)."""

    def __init__(self, dataset: str, level: str) -> None:
        self.dataset = dataset
        self.level = level
        super().__init__(
            f"dataset {dataset} holds {level} data: its beacon answers identified users only; "
            "log in ('genofed login', or send your bearer token) and ask again"
        )


class BudgetExhausted(GenofedError):
    """The caller's information budget for a dataset is spent (the API answers 429)."""

    def __init__(self, dataset: str, spent_bits: float, budget_bits: float) -> None:
        self.dataset = dataset
        self.spent_bits = spent_bits
        self.budget_bits = budget_bits
        super().__init__(
            f"your information budget for dataset {dataset} is spent ({spent_bits:.2f} of "
            f"{budget_bits:g} bits): questions about rare or absent alleles reveal who is in "
            "the dataset, so new ones are refused (questions you asked before are still "
            f"answered); to query it further, apply for access to {dataset} ('genofed access "
            f"request {dataset}'), after which its beacon answers you in full"
        )


@dataclass(frozen=True)
class Caller:
    """Who asks: their token subject (None when anonymous) and the datasets their visas open."""

    subject: str | None
    readable: frozenset[str] = frozenset()

    @property
    def identified(self) -> bool:
        return bool(self.subject)

    @classmethod
    def anonymous(cls) -> Caller:
        return cls(None, frozenset())

    @classmethod
    def of(cls, permissions: Permissions | None) -> Caller:
        """The caller behind verified permissions; anonymous when there are none."""
        if permissions is None:
            return cls.anonymous()
        return cls(permissions.subject, frozenset(permissions.datasets))


@dataclass(frozen=True)
class GuardSettings:
    """A dataset's guard settings; ``stored`` is False when they are the defaults (no row)."""

    dataset: str
    level: Level = DEFAULT_LEVEL
    min_count: int = DEFAULT_MIN_COUNT
    budget_bits: float = DEFAULT_BUDGET_BITS
    enabled: bool = True
    stored: bool = False


@dataclass(frozen=True)
class DatasetAnswer:
    """One dataset's answer, as the guard allows it to be shown."""

    dataset: str
    granularity: Granularity  # what was given: meta.returnedGranularity
    exists: bool
    count: int | None  # None at boolean granularity
    alleles: list[Allele]  # the matched alleles, at record granularity only; else []
    exact: bool  # False when a count below the threshold is shown as 0
    note: str | None  # why less than asked was given, for the response's info or warnings


# -- settings -------------------------------------------------------------------------------


def guard_settings(session: Session, dataset: str) -> GuardSettings:
    """The dataset's settings: its row, or the safe defaults (controlled, guard on)."""
    row = session.get(BeaconDataset, dataset)
    if row is None:
        return GuardSettings(dataset)
    return GuardSettings(
        dataset=dataset,
        level=_level(row.security_level),
        min_count=row.min_count,
        budget_bits=row.budget_bits,
        enabled=row.guard_enabled,
        stored=True,
    )


def configure(
    session: Session,
    dataset: str,
    *,
    level: str | None = None,
    min_count: int | None = None,
    budget_bits: float | None = None,
    enabled: bool | None = None,
    actor: str = "operator",
) -> GuardSettings:
    """Change the given settings of ``dataset`` (the others stay); audited as beacon.configure.

    Needs a writing session. Lowering a budget below what users spent closes the dataset to
    them for new questions; raising it lets them ask more. Spending is never reset here.
    """
    current = guard_settings(session, dataset)
    wanted = GuardSettings(
        dataset=dataset,
        level=current.level if level is None else _level(level),
        min_count=current.min_count if min_count is None else _min_count(min_count),
        budget_bits=current.budget_bits if budget_bits is None else _budget(budget_bits),
        enabled=current.enabled if enabled is None else enabled,
        stored=True,
    )
    row = session.get(BeaconDataset, dataset)
    if row is None:
        row = BeaconDataset(dataset_accession=dataset)
        session.add(row)
    row.security_level = wanted.level
    row.min_count = wanted.min_count
    row.budget_bits = wanted.budget_bits
    row.guard_enabled = wanted.enabled
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="beacon.configure",
        dataset=dataset,
        detail={
            "level": wanted.level,
            "min_count": wanted.min_count,
            "budget_mbits": _millibits(wanted.budget_bits),
            "guard": wanted.enabled,
        },
    )
    return wanted


def _level(value: str) -> Level:
    for level in LEVELS:
        if value == level:
            return level
    raise GuardSettingsError(f"security level {value!r}: choose {', '.join(LEVELS)}")


def _min_count(value: int) -> int:
    low, high = MIN_COUNT_RANGE
    if not low <= value <= high:
        raise GuardSettingsError(
            f"min_count {value}: give {low} to {high} individuals (below {low} a single answer "
            "can name a person; to show every count, turn the guard off for open data)"
        )
    return value


def _budget(value: float) -> float:
    if not (math.isfinite(value) and 0 <= value <= MAX_BUDGET_BITS):
        raise GuardSettingsError(
            f"budget {value} bits: give 0 to {MAX_BUDGET_BITS:g} (0 answers users without "
            "access only what costs nothing)"
        )
    return float(value)


# -- answering ------------------------------------------------------------------------------


def answer_variants(
    session: Session,
    caller: Caller,
    dataset: str,
    alleles: Sequence[Allele],
    requested: Granularity,
    query_digest: str,
) -> DatasetAnswer:
    """The answer of ``dataset`` to a variant question whose matches are ``alleles``.

    ``query_digest`` (:func:`query_digest`) recognises the same question asked again. Raises
    :class:`LoginRequired` or :class:`BudgetExhausted` after auditing the refusal (see the
    module docstring: commit the session anyway).
    """
    _check_granularity(requested)
    _check_alleles(dataset, alleles)
    settings = guard_settings(session, dataset)
    given, protected = _decide(session, settings, caller, requested, query_digest)
    if not protected:
        shown = _raw_variants(alleles, given)
        _audit_answer(session, caller, settings, query_digest, requested, shown, _Charge())
        return shown.answer(dataset, _lowered_note(settings, requested, given))
    shown = _guarded_variants(alleles, given, settings.min_count)
    cost = _variant_cost(shown, given, settings.min_count)
    charge = _charge(session, caller, settings, query_digest, requested, shown, cost)
    _audit_answer(session, caller, settings, query_digest, requested, shown, charge)
    note = _join(_lowered_note(settings, requested, given), _withheld_note(settings))
    return shown.answer(dataset, note)


def answer_count(
    session: Session, caller: Caller, dataset: str, count: int, requested: Granularity
) -> DatasetAnswer:
    """The answer of ``dataset`` to a question counting individuals, biosamples, runs, ...

    Readers (a visa) get what they ask, exact; others get the count when the level allows it,
    and never a count below the threshold (shown as 0, ``exact=False``, exists false). Record
    level needs a visa, or a public/registered dataset with the guard off. These answers cost
    no budget -- they disclose no allele; a count of individuals selected through a variant is
    an allele answer and must go through :func:`answer_variants`. ``alleles`` stays empty: the
    API fetches the records of an answer given at ``record``.
    """
    _check_granularity(requested)
    if count < 0:
        raise ValueError(f"a count cannot be negative: {count}")
    settings = guard_settings(session, dataset)
    given, protected = _decide(session, settings, caller, requested, None)
    below = protected and count < settings.min_count
    shown = _Shown(
        granularity=given,
        exists=count > 0 and not below,
        count=None if given == "boolean" else (0 if below else count),
        exact=not below,
        alleles=[],
    )
    _audit_answer(session, caller, settings, None, requested, shown, _Charge())
    withheld = (
        f"fewer than {settings.min_count} matching (possibly none): smaller counts are not "
        f"disclosed without access to {dataset}"
        if below
        else None
    )
    return shown.answer(dataset, _join(_lowered_note(settings, requested, given), withheld))


def query_digest(request_parameters: Mapping[str, Any], filters: Sequence[Any]) -> str:
    """A digest of a question that is the same however the question was written.

    Keys are sorted, filters are a set, a one-element list is its element, integers written
    as text are integers, empty values and :data:`PRESENTATION_KEYS` (granularity, paging,
    dataset selection) are left out: ``?start=100&alternateBases=A`` asked by GET and
    ``{"start": [100], "alternateBases": "A"}`` by POST are one question.
    """
    parameters = {
        str(key): _canonical(value)
        for key, value in request_parameters.items()
        if key not in PRESENTATION_KEYS and not _empty(value)
    }
    canonical_filters = sorted({_dump(_canonical(item)) for item in filters})
    text = _dump({"parameters": parameters, "filters": canonical_filters})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the decisions ----------------------------------------------------------------------------


def _decide(
    session: Session,
    settings: GuardSettings,
    caller: Caller,
    requested: Granularity,
    digest: str | None,
) -> tuple[Granularity, bool]:
    """The granularity given and whether the threshold and budget apply (rules 1-3)."""
    if settings.dataset in caller.readable:
        return requested, False
    if settings.level != "public" and not caller.identified:
        _audit_refusal(session, caller, settings, digest, requested, "login_required", None)
        raise LoginRequired(settings.dataset, settings.level)
    return _lower(requested, _ceiling(settings)), settings.enabled


def _ceiling(settings: GuardSettings) -> Granularity:
    """The most a caller without a visa gets from this dataset."""
    if settings.level == "controlled":
        return "boolean"
    return "count" if settings.enabled else "record"


def _lower(a: Granularity, b: Granularity) -> Granularity:
    return a if GRANULARITIES.index(a) <= GRANULARITIES.index(b) else b


@dataclass(frozen=True)
class _Shown:
    """An answer as shown, with what its cost depends on (never shown)."""

    granularity: Granularity
    exists: bool
    count: int | None
    exact: bool
    alleles: list[Allele]
    carriers: tuple[int, ...] = ()  # individuals carrying each disclosed allele
    individuals: int = 0  # individuals carrying any disclosed allele

    def answer(self, dataset: str, note: str | None) -> DatasetAnswer:
        return DatasetAnswer(
            dataset=dataset,
            granularity=self.granularity,
            exists=self.exists,
            count=self.count,
            alleles=self.alleles,
            exact=self.exact,
            note=note,
        )

    def fingerprint(self) -> str:
        """What the answer says: a repeated question is free only while this stays the same."""
        return f"{self.granularity}/{self.exists}/{self.count}/{self.exact}"


def _raw_variants(alleles: Sequence[Allele], given: Granularity) -> _Shown:
    """Everything, exact: for readers and for datasets with the guard off."""
    present = [allele for allele in alleles if _carriers(allele) > 0]
    count = _individuals(present)
    return _Shown(
        granularity=given,
        exists=bool(present),
        count=None if given == "boolean" else count,
        exact=True,
        alleles=list(present) if given == "record" else [],
        individuals=count,
    )


def _guarded_variants(alleles: Sequence[Allele], given: Granularity, k: int) -> _Shown:
    """Only alleles carried by at least ``k`` individuals count (rule 4)."""
    disclosed = [allele for allele in alleles if _carriers(allele) >= k]
    if not disclosed:
        return _Shown(given, False, None if given == "boolean" else 0, False, [])
    individuals = _individuals(disclosed)
    return _Shown(
        granularity=given,
        exists=True,
        count=None if given == "boolean" else individuals,
        exact=True,
        alleles=[],
        carriers=tuple(_carriers(allele) for allele in disclosed),
        individuals=individuals,
    )


def _carriers(allele: Allele) -> int:
    """Individuals carrying the allele; without genotypes, the fewest its count allows."""
    carriers = len(allele.carriers)
    return carriers if carriers or allele.ac <= 0 else (allele.ac + 1) // 2


def _individuals(alleles: Sequence[Allele]) -> int:
    """Individuals carrying any of ``alleles``."""
    if not alleles:
        return 0
    union = BitMap.union(*(allele.carriers for allele in alleles))
    return max(len(union), *(_carriers(allele) for allele in alleles))


# -- costs --------------------------------------------------------------------------------------


def _variant_cost(shown: _Shown, given: Granularity, k: int) -> float:
    """The bits an answer costs (module docstring, "What an answer costs")."""
    if not shown.exists:
        return yes_cost_bits(k, k)
    if given == "boolean":
        return yes_cost_bits(max(shown.carriers), k)
    # Each disclosed allele moves the count: asked with a common one, a rare one would
    # otherwise be disclosed for the price of the common one.
    cost = sum(yes_cost_bits(carriers, k) for carriers in shown.carriers)
    return cost + count_cost_bits(shown.individuals)


@functools.lru_cache(maxsize=4096)
def yes_cost_bits(carriers: int, min_count: int) -> float:
    """``b(c)``: the evidence a disclosed yes gives about a carrier, when ``carriers`` carry it.

    ``log2 E[P(X >= k-1) / P(X >= k)]`` with X ~ Poisson(λ) and λ ~ Gamma(c - 1, 1) (the other
    carriers, under a neutral spectrum); 0 once below :data:`FREE_BITS`.
    """
    _min_count(min_count)
    if carriers < min_count:
        raise ValueError(f"{carriers} carriers are below the threshold {min_count}: not shown")
    if carriers >= _free_from(min_count):
        return 0.0
    return _yes_bits(carriers, min_count)


def count_cost_bits(individuals: int) -> float:
    """What an exact count of ``individuals`` adds: ``log2 E[U / λ] = log2(U / (U - 2))``."""
    if individuals < MIN_COUNT_RANGE[0]:
        raise ValueError(f"counts below {MIN_COUNT_RANGE[0]} are never shown")
    bits = math.log2(individuals / (individuals - 2))
    return bits if bits >= FREE_BITS else 0.0


@functools.lru_cache(maxsize=128)
def _free_from(min_count: int) -> int:
    """The fewest carriers from which a yes costs nothing (``b`` falls as carriers rise)."""
    low = min_count
    high = min_count + 20 * math.isqrt(min_count) + 60  # b(high) < 1e-9 for every threshold
    while low < high:
        middle = (low + high) // 2
        if _yes_bits(middle, min_count) < FREE_BITS:
            high = middle
        else:
            low = middle + 1
    return low


def _yes_bits(carriers: int, k: int) -> float:
    """The integral of ``b(c)``, by the trapezoidal rule on a grid that covers the posterior."""
    shape = carriers - 1  # the other carriers, if the person asked about is one
    upper = shape + 12 * math.sqrt(shape) + 30
    grid = np.linspace(0.0, upper, 4001)[1:]
    log_density = (shape - 1) * np.log(grid) - grid - math.lgamma(shape)
    integrand = np.exp(log_density) * (1.0 + _edge_over_tail(grid, k))
    at_zero = float(k) if shape == 2 else 0.0  # the integrand's limit at λ = 0
    step = float(grid[0])
    integral = step * (at_zero / 2 + float(integrand[:-1].sum()) + float(integrand[-1]) / 2)
    return max(math.log2(integral), 0.0)


def _edge_over_tail(lam: np.ndarray, k: int) -> np.ndarray:
    """``P(X = k-1) / P(X >= k)`` for X ~ Poisson(lam): a series below k, complements above."""
    small = lam < k
    ratio = np.empty_like(lam)
    x = lam[small]
    term, total = np.ones_like(x), np.zeros_like(x)
    for i in range(1, 400):  # terms shrink by x / (k - 1 + i) < 1
        term = term * x / (k - 1 + i)
        total += term
        if not np.any(term > 1e-17 * total):
            break
    ratio[small] = 1.0 / total
    y = lam[~small]
    log_pmf = [j * np.log(y) - y - math.lgamma(j + 1) for j in range(k)]
    below = np.sum(np.exp(np.array(log_pmf)), axis=0)  # P(X <= k-1) < 0.6 here
    ratio[~small] = np.exp(log_pmf[k - 1]) / (1.0 - below)
    return ratio


# -- the budget -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Charge:
    cost_bits: float = 0.0
    spent_bits: float | None = None  # None: no budget applies
    repeat: bool = False


def _charge(
    session: Session,
    caller: Caller,
    settings: GuardSettings,
    digest: str,
    requested: Granularity,
    shown: _Shown,
    cost: float,
) -> _Charge:
    """Spend ``cost`` of the caller's budget for a new answer, or nothing for a repeated one."""
    key = caller.subject if caller.identified and caller.subject else ANONYMOUS_KEY
    answer_key = hashlib.sha256(f"{digest}\n{shown.fingerprint()}".encode()).hexdigest()
    if session.get(BeaconAnswered, (key, settings.dataset, answer_key)) is not None:
        return _Charge(0.0, _spent(session, key, settings.dataset), repeat=True)
    budget = _budget_row(session, key, settings.dataset)
    if budget.spent_bits >= settings.budget_bits:
        spent = budget.spent_bits
        _audit_refusal(session, caller, settings, digest, requested, "budget_exhausted", spent)
        raise BudgetExhausted(settings.dataset, spent, settings.budget_bits)
    cost = cost if cost >= FREE_BITS else 0.0
    if not _insert_once(
        session,
        BeaconAnswered(
            subject=key, dataset_accession=settings.dataset, query_digest=answer_key, cost_bits=cost
        ),
    ):
        return _Charge(0.0, budget.spent_bits, repeat=True)  # a concurrent request paid for it
    budget.spent_bits += cost
    session.flush()
    return _Charge(cost, budget.spent_bits)


def _spent(session: Session, key: str, dataset: str) -> float:
    row = session.get(BeaconBudget, (key, dataset))
    return 0.0 if row is None else row.spent_bits


def _budget_row(session: Session, key: str, dataset: str) -> BeaconBudget:
    """The caller's budget row, locked until the transaction ends (PostgreSQL; SQLite's
    writing session holds the database's write lock already)."""
    row = session.get(BeaconBudget, (key, dataset), with_for_update=True)
    if row is not None:
        return row
    _insert_once(session, BeaconBudget(subject=key, dataset_accession=dataset, spent_bits=0.0))
    row = session.get(BeaconBudget, (key, dataset), with_for_update=True, populate_existing=True)
    assert row is not None
    return row


def _insert_once(session: Session, row: BeaconBudget | BeaconAnswered) -> bool:
    """Insert ``row``; False when a concurrent transaction inserted the same key first."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


# -- the audit ----------------------------------------------------------------------------------


def _actor(caller: Caller) -> str:
    return caller.subject if caller.identified and caller.subject else ANONYMOUS_ACTOR


def _audit_answer(
    session: Session,
    caller: Caller,
    settings: GuardSettings,
    digest: str | None,
    requested: Granularity,
    shown: _Shown,
    charge: _Charge,
) -> None:
    detail: dict[str, Any] = {
        "digest": digest,
        "asked": requested,
        "given": shown.granularity,
        "guard": settings.enabled,
        "cost_mbits": _millibits(charge.cost_bits),
    }
    if charge.spent_bits is not None:
        detail["spent_mbits"] = _millibits(charge.spent_bits)
        detail["repeat"] = charge.repeat
    audit.record(
        session,
        actor=_actor(caller),
        action=AUDIT_ACTION,
        outcome="allowed",
        dataset=settings.dataset,
        detail=detail,
    )


def _audit_refusal(
    session: Session,
    caller: Caller,
    settings: GuardSettings,
    digest: str | None,
    requested: Granularity,
    reason: str,
    spent: float | None,
) -> None:
    detail: dict[str, Any] = {"digest": digest, "asked": requested, "reason": reason}
    if spent is not None:
        detail["spent_mbits"] = _millibits(spent)
        detail["budget_mbits"] = _millibits(settings.budget_bits)
    audit.record(
        session,
        actor=_actor(caller),
        action=AUDIT_ACTION,
        outcome="denied",
        dataset=settings.dataset,
        detail=detail,
    )


def _millibits(bits: float) -> int:
    """Bits as whole millibits: the audit log refuses floats (their JSON is not canonical)."""
    return round(bits * 1000)


# -- notes and checks -----------------------------------------------------------------------


def _lowered_note(
    settings: GuardSettings, requested: Granularity, given: Granularity
) -> str | None:
    if requested == given:
        return None
    return (
        f"{requested}-level answers from dataset {settings.dataset} ({settings.level} data) "
        f"need access to it: answered at {given} level; apply for access for more"
    )


def _withheld_note(settings: GuardSettings) -> str:
    """The same for every protected answer: a note only on some would tell which ones."""
    return (
        f"alleles carried by fewer than {settings.min_count} individuals of dataset "
        f"{settings.dataset} are not disclosed without access to it (absent and rare look alike)"
    )


def _join(*notes: str | None) -> str | None:
    present = [note for note in notes if note]
    return "; ".join(present) if present else None


def _check_granularity(requested: str) -> None:
    if requested not in GRANULARITIES:
        raise ValueError(f"granularity {requested!r}: one of {', '.join(GRANULARITIES)}")


def _check_alleles(dataset: str, alleles: Sequence[Allele]) -> None:
    for allele in alleles:
        if allele.dataset != dataset:
            raise ValueError(f"allele {allele.variant_id} is of {allele.dataset}, not {dataset}")


# -- canonical questions --------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """``value`` as plain JSON in one form (see :func:`query_digest`)."""
    value = _plain(value)
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items() if not _empty(item)}
    if isinstance(value, list | tuple):
        items = [_canonical(item) for item in value]
        return items[0] if len(items) == 1 else items
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    return value


def _plain(value: Any) -> Any:
    """Models and dataclasses as dictionaries (the API may pass parsed request objects)."""
    dump: Callable[..., Any] | None = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(exclude_none=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
