"""Pathogen queries at scale: the LAPIS-style store over generated SARS-CoV-2 records, over HTTP.

A population of ``--records`` released records (1,000,000 by default) is generated with numpy:
100 lineages in a tree (each carries its parent's mutations plus a few of its own, 30 to 80 in
all; B.1's C241T, C3037T, C14408T, A23403G at the root, Alpha-, Beta- and Gamma-like lineages
with S:N501Y, S:E484K and S:H69-/V70-), each emerging on its own day and circulating for months;
per genome a few private mutations, N runs of amplicon dropouts and ragged ends (no mutation is
called under an N); collection dates over 2020-2024 (some only to the month or year); 40
countries with three regions each. Then, in one run:

- load: a server process generates the records and adds them to a ``PathogenStore`` (time and
  peak RSS printed; generation and loading timed apart), then serves ``lapis_router`` under
  uvicorn on 127.0.0.1;
- latency over HTTP, p50/p95 over bounded loops with random parameters: an aggregated count
  with a mutation filter and a date range (the target: p95 < 100 ms, peak memory < 8 GB), the
  same grouped by country with a variant query, and nucleotide mutation frequencies of a country
  over a quarter;
- the reference, in this process: the same count answered by scanning the records in Python on
  a sample, scaled to the population, and the ratio; on that sample the store's counts are
  checked equal to the scan's.

    .venv/bin/python bench/pathogen_query.py [--records 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from genofed.pathogen.analysis import Analysis, Qc
from genofed.pathogen.batch import date_range
from genofed.pathogen.organisms import Organism, load_organism
from genofed.pathogen.record import OPEN, RESTRICTED, PathogenRecord
from genofed.pathogen.store import PathogenStore, SampleFilter
from genofed.pathogen.variant_query import parse_variant_query
from served import ServedApp

TARGETS = {"p95_ms": 100.0, "peak_gib": 8.0}
CHUNK = 50_000
FIRST_DAY = date(2020, 1, 1)
DAYS = (date(2024, 12, 31) - FIRST_DAY).days + 1
CODE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"  # TCAG order
PLANTED = {  # lineage -> (substitutions, deletion ranges)
    0: (["C241T", "C3037T", "C14408T", "A23403G"], []),
    10: (["A23063T"], [(21765, 21770)]),  # Alpha-like: S:N501Y, S:H69-, S:V70-
    20: (["G23012A", "A23063T"], []),  # Beta-like: S:E484K, S:N501Y
    30: (["G23012A", "A23063T", "C21614T"], []),  # Gamma-like
}
CONTINENTS = {
    "Europe": "Belgium Finland Sweden Denmark Norway France Germany Spain Italy Portugal "
    "Netherlands Austria Poland Ireland",
    "North America": "USA Canada Mexico Cuba",
    "South America": "Brazil Argentina Chile Peru Colombia",
    "Asia": "Japan India China Vietnam Thailand Indonesia Israel",
    "Africa": "South Africa Nigeria Kenya Egypt Ghana",
    "Oceania": "Australia New Zealand Fiji Samoa Tonga",
}
SERVER = """
import json, socket, sys
sys.path.insert(0, BENCH_DIR)
import uvicorn
from fastapi import FastAPI
from pathogen_query import load_population
from genofed.pathogen.lapis import lapis_router
settings = json.loads(open(sys.argv[1]).read())
store, stats = load_population(settings["records"], settings["seed"])
open(settings["stats"], "w").write(json.dumps(stats))
app = FastAPI()
app.include_router(lapis_router(lambda request: store), prefix="/lapis")
config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[2]))])
"""


# -- the population ---------------------------------------------------------------------------


@dataclass
class Lineage:
    emerged: int  # days after FIRST_DAY
    positions: list[int]  # sorted, one per mutation
    mutations: tuple[str, ...]  # nucleotide, in position order
    amino: tuple[str | None, ...]  # the amino-acid change of each, if any
    sites: frozenset[int]  # the positions, for lookups


class Population:
    """Generated SARS-CoV-2 records, reproducible chunk by chunk from a seed."""

    def __init__(self, organism: Organism, seed: int, lineages: int = 100) -> None:
        self.organism, self.seed = organism, seed
        self.reference = organism.reference
        self.effects = _amino_effects(organism)
        spike = organism.genes["S"].start  # Δ21765-21770 reads as S:H69- and S:V70-
        self.deleted = {
            21765 + 3 * k: f"S:{_translate(self.reference[c - 1 : c + 2])}{69 + k}-"
            for k, c in enumerate((spike + 3 * 68, spike + 3 * 69))
        }
        rng = np.random.default_rng(seed)
        self.lineages = self._tree(rng, lineages)
        self.weights = rng.dirichlet(np.full(lineages, 0.6))
        self.places = [
            f"{continent} / {country} / {country} region {region}"
            for continent, countries in CONTINENTS.items()
            for country in _countries(countries)
            for region in (1, 2, 3)
        ]
        self.place_weights = rng.dirichlet(np.full(len(self.places), 1.0))
        days = [FIRST_DAY + timedelta(days=d) for d in range(DAYS)]
        self.dates = (
            [d.isoformat() for d in days],
            [d.isoformat()[:7] for d in days],
            [str(d.year) for d in days],
        )
        self.qc = [Qc(status, 0.0, ()) for status in ("good", "mediocre", "bad")]

    def _tree(self, rng: np.random.Generator, count: int) -> list[Lineage]:
        lineages: list[Lineage] = []
        for index in range(count):
            if index < 4:
                parent_mutations: dict[int, str] = {}
                emerged, new = int(rng.integers(0, 60)), 30
            else:
                parent = lineages[int(rng.integers(max(0, index - 20), index))]
                parent_mutations = dict(zip(parent.positions, parent.mutations, strict=True))
                emerged = min(parent.emerged + int(rng.integers(20, 150)), DAYS - 200)
                new = int(rng.integers(2, 10))
            mutations = dict(parent_mutations)
            substitutions, deletions = PLANTED.get(index, ([], []))
            for mutation in substitutions:
                mutations[int(mutation[1:-1])] = mutation
            for first, last in deletions:
                for place in range(first, last + 1):
                    mutations[place] = f"{self.reference[place - 1]}{place}-"
            while len(mutations) < min(len(parent_mutations) + new, 80):
                place = int(rng.integers(55, 29800))
                mutations.setdefault(place, self._substitution(place, int(rng.integers(0, 3))))
            positions = sorted(mutations)
            ordered = tuple(mutations[p] for p in positions)
            amino = tuple(self._amino(m) for m in ordered)
            lineages.append(Lineage(emerged, positions, ordered, amino, frozenset(positions)))
        return lineages

    def _substitution(self, place: int, choice: int) -> str:
        ref = self.reference[place - 1]
        return f"{ref}{place}{[b for b in 'ACGT' if b != ref][choice]}"

    def _amino(self, mutation: str) -> str | None:
        if mutation.endswith("-"):
            return self.deleted.get(int(mutation[1:-1]))
        return self.effects.get(mutation)

    def records(self, start: int, count: int) -> list[PathogenRecord]:
        """Records ``start`` .. ``start + count - 1`` (numpy draws per chunk, then one
        Python pass to build the objects)."""
        rng = np.random.default_rng([self.seed, start])
        lineage = rng.choice(len(self.lineages), count, p=self.weights)
        emerged = np.array([self.lineages[i].emerged for i in lineage])
        day = np.clip(emerged + rng.gamma(2.0, 60.0, count).astype(int), 0, DAYS - 1)
        precision = np.searchsorted([0.85, 0.95], rng.random(count))
        place = rng.choice(len(self.places), count, p=self.place_weights)
        runs = rng.poisson(0.8, count)
        run_starts = rng.integers(100, 29500, runs.sum())
        run_lengths = rng.geometric(1 / 300, runs.sum())
        privates = rng.poisson(2.0, count)
        private_at = rng.integers(55, 29800, privates.sum())
        private_to = rng.integers(0, 3, privates.sum())
        first = rng.integers(1, 80, count)
        last = len(self.reference) - rng.integers(0, 150, count)
        coverage = rng.integers(20, 5000, count)
        age = rng.integers(0, 95, count)
        aged = rng.random(count) < 0.7
        status = rng.choice(3, count, p=[0.85, 0.1, 0.05])
        restricted = rng.random(count) < 0.1
        drawn = {
            "lineage": lineage,
            "day": day,
            "precision": precision,
            "place": place,
            "first": first,
            "last": last,
            "coverage": coverage,
            "age": age,
            "aged": aged,
            "status": status,
            "restricted": restricted,
        }
        run_lists = _split(np.stack([run_starts, run_starts + run_lengths - 1], 1), runs)
        private_lists = _split(np.stack([private_at, private_to], 1), privates)
        columns = (column.tolist() for column in drawn.values())
        out = []
        for i, values in enumerate(zip(*columns, strict=True)):
            draw = dict(zip(drawn, values, strict=True))
            first_base, last_base = draw["first"], draw["last"]
            missing = _merged((low, min(high, last_base)) for low, high in run_lists[i])
            unknown = [(1, first_base - 1), (last_base + 1, len(self.reference)), *missing]
            mutations, amino = self._called(self.lineages[draw["lineage"]], unknown)
            lineage = self.lineages[draw["lineage"]]
            for at, to in private_lists[i]:
                if at not in lineage.sites and not any(low <= at <= high for low, high in unknown):
                    mutation = self._substitution(at, to)
                    mutations.append(mutation)
                    if (effect := self.effects.get(mutation)) is not None:
                        amino.append(effect)
            out.append(self._record(start + i, draw, missing, mutations, amino))
        return out

    def _called(
        self, lineage: Lineage, unknown: list[tuple[int, int]]
    ) -> tuple[list[str], list[str]]:
        """The lineage's mutations an aligner would call, with N over some of them."""
        mutations, amino = list(lineage.mutations), list(lineage.amino)
        for low, high in unknown:
            i, j = bisect_left(lineage.positions, low), bisect_right(lineage.positions, high)
            if i < j:
                gone = set(lineage.mutations[i:j])
                kept = [k for k, m in enumerate(mutations) if m not in gone]
                mutations, amino = [mutations[k] for k in kept], [amino[k] for k in kept]
        return mutations, [a for a in dict.fromkeys(amino) if a]

    def _record(
        self,
        number: int,
        drawn: dict[str, Any],
        missing: list[tuple[int, int]],
        mutations: list[str],
        amino: list[str],
    ) -> PathogenRecord:
        place = self.places[drawn["place"]]
        country = place.split(" / ")[1]
        collected = self.dates[drawn["precision"]][drawn["day"]]
        substitutions = tuple(m for m in mutations if not m.endswith("-"))
        deletions = tuple(m for m in mutations if m.endswith("-"))
        analysis = Analysis(
            organism=self.organism.name,
            length=drawn["last"] - drawn["first"] + 1,
            alignment_start=drawn["first"],
            alignment_end=drawn["last"],
            substitutions=substitutions,
            deletions=deletions,
            insertions=(),
            missing=tuple(missing),
            ambiguous=(),
            aa_substitutions=tuple(a for a in dict.fromkeys(amino) if not a.endswith("-")),
            aa_deletions=tuple(a for a in dict.fromkeys(amino) if a.endswith("-")),
            aa_insertions=(),
            frameshifts=(),
            stop_codons=(),
            qc=self.qc[drawn["status"]],
        )
        lab = f"{country} lab {number % 5}"
        metadata = {
            "virus_name": f"hCoV-19/{country}/GF-{number}/{collected[:4]}",
            "collection_date": collected,
            "location": place,
            "host": "Human",
            "originating_lab": lab,
            "originating_lab_address": f"1 Main Street, {country}",
            "submitting_lab": f"{country} public health institute",
            "submitting_lab_address": f"2 Main Street, {country}",
            "authors": f"A. Author, B. Author ({lab})",
            "sequencing_technology": ("Illumina NovaSeq", "Oxford Nanopore")[number % 2],
            "coverage": f"{drawn['coverage']}x",
        }
        if drawn["aged"]:
            metadata["age"] = str(drawn["age"])
        released = FIRST_DAY + timedelta(days=min(drawn["day"] + 14, DAYS - 1))
        return PathogenRecord(
            accession=f"GFBE{number:011d}",
            version=1,
            organism=self.organism.name,
            node=("BE", "FI", "SE")[number % 3],
            metadata=metadata,
            analysis=analysis,
            data_use_terms=RESTRICTED if drawn["restricted"] else OPEN,
            restricted_until=released + timedelta(days=180) if drawn["restricted"] else None,
            released_at=datetime(released.year, released.month, released.day, tzinfo=UTC),
        )


def _amino_effects(organism: Organism) -> dict[str, str]:
    """Every single-base substitution in a coding gene that changes its amino acid → the change
    in Nextclade notation (``G23012A`` → ``S:E484K``)."""
    reference, effects = organism.reference, {}
    for feature in organism.coding:
        if feature.name == "ORF9b":  # inside N: keep one reading of each base
            continue
        for codon in range(feature.length // 3):
            first = feature.start + 3 * codon
            bases = reference[first - 1 : first + 2]
            before = _translate(bases)
            for offset in range(3):
                for base in "ACGT":
                    if base == bases[offset]:
                        continue
                    after = _translate(bases[:offset] + base + bases[offset + 1 :])
                    if after != before:
                        mutation = f"{bases[offset]}{first + offset}{base}"
                        effects[mutation] = f"{feature.name}:{before}{codon + 1}{after}"
    return effects


def _translate(codon: str) -> str:
    index = 0
    for base in codon:
        index = index * 4 + "TCAG".index(base)
    return CODE[index]


def _countries(text: str) -> list[str]:
    joined = text.replace("South Africa", "South_Africa").replace("New Zealand", "New_Zealand")
    return [name.replace("_", " ") for name in joined.split()]


def _split(pairs: np.ndarray, counts: np.ndarray) -> list[list[list[int]]]:
    """Rows of ``pairs`` per record, ``counts[i]`` of them for record ``i``."""
    return [part.tolist() for part in np.split(pairs, np.cumsum(counts)[:-1])]


def _merged(ranges: Any) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if high < low:
            continue
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def load_population(records: int, seed: int) -> tuple[PathogenStore, dict[str, float]]:
    """A store holding ``records`` generated records; generation and loading timed apart."""
    organism = load_organism("sars-cov-2")
    population = Population(organism, seed)
    store = PathogenStore(organism)
    generating = loading = 0.0
    for start in range(0, records, CHUNK):
        began = time.perf_counter()
        chunk = population.records(start, min(CHUNK, records - start))
        generated = time.perf_counter()
        store.add_many(chunk)
        loading += time.perf_counter() - generated
        generating += generated - began
    return store, {
        "records": len(store),
        "generate_s": generating,
        "load_s": loading,
        "peak_kib": _status("VmHWM"),
        "rss_kib": _status("VmRSS"),
    }


def _status(field: str, pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(float(line.split()[1]) for line in status if line.startswith(f"{field}:"))


# -- the queries -------------------------------------------------------------------------------


COMMON = ["C241T", "A23403G", "C14408T", "A23063T", "G23012A", "C3037T", "C21614T"]
VARIANTS = [
    "S:N501Y & !S:E484K",
    "S:E484K | [2-of: C241T, A23063T, S:H69-]",
    "A23403G & !(S:N501Y | S:E484K)",
    "[exactly-2-of: S:E484K, S:N501Y, S:P26S, 241.]",
]


def _window(rng: random.Random) -> tuple[str, str]:
    first = FIRST_DAY + timedelta(days=rng.randrange(DAYS - 400))
    return first.isoformat(), (first + timedelta(days=rng.randrange(30, 365))).isoformat()


def _count_params(rng: random.Random) -> dict[str, str]:
    low, high = _window(rng)
    mutation = rng.choice(COMMON)
    return {"nucleotideMutations": mutation, "collectionDateFrom": low, "collectionDateTo": high}


def _variant_params(rng: random.Random) -> dict[str, str]:
    low, high = _window(rng)
    return {
        "variantQuery": rng.choice(VARIANTS),
        "fields": "country",
        "collectionDateFrom": low,
        "collectionDateTo": high,
    }


def _frequency_params(rng: random.Random) -> dict[str, str]:
    low = FIRST_DAY + timedelta(days=rng.randrange(DAYS - 100))
    country = rng.choice(["Belgium", "USA", "Japan", "Brazil", "South Africa", "India"])
    return {
        "country": country,
        "collectionDateFrom": low.isoformat(),
        "collectionDateTo": (low + timedelta(days=91)).isoformat(),
        "minProportion": "0.05",
    }


QUERIES = [
    ("aggregated count, mutation + date range", "/lapis/sample/aggregated", _count_params),
    ("aggregated by country, variantQuery + dates", "/lapis/sample/aggregated", _variant_params),
    (
        "nucleotide mutation frequencies, country + quarter",
        "/lapis/sample/nucleotideMutations",
        _frequency_params,
    ),
]


def _timed(client: httpx.Client, path: str, make: Any, rounds: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    for _ in range(5):  # warm-up: caches, first allocations
        client.get(path, params=make(rng)).raise_for_status()
    took = []
    for _ in range(rounds):
        params = make(rng)
        began = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        took.append((time.perf_counter() - began) * 1000)
    return took


def _percentiles(took: list[float]) -> tuple[float, float]:
    ordered = sorted(took)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def naive_count(records: list[PathogenRecord], mutation: str, low: date, high: date) -> int:
    """The reference: the count by looking at every record in turn."""
    count = 0
    for item in records:
        if mutation not in item.analysis.substitutions:
            continue
        span = date_range(item.metadata["collection_date"])
        if span and low <= span[0] and span[1] <= high:
            count += 1
    return count


def _baseline(sample: list[PathogenRecord], population: int, seed: int) -> float:
    """Naive scan time per query (ms) on ``sample``, scaled to ``population`` records; the
    store's counts on the same sample must equal the scan's."""
    store = PathogenStore(load_organism("sars-cov-2"))
    store.add_many(sample)
    rng = random.Random(seed)
    took = []
    for _ in range(10):
        params = _count_params(rng)
        low, high = (
            date.fromisoformat(params[k]) for k in ("collectionDateFrom", "collectionDateTo")
        )
        began = time.perf_counter()
        expected = naive_count(sample, params["nucleotideMutations"], low, high)
        took.append(time.perf_counter() - began)
        query = SampleFilter(
            date_ranges={"collection_date": (low, high)},
            variant=parse_variant_query(params["nucleotideMutations"]),
        )
        found = store.aggregated(query).data[0]["count"]
        if found != expected:
            raise SystemExit(f"the store counts {found}, the scan {expected}: {params}")
    return statistics.median(took) * 1000 * population / len(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="timed requests per query")
    parser.add_argument("--sample", type=int, default=20_000, help="records the naive scan reads")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        settings, stats_path = Path(work, "settings.json"), Path(work, "stats.json")
        settings.write_text(
            json.dumps({"records": args.records, "seed": args.seed, "stats": str(stats_path)})
        )
        print(f"generating and loading {args.records:,} SARS-CoV-2 records in the server ...")
        script = SERVER.replace("BENCH_DIR", repr(str(Path(__file__).resolve().parent)))
        app = ServedApp(
            script, settings, probe="/lapis/sample/info", what="the LAPIS server", ready_within=3600
        )
        try:
            stats = json.loads(stats_path.read_text())
            print(
                f"load: {stats['records']:,.0f} records generated in {stats['generate_s']:.1f} s, "
                f"added to the store in {stats['load_s']:.1f} s "
                f"({stats['records'] / stats['load_s']:,.0f} records/s); "
                f"RSS {stats['rss_kib'] / 2**20:.2f} GiB, peak {stats['peak_kib'] / 2**20:.2f} GiB"
            )
            results = {}
            with httpx.Client(base_url=app.url, timeout=60) as client:
                for index, (name, path, make) in enumerate(QUERIES):
                    results[name] = _percentiles(_timed(client, path, make, args.queries, index))
            peak = _status("VmHWM", app.pid) / 2**20
        finally:
            app.stop()

    sample = Population(load_organism("sars-cov-2"), args.seed).records(0, args.sample)
    naive_ms = _baseline(sample, args.records, seed=0)
    for name, (p50, p95) in results.items():
        print(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {args.queries} requests")
    count_p50, count_p95 = results[QUERIES[0][0]]
    print(
        f"reference, naive Python scan of the records (on {args.sample:,}, scaled): "
        f"{naive_ms:,.0f} ms per count; the store over HTTP is {naive_ms / count_p50:,.0f}x "
        "faster at p50"
    )
    print(f"server peak memory (VmHWM) after the queries: {peak:.2f} GiB")
    verdict = count_p95 < TARGETS["p95_ms"] and peak < TARGETS["peak_gib"]
    print(
        f"target p95 < {TARGETS['p95_ms']:.0f} ms and peak < {TARGETS['peak_gib']:.0f} GiB: "
        f"{'met' if verdict else 'NOT met'}"
    )


if __name__ == "__main__":
    sys.exit(main())
