"""Helpers for the privacy guard's tests: alleles, callers, sessions, and the attack's bench.

The attack itself lives in ``bench/reidentification.py`` (the same code measures the figures in
``docs/privacy.md``); it is imported from there so that the test and the bench cannot drift.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from pyroaring import BitMap
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import audit
from genofed.beacon.guard import (
    BudgetExhausted,
    Caller,
    DatasetAnswer,
    Granularity,
    LoginRequired,
    answer_variants,
    query_digest,
)
from genofed.beacon.index import Allele
from genofed.db.models import AuditEntry, BeaconBudget


def _bench_module(name: str) -> ModuleType:
    """A bench script as a module, loaded by path: putting bench/ on sys.path would let
    bench/crypt4gh.py shadow the reference crypt4gh package in other tests."""
    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


reidentification = _bench_module("reidentification")

DATASET = "EGAD00000000001"
OTHER = "EGAD00000000002"
ALICE = Caller("alice@example.org")  # identified, no visa
BOB = Caller("bob@example.org")
READER = Caller("reader@example.org", frozenset({DATASET}))  # a visa for DATASET
ANONYMOUS = Caller.anonymous()

__all__ = ["reidentification"]


def allele(
    carriers: Sequence[int] = (), *, position: int = 100, dataset: str = DATASET, ac: int = -1
) -> Allele:
    """An allele carried (heterozygous) by the samples numbered ``carriers``."""
    count = len(carriers) if ac < 0 else ac  # heterozygous carriers: one allele each
    return Allele(
        dataset=dataset,
        assembly="GRCh38",
        chrom="1",
        start=position,
        end=position + 1,
        ref="A",
        alt="G",
        variant_type="SNP",
        ac=count,
        an=2000,
        hom=0,
        carriers=BitMap(carriers),
    )


def question(position: int = 100, alternate: str = "G") -> str:
    """The digest of "is there an ``alternate`` at ``position``?"."""
    return query_digest(
        {"referenceName": "1", "start": [position], "alternateBases": alternate}, []
    )


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    with db.session_scope(db.for_writing(engine)) as session:
        yield session


def ask(
    engine: Engine,
    caller: Caller,
    alleles: Sequence[Allele],
    requested: Granularity = "boolean",
    *,
    position: int = 100,
    dataset: str = DATASET,
) -> DatasetAnswer:
    """One variant question in a transaction of its own, committed even when it is refused
    (as the API must, so that the refusal's audit entry is kept)."""
    refusal: LoginRequired | BudgetExhausted | None = None
    with writing(engine) as session:
        try:
            return answer_variants(session, caller, dataset, alleles, requested, question(position))
        except (LoginRequired, BudgetExhausted) as error:
            refusal = error
    raise refusal


def spent(engine: Engine, caller: Caller, dataset: str = DATASET) -> float:
    with db.session_scope(engine) as session:
        row = session.get(BeaconBudget, (caller.subject or "", dataset))
        return 0.0 if row is None else row.spent_bits


def entries(engine: Engine, action: str = "beacon.query") -> list[dict[str, Any]]:
    """The audit entries of ``action``, oldest first, as the auditor sees them."""
    with db.session_scope(engine) as session:
        found = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        )
        return [audit.as_json(entry) for entry in found]
