"""The query store against a brute-force reading of the same records, one by one."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import (
    AA_SITES,
    LENGTH,
    ORGANISM,
    POSITIONS,
    REFERENCE,
    amino_acid_at,
    analysis,
    base_at,
    holds,
    leaf_holds,
    leaf_pool,
    random_records,
    record,
)

from genofed.pathogen import store as store_module
from genofed.pathogen.batch import date_range
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.record import RESTRICTED, PathogenRecord
from genofed.pathogen.store import PathogenStore, SampleFilter, StoreError
from genofed.pathogen.variant_query import (
    And,
    Expression,
    NOf,
    Not,
    NucleotideMutation,
    Or,
    parse_variant_query,
)

RECORDS = 600


@cache
def loaded() -> tuple[PathogenStore, tuple[PathogenRecord, ...]]:
    records = tuple(random_records(7, RECORDS))
    store = PathogenStore(ORGANISM)
    store.add_many(records, batch=128)
    return store, records


def accessions(store: PathogenStore, query: SampleFilter) -> set[str]:
    return {e["accession"] for e in store.details(query, ["accession"]).data}


def _compound(children: st.SearchStrategy[Expression]) -> st.SearchStrategy[Expression]:
    many = st.lists(children, min_size=2, max_size=3).map(tuple)
    n_of = st.lists(children, min_size=1, max_size=4).flatmap(
        lambda items: st.builds(
            NOf, st.integers(1, len(items)), st.booleans(), st.just(tuple(items))
        )
    )
    return st.one_of(many.map(And), many.map(Or), children.map(Not), n_of)


VARIANTS = st.recursive(st.sampled_from(leaf_pool()), _compound, max_leaves=8)


@given(VARIANTS)
@settings(max_examples=150, deadline=None)
def test_variant_queries_match_brute_force(expression: Expression) -> None:
    store, records = loaded()
    expected = {r.accession for r in records if holds(expression, r)}
    assert accessions(store, SampleFilter(variant=expression)) == expected
    # and through the text form, as a user writes it
    assert len(store.select(SampleFilter(variant=parse_variant_query(str(expression))))) == len(
        expected
    )


def test_every_pool_leaf_matches_brute_force() -> None:
    store, records = loaded()
    for leaf in leaf_pool():
        expected = sum(leaf_holds(leaf, r) for r in records)
        assert len(store.select(SampleFilter(variant=leaf))) == expected, str(leaf)


def test_grouped_counts_match_brute_force() -> None:
    store, records = loaded()
    answer = store.aggregated(SampleFilter(), ["country", "qcStatus", "date"])
    got = {(e["country"], e["qcStatus"], e["date"]): e["count"] for e in answer.data}

    def country(r: PathogenRecord) -> str | None:
        parts = [p.strip() for p in r.metadata["location"].split("/")]
        return parts[1] if len(parts) > 1 else None

    expected = Counter(
        (country(r), r.analysis.qc.status, r.metadata["collection_date"] or None) for r in records
    )
    assert got == dict(expected)
    assert store.aggregated(SampleFilter()).data == [{"count": RECORDS}]


@pytest.mark.parametrize("kind", ["nucleotide", "aminoAcid"])
@pytest.mark.parametrize("minimum", [0.0, 0.05, 0.3])
@pytest.mark.parametrize("reads_per_bitmap", [0, 10**9])  # count by bitmaps, by row lists
def test_mutation_proportions_count_only_known_bases(
    kind: str, minimum: float, reads_per_bitmap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_ROW_READS_PER_BITMAP", reads_per_bitmap)
    store, records = loaded()
    chosen = [r for r in records if r.node == "BE"]
    answer = store.mutations(SampleFilter(equals={"node": ("BE",)}), kind, minimum)  # type: ignore[arg-type]
    got = {e["mutation"]: (e["count"], e["coverage"]) for e in answer.data}
    expected = {}
    if kind == "nucleotide":
        sites = [(p, lambda r, p=p: base_at(r, p)) for p in POSITIONS]
        name = lambda p, s: f"{REFERENCE[p - 1]}{p}{s}"  # noqa: E731
    else:
        sites = [(s, lambda r, s=s: amino_acid_at(r, *s)) for s in AA_SITES]
        name = lambda s, x: f"{s[0]}:{AA_SITES[s]}{s[1]}{x}"  # noqa: E731
    for site, reader in sites:
        seen = [reader(r) for r in chosen]
        covered = sum(s is not None for s in seen)
        for symbol, count in Counter(s for s in seen if s not in (None, ".")).items():
            if count / covered >= minimum:
                expected[name(site, symbol)] = (count, covered)
    assert got == expected
    assert all(e["proportion"] == e["count"] / e["coverage"] for e in answer.data)


def test_date_ranges_take_partial_dates_only_when_wholly_inside() -> None:
    store, records = loaded()
    for low, high in [
        (date(2021, 3, 1), date(2021, 3, 31)),
        (date(2021, 3, 15), date(2021, 4, 30)),
        (None, date(2021, 12, 31)),
        (date(2022, 1, 1), None),
    ]:
        expected = set()
        for r in records:
            span = (
                date_range(r.metadata["collection_date"]) if r.metadata["collection_date"] else None
            )
            if span and (low is None or span[0] >= low) and (high is None or span[1] <= high):
                expected.add(r.accession)
        query = SampleFilter(date_ranges={"collectionDate": (low, high)})
        assert accessions(store, query) == expected, (low, high)


def test_location_prefix_stops_at_level_boundaries() -> None:
    store, records = loaded()
    got = accessions(store, SampleFilter(equals={"location": ("Europe /Belgium",)}))
    expected = {
        r.accession for r in records if r.metadata["location"].startswith("Europe / Belgium")
    }
    assert got == {r for r in expected if "Belgium2" not in _location(records, r)}
    assert got and not accessions(store, SampleFilter(equals={"location": ("Europe / Bel",)}))


def _location(records: tuple[PathogenRecord, ...], accession: str) -> str:
    return next(r.metadata["location"] for r in records if r.accession == accession)


def test_number_ranges_and_equality_combine() -> None:
    store, records = loaded()
    query = SampleFilter(
        equals={"host": ("Mink", "Human"), "country": ("Japan", "Finland")},
        number_ranges={"coverage": (200.0, None), "age": (None, 40.0)},
    )

    def coverage(r: PathogenRecord) -> float | None:
        text = r.metadata["coverage"].rstrip("x")
        return float(text) if text.replace(".", "").isdigit() else None

    expected = {
        r.accession
        for r in records
        if r.metadata["location"].split(" / ")[1] in ("Japan", "Finland")
        and (c := coverage(r)) is not None
        and c >= 200
        and int(r.metadata["age"]) <= 40
    }
    assert accessions(store, query) == expected and expected


def test_new_versions_replace_and_revocations_stay_flagged() -> None:
    store = PathogenStore(ORGANISM)
    first = store.data_version
    assert store.add(record("A1", analysis(["C241T"])))
    assert store.add(record("A2", analysis(["C241T"])))
    second = store.data_version
    assert second > first
    assert not store.add(record("A1", analysis(["C241T"])))  # a replayed version: no change
    assert store.data_version == second
    assert store.add(record("A1", analysis(["A23403G"]), version=2))
    assert not store.add(record("A1", analysis(["C241T"])))  # older than what is held
    c241t = SampleFilter(variant=NucleotideMutation(241, "C", "T"))
    assert accessions(store, c241t) == {"A2"}
    assert store.details(SampleFilter(), ["accessionVersion", "version"]).data == [
        {"accessionVersion": "A2.1", "version": 1},
        {"accessionVersion": "A1.2", "version": 2},
    ]
    assert store.add(record("A2", analysis(["C241T"]), revoked=True))
    assert len(store) == 1 and not accessions(store, c241t)
    revoked = SampleFilter(variant=NucleotideMutation(241, "C", "T"), include_revoked=True)
    assert store.details(revoked, ["accession", "revoked"]).data == [
        {"accession": "A2", "revoked": "true"}
    ]
    assert store.aggregated(SampleFilter(include_revoked=True), ["revoked"]).data == [
        {"revoked": "false", "count": 1},
        {"revoked": "true", "count": 1},
    ]
    negated = SampleFilter(variant=Not(NucleotideMutation(241, "C", "T")))
    assert accessions(store, negated) == {"A1"}


def test_reference_and_proportions_leave_out_unknown_bases() -> None:
    store = PathogenStore(ORGANISM)
    store.add_many(
        [
            record("N1", analysis(["C241T"])),
            record("N2", analysis(missing=[(200, 300)])),  # N over 241
            record("N3", analysis(start=242)),  # does not reach 241
            record("N4", analysis(ambiguous=["Y241"])),
            record("N5", analysis()),
        ]
    )
    assert accessions(store, SampleFilter(variant=NucleotideMutation(241, None, "."))) == {"N5"}
    assert store.mutations(SampleFilter(), "nucleotide", 0.5).data[0] | {} == {
        "mutation": "C241T",
        "count": 1,
        "coverage": 2,
        "proportion": 0.5,
        "sequenceName": None,
        "mutationFrom": "C",
        "mutationTo": "T",
        "position": 241,
    }


def test_codon_coverage_counts_a_codon_unknown_if_any_base_is() -> None:
    store = PathogenStore(ORGANISM)
    first = ORGANISM.genes["S"].start + 3 * 483  # codon 484
    store.add_many(
        [
            record("S1", analysis(aa_substitutions=["S:E484K"])),
            record("S2", analysis(missing=[(first + 2, first + 10)])),  # third base of the codon
            record("S3", analysis(ambiguous=[f"R{first + 1}"])),  # a mixed second base
            record("S4", analysis(missing=[(first + 3, first + 9)])),  # the next codon only
        ]
    )
    (entry,) = store.mutations(SampleFilter(), "aminoAcid", 0.0).data
    assert (entry["mutation"], entry["count"], entry["coverage"]) == ("S:E484K", 1, 2)
    reference = SampleFilter(variant=parse_variant_query("S:484."))
    assert accessions(store, reference) == {"S4"}


def test_insertions_counted_and_matched_with_wildcards() -> None:
    store, records = loaded()
    answer = store.insertions(SampleFilter(), "nucleotide")
    expected = Counter(i for r in records for i in r.analysis.insertions)
    assert {e["insertion"]: e["count"] for e in answer.data} == {
        f"ins_{k}": v for k, v in expected.items()
    }
    wildcard = SampleFilter(variant=parse_variant_query("ins_22204:G?A"))
    assert accessions(store, wildcard) == {
        r.accession for r in records if "22204:GAGCCAGAA" in r.analysis.insertions
    }


@pytest.mark.parametrize("binning", ["day", "week", "month", "year"])
def test_mutations_over_time_match_brute_force(binning: str) -> None:
    store, records = loaded()
    leaves = [parse_variant_query("C241."), parse_variant_query("S:E484K")]
    answer = store.mutations_over_time(SampleFilter(), leaves, binning, group_by="country")  # type: ignore[arg-type]
    got = {
        (e["dateFrom"], e["country"], e["mutation"]): (e["count"], e["coverage"])
        for e in answer.data
    }
    expected: Counter[tuple[str, str | None, str]] = Counter()
    covered: Counter[tuple[str, str | None, str]] = Counter()
    undated = 0
    for r in records:
        span = date_range(r.metadata["collection_date"]) if r.metadata["collection_date"] else None
        start = span and _bin(span[0], binning)
        if not span or start != _bin(span[1], binning):
            undated += 1
            continue
        country = r.metadata["location"].split(" / ")[1]
        for leaf, reading in zip(
            leaves, (base_at(r, 241), amino_acid_at(r, "S", 484)), strict=True
        ):
            key = (start.isoformat(), country, str(leaf))
            covered[key] += reading is not None
            expected[key] += leaf_holds(leaf, r)
    assert got == {key: (expected[key], covered[key]) for key in covered}
    assert answer.info == {"undated": undated}


def _bin(day: date, binning: str) -> date:
    if binning == "day":
        return day
    if binning == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if binning == "month" else day.replace(month=1, day=1)


def test_terms_in_force_follow_the_day() -> None:
    today = [date(2024, 1, 1)]
    store = PathogenStore(ORGANISM, today=lambda: today[0])
    store.add(record("R1", terms=RESTRICTED, until=date(2024, 6, 1)))
    store.add(record("R2"))
    restricted = SampleFilter(equals={"dataUseTerms": ("restricted",)})
    assert accessions(store, restricted) == {"R1"}
    today[0] = date(2024, 6, 1)
    assert not accessions(store, restricted)


def test_details_order_and_paging() -> None:
    store, records = loaded()
    answer = store.details(
        SampleFilter(), ["accession", "age"], [("age", True), ("accession", False)], 5, 3
    )
    ordered = sorted(records, key=lambda r: (-int(r.metadata["age"]), r.accession))
    assert answer.data == [
        {"accession": r.accession, "age": r.metadata["age"]} for r in ordered[3:8]
    ]


def test_queries_are_checked_against_the_organism() -> None:
    store, _ = loaded()
    for text, words in [
        ("G241T", "reference base at 241 is C"),
        ("30000T", "29903 positions"),
        ("Q:484K", "no gene 'Q'"),
        ("S:2000K", "S has 1274 codons"),
        ("S:N484K", "reference amino acid at S:484 is E"),
    ]:
        with pytest.raises(StoreError, match=words):
            store.select(SampleFilter(variant=parse_variant_query(text)))
    with pytest.raises(StoreError, match="did you mean country"):
        store.select(SampleFilter(equals={"contry": ("Japan",)}))
    with pytest.raises(StoreError, match="not a date field"):
        store.select(SampleFilter(date_ranges={"host": (None, None)}))
    flu = load_organism("flu-h3n2-ha")
    with pytest.raises(StoreError, match="this store holds sars-cov-2"):
        store.add(
            PathogenRecord(
                "F1", 1, flu.name, "BE", {}, analysis(), "open", None, record("x").released_at
            )
        )


def test_readers_see_whole_batches_while_a_writer_adds() -> None:
    store = PathogenStore(ORGANISM)
    batches, size = 30, 50
    pending = [record(f"W{i}", analysis(["C241T"] if i % 2 else [])) for i in range(batches * size)]
    seen: list[int] = []
    writer = threading.Thread(target=store.add_many, args=(pending, size))
    writer.start()
    while writer.is_alive():
        seen.append(store.aggregated(SampleFilter()).data[0]["count"])
    writer.join()
    seen.append(store.aggregated(SampleFilter()).data[0]["count"])
    assert all(count % size == 0 for count in seen)
    assert seen == sorted(seen) and seen[-1] == batches * size
    assert (
        len(store.select(SampleFilter(variant=parse_variant_query("C241T")))) == len(pending) // 2
    )


def test_unknown_ranges_spanning_the_genome() -> None:
    store = PathogenStore(ORGANISM)
    store.add(record("E1", analysis(missing=[(1, LENGTH)])))
    assert store.mutations(SampleFilter(), "nucleotide", 0.0).data == []
    assert not accessions(store, SampleFilter(variant=parse_variant_query("1.")))
    assert accessions(store, SampleFilter(variant=parse_variant_query("!1."))) == {"E1"}


@pytest.mark.parametrize("reads_per_bitmap", [0, 10**9])  # count by bitmaps, by row lists
def test_a_mutation_listed_twice_counts_once(
    reads_per_bitmap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_ROW_READS_PER_BITMAP", reads_per_bitmap)
    store = PathogenStore(ORGANISM)
    store.add_many([record("D1", analysis(["C241T", "C241T"])), record("D2", analysis())])
    (entry,) = store.mutations(SampleFilter(), "nucleotide", 0.0).data
    assert (entry["count"], entry["coverage"]) == (1, 2)
