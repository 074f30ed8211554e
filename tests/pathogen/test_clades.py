"""Clade trees: parsing and its errors, assignment on aligned genomes and under unknown sites,
and the store's clade and month fields against a brute-force count."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import PLACES, analysis, record

from genofed.pathogen.analysis import Analysis, analyse
from genofed.pathogen.clades import (
    HEADER,
    Clade,
    CladeError,
    assign_clade,
    parse_clades,
    signature,
)
from genofed.pathogen.lapis import lapis_router
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.record import PathogenRecord
from genofed.pathogen.store import PathogenStore, SampleFilter
from genofed.pathogen.synthetic import genome

SARS = load_organism("sars-cov-2")
CLADES = SARS.clades
NAMES = [clade.name for clade in CLADES]
TOY_REFERENCE = "ACGT" * 25


def _edits(mutations: tuple[str, ...]) -> tuple[tuple[int, str, str], ...]:
    return tuple((int(m[1:-1]), m[0], "" if m[-1] == "-" else m[-1]) for m in mutations)


def _path(name: str) -> list[str]:
    by_name = {clade.name: clade for clade in CLADES}
    path = [name]
    while (parent := by_name[path[-1]].parent) is not None:
        path.append(parent)
    return path


def _tsv(rows: Sequence[Sequence[str]]) -> str:
    return "\n".join("\t".join(row) for row in [HEADER, *rows]) + "\n"


# -- the shipped tree ---------------------------------------------------------------------------


def test_shipped_tree_is_nextstrains_shape() -> None:
    by_name = {clade.name: clade for clade in CLADES}
    assert by_name["19A"].parent is None and not by_name["19A"].mutations
    assert {"20A", "20I", "20H", "20J", "21A", "21K", "21L", "22B"} <= set(by_name)
    assert _path("21K") == ["21K", "21M", "20B", "20A", "19A"]
    assert _path("20H") == ["20H", "20C", "20A", "19A"]
    assert "G23012A" in signature(CLADES, "20H")  # S:E484K, Beta's
    assert load_organism("flu-h3n2-ha").clades == ()


@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_clade_is_assigned_to_a_generated_genome(name: str) -> None:
    rng = random.Random(name)
    sequence = genome(SARS.reference, _edits(signature(CLADES, name)), rng)
    result = analyse(SARS, sequence)
    assert result.clade == name
    assert set(signature(CLADES, name)) <= set(result.substitutions + result.deletions)


def test_unknown_defining_site_counts_neither_way_on_aligned_genomes() -> None:
    edits = _edits(signature(CLADES, "21K"))
    plain = genome(SARS.reference, edits, random.Random(3))
    masked = _masked(plain, SARS.reference, [23202])
    assert analyse(SARS, masked).clade == "21K"  # 3 of 4 present, one unknown
    twice = _masked(plain, SARS.reference, [23202, 15240])
    assert analyse(SARS, twice).clade == "21M"  # 2 of 4: not enough, and never the sibling 21L


def _masked(sequence: str, reference: str, sites: list[int]) -> str:
    """``sequence`` with N over the reference ``sites`` (found by their 20-nt context)."""
    out = sequence
    for site in sites:
        context = reference[site - 21 : site - 1]
        at = out.index(context) + 20
        out = out[:at] + "N" + out[at + 1 :]
    return out


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.data())
def test_unknown_sites_never_move_a_genome_off_its_path(name: str, data: st.DataObject) -> None:
    carried = signature(CLADES, name)
    hidden = data.draw(st.sets(st.sampled_from(carried)) if carried else st.just(set()))
    sites = sorted(int(m[1:-1]) for m in hidden)
    present = [m for m in carried if m not in hidden]
    assigned = assign_clade(CLADES, present, (), [(s, s) for s in sites])
    assert assigned in _path(name)
    if not hidden:
        assert assigned == name


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.integers(0, 2**32))
def test_a_third_unknown_per_clade_keeps_the_clade(name: str, seed: int) -> None:
    rng = random.Random(seed)
    by_name = {clade.name: clade for clade in CLADES}
    hidden: list[str] = []
    for step in _path(name):
        mutations = by_name[step].mutations
        hidden += rng.sample(mutations, len(mutations) // 3)
    present = [m for m in signature(CLADES, name) if m not in hidden]
    sites = sorted((int(m[1:-1]),) * 2 for m in hidden)
    assert assign_clade(CLADES, present, (), sites) == name


def test_ba4_and_ba5_told_apart_and_not_guessed() -> None:
    ba4, ba5 = signature(CLADES, "22A"), signature(CLADES, "22B")
    assert assign_clade(CLADES, ba4, (), ()) == "22A"
    assert assign_clade(CLADES, ba5, (), ()) == "22B"
    unread = [m for m in ba4 if m != "C28724T"]
    assert assign_clade(CLADES, unread, (), [(28724, 28724)]) == "21L"


def test_no_clades_no_assignment_and_old_analyses_load() -> None:
    flu = load_organism("flu-h3n2-ha")
    assert analyse(flu, flu.reference).clade is None
    assert analyse(SARS, SARS.reference).clade == "19A"
    stored = replace(analysis(), clade="21K").to_json()
    assert Analysis.from_json(stored).clade == "21K"
    del stored["clade"]
    assert Analysis.from_json(stored).clade is None


# -- parsing -----------------------------------------------------------------------------------


def test_parse_reads_a_tree_parents_first() -> None:
    text = "# a toy\n" + _tsv(
        [
            ("B", "A", "", "G3T"),
            ("A", "", "root", ""),
            ("C", "B", "the third", "A1C T4- T4-"),
        ]
    )
    clades = parse_clades(text, "toy.tsv", TOY_REFERENCE)
    assert [c.name for c in clades] == ["A", "B", "C"]
    assert clades[2] == Clade("C", "B", "the third", ("A1C", "T4-"))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("A", "", "", ""), ("B", "Z", "", "G3T")], "unknown parent Z"),
        ([("A", "", "", ""), ("B", "A", "", "G3")], "'G3' is not a nucleotide mutation"),
        ([("A", "", "", ""), ("B", "A", "", "C3T")], "the reference has G at 3, not C"),
        ([("A", "", "", ""), ("B", "A", "", "A101T")], "beyond the reference"),
        ([("A", "", "", ""), ("B", "A", "", "G3G")], "changes nothing"),
        ([("A", "", "", ""), ("B", "A", "", "")], "lists no defining mutation"),
        ([("A", "", "", ""), ("B", "", "", "")], "2 root clades"),
        ([("A", "", "", ""), ("A", "", "", "")], "defined twice"),
        ([("A", "", "", ""), ("B", "C", "", "G3T"), ("C", "B", "", "T4A")], "form a cycle"),
        ([("A", "", "", ""), ("B b", "A", "", "G3T")], "'B b' is not a clade name"),
    ],
)
def test_parse_errors_name_the_problem(rows: list[tuple[str, ...]], message: str) -> None:
    with pytest.raises(CladeError, match=message):
        parse_clades(_tsv(rows), "toy.tsv", TOY_REFERENCE)


def test_parse_checks_header_and_columns() -> None:
    with pytest.raises(CladeError, match="first line must be the header"):
        parse_clades("A\t\t\t\n", "toy.tsv", TOY_REFERENCE)
    with pytest.raises(CladeError, match="line 3 has 2 tab-separated columns"):
        parse_clades(_tsv([("A", "", "", "")]) + "B\tA\n", "toy.tsv", TOY_REFERENCE)


@st.composite
def _trees(draw: st.DrawFn) -> list[Clade]:
    naming = st.from_regex(r"[A-Z][a-z0-9]{0,5}", fullmatch=True)
    names = draw(st.lists(naming, min_size=1, max_size=8, unique=True))
    clades = [Clade(names[0], None, "", ())]
    for index, name in enumerate(names[1:], start=1):
        parent = names[draw(st.integers(0, index - 1))]
        sites = draw(st.lists(st.integers(1, len(TOY_REFERENCE)), min_size=1, max_size=4))
        mutations = []
        for site in dict.fromkeys(sites):
            base = TOY_REFERENCE[site - 1]
            alt = draw(st.sampled_from([b for b in "ACGT-" if b != base]))
            mutations.append(f"{base}{site}{alt}")
        clades.append(Clade(name, parent, draw(st.sampled_from(["", "a label"])), tuple(mutations)))
    return clades


@given(_trees())
def test_parse_round_trips_any_tree(tree: list[Clade]) -> None:
    rows = [(c.name, c.parent or "", c.label, " ".join(c.mutations)) for c in reversed(tree)]
    parsed = parse_clades(_tsv(rows), "tree.tsv", TOY_REFERENCE)
    assert set(parsed) == set(tree)
    seen: set[str] = set()
    for clade in parsed:
        assert clade.parent is None or clade.parent in seen
        seen.add(clade.name)


# -- the store ----------------------------------------------------------------------------------


def _records(count: int, seed: int) -> list[PathogenRecord]:
    rng = random.Random(seed)
    days = ["2021-01-05", "2021-01-30", "2021-02-14", "2021-03", "2021", "2022-02-01", ""]
    return [
        record(
            f"GFBE{number:08d}",
            replace(analysis(), clade=rng.choice(["19A", "20A", "20I", "21A", "21K", "22B", None])),
            metadata={"collection_date": rng.choice(days), "location": rng.choice(PLACES)},
        )
        for number in range(count)
    ]


def test_store_groups_and_filters_clades_by_month_like_brute_force() -> None:
    records = _records(400, seed=11)
    store = PathogenStore(SARS)
    store.add_many(records, batch=64)
    fields = ("clade", "collectionMonth", "country")
    answer = store.aggregated(SampleFilter(), fields)
    counted = Counter({tuple(row[f] for f in fields): row["count"] for row in answer.data})

    def month(item: PathogenRecord) -> str | None:
        day = item.metadata["collection_date"]
        return day[:7] if len(day) >= 7 else None

    def country(item: PathogenRecord) -> str | None:
        parts = item.metadata["location"].split(" / ")
        return parts[1] if len(parts) > 1 else None

    expected = Counter((r.analysis.clade, month(r), country(r)) for r in records)
    assert counted == expected
    chosen = store.details(SampleFilter(equals={"clade": ("21K", "20A")}), ["accession"])
    wanted = {r.accession for r in records if r.analysis.clade in ("21K", "20A")}
    assert {row["accession"] for row in chosen.data} == wanted and len(wanted) > 50


def test_lapis_filters_and_groups_by_clade_and_month_over_http() -> None:
    records = _records(200, seed=5)
    store = PathogenStore(SARS)
    store.add_many(records)
    app = FastAPI()
    app.include_router(lapis_router(lambda request: store), prefix="/lapis")
    with TestClient(app) as client:
        answer = client.get(
            "/lapis/sample/aggregated",
            params={"clade": "21K", "fields": "collectionMonth"},
        )
    assert answer.status_code == 200, answer.text
    got = {row["collectionMonth"]: row["count"] for row in answer.json()["data"]}
    months = Counter(
        r.metadata["collection_date"][:7] if len(r.metadata["collection_date"]) >= 7 else None
        for r in records
        if r.analysis.clade == "21K"
    )
    assert got == dict(months) and sum(months.values()) > 10
