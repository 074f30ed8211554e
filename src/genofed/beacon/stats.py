"""Allele frequency of one variant at this node: per dataset, by sex and by population.

``GET|POST /stats/allele_frequency`` with ``assemblyId``, ``referenceName``, ``start`` (0-based,
as in Beacon), ``referenceBases``, ``alternateBases`` and optionally ``datasetIds``. The hub asks
every node this and combines the answers (:mod:`genofed.federation.stats`); no genotype and no
sample id ever leaves the node, only counts, and only those the privacy guard gives the caller.

Each released dataset with a variant index answers with cells: the whole dataset, each sex and
each population of its genotyped samples (sex and population from the samples' metadata, the
VCF columns joined to samples by :func:`genofed.beacon.index.sample_accessions`; a column that
matches no sample counts as unknown). A cell holds:

- ``individuals``: genotyped samples in the cell, through :func:`guard.answer_count` (a
  count below the dataset's minimum is not shown, and controlled data gives none without a
  visa);
- ``carriers``: those carrying the allele, through :func:`guard.answer_variants` with the
  allele narrowed to the cell's samples: an allele answer like any other, with its threshold,
  its cost in the caller's budget and its audit entry; a question asked again is free;
- ``carrierFrequency`` (carriers / individuals) when both are shown;
- ``alleleCount``, ``alleleNumber``, ``alleleFrequency``: for the dataset, the index's AC and AN;
  for a sex or a population only when they follow exactly from the carriers (AC: nobody is
  homozygous, or everybody is; AN: every genotype was called diploid), since the index keeps
  carriers, not each sample's copies. Without a visa (and with the guard on), AC is shown only
  when at least the minimum count of individuals are homozygous: AC minus carriers is the
  number of homozygotes, a count like any other.

Two more rules keep the breakdowns from undoing the guard: a cell of a dataset whose total is
not disclosed is not asked (it is smaller); and when a breakdown would leave hidden cells whose
sum follows from the total minus the shown cells and is below the minimum count, the smallest
shown cells are hidden too (secondary suppression). Readers with a visa, and datasets with the
guard off, get every number exactly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.access import visas
from genofed.access.http import bearer_identity
from genofed.beacon import guard, index
from genofed.beacon.entities import Catalogue, catalogue, sex_term
from genofed.config import Settings
from genofed.dataout.api import PASSPORT_HEADER, in_session
from genofed.db import for_writing
from genofed.db.models import BeaconSample

router = APIRouter(tags=["statistics"])
BASES = r"^[ACGTacgt]{1,1000}$"
MAX_START = 2**40
UNKNOWN = "unknown"


class VariantAsked(BaseModel):
    """One allele, as Beacon names it (0-based ``start``)."""

    model_config = ConfigDict(extra="forbid")

    assemblyId: str = Field("GRCh38", max_length=32)
    referenceName: str = Field(min_length=1, max_length=32)
    start: int = Field(ge=0, le=MAX_START, description="0-based position of the first base.")
    referenceBases: Annotated[str, Field(pattern=BASES)]
    alternateBases: Annotated[str, Field(pattern=BASES)]
    datasetIds: list[str] = Field(default_factory=list, max_length=100)

    def query(self) -> index.VariantQuery:
        return index.VariantQuery(
            assembly=self.assemblyId,
            chrom=self.referenceName,
            start=self.start,
            reference_bases=self.referenceBases.upper(),
            alternate_bases=self.alternateBases.upper(),
        )

    def digest(self, cell: str) -> str:
        """The guard's digest of one cell's question: asked again, it is free."""
        asked = {"stats": "allele_frequency", **self.model_dump(exclude={"datasetIds"})}
        return guard.query_digest({**asked, "cell": cell}, [])


def read_variant(raw: dict[str, Any]) -> VariantAsked:
    """The variant of a request body or query; 422 saying what is wrong."""
    try:
        return VariantAsked.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()[:10]
        )
        raise HTTPException(422, f"invalid variant: {problems}") from None


# -- the route ----------------------------------------------------------------------------------


@router.api_route("/stats/allele_frequency", methods=["GET", "POST"])
async def allele_frequency_route(request: Request) -> JSONResponse:
    """The allele's frequency in each dataset, by sex and population, as the guard allows."""
    asked = read_variant(await read_raw(request))
    caller = await _caller(request)
    engine = request.app.state.node.engine
    try:
        answer = await in_session(for_writing(engine), lambda s: allele_frequency(s, caller, asked))
    except index.InvalidVariantQuery as error:
        raise HTTPException(422, str(error)) from None
    if not answer.datasets and answer.refusals:
        refusal = answer.refusals[0]
        status = 401 if isinstance(refusal, guard.LoginRequired) else 429
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(refusal)}, status_code=status, headers=headers)
    return JSONResponse(answer.as_json(asked))


async def read_raw(request: Request) -> dict[str, Any]:
    """The variant as sent: query parameters (GET) or a JSON object (POST)."""
    if request.method == "GET":
        raw: dict[str, Any] = dict(request.query_params)
        if "datasetIds" in raw:
            raw["datasetIds"] = [d for d in raw["datasetIds"].split(",") if d.strip()]
        return raw
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "the body is not JSON: send the variant as an object") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "the body must be a JSON object naming the variant")
    return body


async def _caller(request: Request) -> guard.Caller:
    """Anonymous without a token; otherwise the subject and the datasets their visas open."""
    if not request.headers.get("authorization"):
        return guard.Caller.anonymous()
    identity = await bearer_identity(request)
    settings: Settings = request.app.state.settings
    presented = visas.presented_visas(request.headers.getlist(PASSPORT_HEADER))
    permissions = await in_session(
        request.app.state.node.engine,
        lambda s: visas.permissions(s, settings, identity.subject, presented),
    )
    return guard.Caller.of(permissions)


# -- the answer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell as shown: None where the guard disclosed nothing."""

    label: str
    individuals: int | None
    carriers: int | None
    allele_count: int | None = None
    allele_number: int | None = None
    term: str | None = None  # the sex's ontology term
    refused: str | None = None

    @property
    def suppressed(self) -> bool:
        return self.carriers is None or self.individuals is None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"label": self.label}
        if self.term:
            shown["id"] = self.term
        shown |= {
            "individuals": self.individuals,
            "carriers": self.carriers,
            "carrierFrequency": _ratio(self.carriers, self.individuals),
            "alleleCount": self.allele_count,
            "alleleNumber": self.allele_number,
            "alleleFrequency": _ratio(self.allele_count, self.allele_number),
            "suppressed": self.suppressed,
        }
        if self.refused:
            shown["refused"] = self.refused
        return shown


def _ratio(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, 6)


@dataclass(frozen=True)
class DatasetStats:
    dataset: str
    exists: bool
    total: Cell
    by_sex: list[Cell]
    by_population: list[Cell]
    note: str | None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.dataset,
            "exists": self.exists,
            "total": self.total.as_json(),
            "bySex": [cell.as_json() for cell in self.by_sex],
            "byPopulation": [cell.as_json() for cell in self.by_population],
        }
        if self.note:
            shown["note"] = self.note
        return shown


@dataclass
class Answer:
    datasets: list[DatasetStats]
    refusals: list[guard.LoginRequired | guard.BudgetExhausted]
    not_indexed: list[str]

    def as_json(self, asked: VariantAsked) -> dict[str, Any]:
        return {
            "variant": asked.model_dump(exclude={"datasetIds"}),
            "datasets": [stats.as_json() for stats in self.datasets],
            "notAnswered": [f"{error.dataset}: {error}" for error in self.refusals],
            "notIndexed": self.not_indexed,
        }


def allele_frequency(session: Session, caller: guard.Caller, asked: VariantAsked) -> Answer:
    """Every chosen dataset's cells for ``asked``; needs a writing session (the guard writes
    budgets and audit entries, refusals included)."""
    found = catalogue(session)
    chosen = [d for d in found.datasets if not asked.datasetIds or d in asked.datasetIds]
    alleles = {
        allele.dataset: allele
        for allele in index.find_alleles(session, chosen, asked.query())
        if (allele.ref, allele.alt) == (asked.referenceBases.upper(), asked.alternateBases.upper())
    }
    answer = Answer([], [], [])
    for dataset in chosen:
        groups = _groups(session, found, dataset)
        if groups is None:
            answer.not_indexed.append(dataset)
            continue
        try:
            answer.datasets.append(
                _dataset(session, caller, asked, dataset, alleles.get(dataset), groups)
            )
        except (guard.LoginRequired, guard.BudgetExhausted) as error:
            answer.refusals.append(error)
    return answer


@dataclass(frozen=True)
class Groups:
    """The dataset's genotyped samples (their numbers in the index), by sex and population."""

    everyone: BitMap
    by_sex: dict[str, BitMap]
    by_population: dict[str, BitMap]


def _groups(session: Session, found: Catalogue, dataset: str) -> Groups | None:
    """None when the dataset has no genotyped sample in the index."""
    numbers = list(
        session.scalars(
            select(BeaconSample.number).where(BeaconSample.dataset_accession == dataset)
        )
    )
    if not numbers:
        return None
    by_sex: dict[str, BitMap] = defaultdict(BitMap)
    by_population: dict[str, BitMap] = defaultdict(BitMap)
    for number, accession in zip(
        numbers, index.sample_accessions(session, dataset, numbers), strict=True
    ):
        sample = found.samples.get(accession) if accession else None
        by_sex[sample.sex if sample else UNKNOWN].add(number)
        by_population[(sample.population or UNKNOWN) if sample else UNKNOWN].add(number)
    return Groups(BitMap(numbers), dict(by_sex), dict(by_population))


@dataclass(frozen=True)
class _Asked:
    """A cell as shown, what the guard said of existence, and what the cell truly holds (for
    the secondary suppression only: never shown)."""

    cell: Cell
    exists: bool
    people: int
    carrying: int


@dataclass(frozen=True)
class _Asker:
    """Asks the guard for the cells of one dataset."""

    session: Session
    caller: guard.Caller
    asked: VariantAsked
    dataset: str
    allele: index.Allele | None
    open_counts: bool  # AC may be shown (module docstring)
    diploid: bool  # every genotype was called diploid: AN = 2 x individuals

    def cell(self, label: str, members: BitMap, *, whole: bool = False) -> _Asked:
        """One cell; a spent budget refuses the cell (the whole dataset, for its total)."""
        people = guard.answer_count(self.session, self.caller, self.dataset, len(members), "count")
        narrowed = self._narrowed(members)
        carrying = len(narrowed[0].carriers) if narrowed else 0
        digest = self.asked.digest(f"{self.dataset}/{label}")
        try:
            given = guard.answer_variants(
                self.session, self.caller, self.dataset, narrowed, "count", digest
            )
        except guard.BudgetExhausted as error:
            if whole:
                raise
            refused = Cell(label, _shown(people), None, refused=str(error))
            return _Asked(refused, False, len(members), carrying)
        individuals, carriers = _shown(people), _shown(given)
        shown = Cell(
            label,
            individuals,
            carriers,
            self._allele_count(carriers, whole),
            self._allele_number(individuals, whole),
        )
        return _Asked(shown, given.exists, len(members), carrying)

    def _narrowed(self, members: BitMap) -> list[index.Allele]:
        """The allele with only the cell's carriers; none when nobody in the cell carries it
        (an allele without carriers would count as carried by its AC's worth)."""
        if self.allele is None:
            return []
        narrowed = replace(self.allele, carriers=self.allele.carriers & members)
        return [narrowed] if narrowed.carriers else []

    def _allele_count(self, carriers: int | None, whole: bool) -> int | None:
        allele = self.allele
        if carriers is None or not self.open_counts:
            return None
        if allele is None:
            return 0
        if whole:
            return allele.ac
        if allele.hom == 0:
            return carriers
        return 2 * carriers if allele.hom == len(allele.carriers) else None

    def _allele_number(self, individuals: int | None, whole: bool) -> int | None:
        if individuals is None or self.allele is None:
            return None
        if whole:
            return self.allele.an
        return 2 * individuals if self.diploid else None

    def breakdown(
        self, groups: dict[str, BitMap], term: Callable[[str], str | None], k: int | None
    ) -> list[Cell]:
        """The cells of one breakdown (``k``: the threshold, None when the caller sees every
        number): a spent budget hides them all (the total minus the others would give the
        refused one), and the secondary suppression applies."""
        asked = [self.cell(label, members) for label, members in sorted(groups.items())]
        cells = [replace(one.cell, term=term(one.cell.label)) for one in asked]
        if any(cell.refused for cell in cells):
            return [_hidden(cell) for cell in cells]
        if k is None:
            return cells
        people = [one.people for one in asked]
        carrying = [one.carrying for one in asked]
        return secondary_suppression(cells, people, carrying, k)


def _shown(answer: guard.DatasetAnswer) -> int | None:
    """The count the guard disclosed; None for none (yes/no only, or below the threshold)."""
    return answer.count if answer.count is not None and answer.exact else None


def _hidden(cell: Cell) -> Cell:
    return replace(cell, individuals=None, carriers=None, allele_count=None, allele_number=None)


def _dataset(
    session: Session,
    caller: guard.Caller,
    asked: VariantAsked,
    dataset: str,
    allele: index.Allele | None,
    groups: Groups,
) -> DatasetStats:
    settings = guard.guard_settings(session, dataset)
    exact = dataset in caller.readable or not settings.enabled
    asker = _Asker(
        session,
        caller,
        asked,
        dataset,
        allele,
        open_counts=exact or (allele is not None and allele.hom >= settings.min_count),
        diploid=allele is not None and allele.an == 2 * len(groups.everyone),
    )
    total = asker.cell("all", groups.everyone, whole=True)
    note = _note(settings, exact)
    if total.cell.carriers is None:  # the total is not disclosed: no part of it is asked
        return DatasetStats(dataset, total.exists, total.cell, [], [], note)
    k = None if exact else settings.min_count
    by_sex = asker.breakdown(groups.by_sex, lambda sex: sex_term(sex)["id"], k)
    by_population = asker.breakdown(groups.by_population, lambda _: None, k)
    return DatasetStats(dataset, total.exists, total.cell, by_sex, by_population, note)


def secondary_suppression(
    cells: list[Cell], people: list[int], carrying: list[int], k: int
) -> list[Cell]:
    """Hide more cells while the hidden ones together hold fewer than ``k`` individuals or
    carriers (but some): that sum is the total minus the shown cells, a count the guard would
    not have given. The cells hidden first are the smallest, so the least is lost."""
    shown = list(cells)
    while (leak := _leak(shown, people, carrying, k)) is not None:
        field, truth = leak
        candidates = [i for i, cell in enumerate(shown) if getattr(cell, field) is not None]
        smallest = min(candidates, key=lambda i: (truth[i], people[i] + carrying[i], i))
        shown[smallest] = _hidden(shown[smallest])
    return shown


def _leak(
    shown: list[Cell], people: list[int], carrying: list[int], k: int
) -> tuple[str, list[int]] | None:
    """The count whose hidden cells would be given away by subtraction, if any."""
    for field, truth in (("individuals", people), ("carriers", carrying)):
        hidden = [i for i, cell in enumerate(shown) if getattr(cell, field) is None]
        if hidden and len(hidden) < len(shown) and sum(truth[i] for i in hidden) < k:
            return field, truth
    return None


def _note(settings: guard.GuardSettings, exact: bool) -> str | None:
    if exact:
        return None
    return (
        f"counts of fewer than {settings.min_count} individuals of {settings.dataset} are not "
        "shown (absent and rare look alike), nor the cells from which they would follow; "
        "allele counts only where they follow from the carriers (and, without access, where "
        f"at least {settings.min_count} individuals are homozygous)"
    )
