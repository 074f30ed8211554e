"""Federated statistics at the hub: an allele's frequency across the federation.

``GET|POST /stats/allele_frequency`` on the hub takes the variant as a node does
(:class:`genofed.beacon.stats.VariantAsked`), asks every member's ``/stats/allele_frequency``
at once with the caller's identity (as the beacon network does: the same timeout, the same
reports of late, down and refusing nodes), and answers with:

- ``nodes``: each node's datasets exactly as the node gave them (its guard decided every number),
  plus the node's own total over its datasets;
- ``federation``: the total, by sex and by population (populations by their name as the nodes
  wrote it), combined from the cells the nodes disclosed.

Combining never recovers what a node withheld: a sum adds only the cells that have the number,
and a frequency is computed only over cells that have both of its numbers (carriers and
individuals; allele count and number). Each combined cell says from how many of the nodes'
cells it was made (``cells`` of ``of``), so a reader sees when the federation's figure leaves
out suppressed cells: carriers and allele counts are then lower bounds, and frequencies hold
for the cells included only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from genofed.beacon.stats import VariantAsked, read_raw, read_variant
from genofed.federation.beacon_network import (
    Call,
    Reply,
    ask_members,
    current_members,
    no_answer,
)

router = APIRouter(tags=["statistics"])
PATH = "/stats/allele_frequency"
NOTE = (
    "totals add only the numbers the nodes disclosed: cells a node suppressed (fewer "
    "individuals than a dataset's minimum count, counts of data given as yes/no only, or cells "
    "from which a suppressed one would follow) are left out, so carriers and allele counts are "
    "then lower bounds, and each frequency is over the cells that gave both of its numbers "
    "('cells' of 'of' says how many)"
)
COUNTS = ("individuals", "carriers", "alleleCount", "alleleNumber")


@router.api_route(PATH, methods=["GET", "POST"])
async def allele_frequency(request: Request) -> JSONResponse:
    """The allele's frequency in every member's datasets and across the federation."""
    asked = read_variant(await read_raw(request))
    body = asked.model_dump(exclude={"datasetIds"})
    calls = [(member, Call("POST", PATH, body=body)) for member in await current_members(request)]
    replies = await ask_members(request, calls)
    if calls and not any(reply.state == "answered" for reply in replies):
        status, refusal = no_answer(None, replies)
        detail = {"detail": refusal["error"]["errorMessage"], "info": refusal.get("info", {})}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(detail, status_code=status, headers=headers)
    return JSONResponse(combined(asked, replies))


def combined(asked: VariantAsked, replies: Sequence[Reply]) -> dict[str, Any]:
    """The nodes' answers and the federation's cells (module docstring)."""
    answered = [reply for reply in replies if reply.state == "answered" and reply.body]
    nodes = [_node(reply) for reply in answered]
    datasets = [dataset for node in nodes for dataset in node["datasets"]]
    return {
        "variant": asked.model_dump(exclude={"datasetIds"}),
        "federation": {
            "total": combine(dataset["total"] for dataset in datasets),
            "bySex": _by_label(cell for dataset in datasets for cell in dataset["bySex"]),
            "byPopulation": _by_label(
                cell for dataset in datasets for cell in dataset["byPopulation"]
            ),
            "datasets": len(datasets),
            "note": NOTE,
        },
        "nodes": nodes,
        "info": {"nodes": [reply.report() for reply in replies]},
    }


def _node(reply: Reply) -> dict[str, Any]:
    body = reply.body or {}
    datasets = [item for item in body.get("datasets", []) if _is_dataset(item)]
    return {
        "node": reply.member.tag(),
        "total": combine(dataset["total"] for dataset in datasets),
        "datasets": datasets,
        "notAnswered": [item for item in body.get("notAnswered", []) if isinstance(item, str)],
    }


def _is_dataset(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("total"), dict)
        and isinstance(item.get("bySex"), list)
        and isinstance(item.get("byPopulation"), list)
    )


def _by_label(cells: Iterable[Any]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        if isinstance(cell, dict) and isinstance(cell.get("label"), str):
            grouped[cell["label"]].append(cell)
    return [{"label": label, **combine(grouped[label])} for label in sorted(grouped)]


def combine(cells: Iterable[Any]) -> dict[str, Any]:
    """One cell from many: sums of the disclosed numbers, frequencies over the cells that
    disclosed both of theirs."""
    listed = [cell for cell in cells if isinstance(cell, dict)]
    sums = {name: _sum(listed, (name,)) for name in COUNTS}
    carriers, individuals = _sum(listed, ("carriers", "individuals"), both=True)
    count, number = _sum(listed, ("alleleCount", "alleleNumber"), both=True)
    return {
        **{name: value for name, (value,) in sums.items()},
        "carrierFrequency": round(carriers / individuals, 6) if individuals else None,
        "alleleFrequency": round(count / number, 6) if number else None,
        "cells": sum(1 for cell in listed if not cell.get("suppressed")),
        "of": len(listed),
    }


def _sum(cells: Sequence[dict[str, Any]], names: tuple[str, ...], both: bool = False) -> Any:
    """The sums of ``names`` over the cells holding every one of them as a count; None for a
    sum of nothing (alone) or 0 (``both``, for a ratio)."""
    kept = [cell for cell in cells if all(_count(cell.get(name)) for name in names)]
    if not kept:
        return tuple(0 if both else None for _ in names)
    return tuple(sum(int(cell[name]) for cell in kept) for name in names)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
