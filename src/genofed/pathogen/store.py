"""The query index of released pathogen records: columns for metadata, bitmaps for mutations.

One :class:`PathogenStore` per organism holds, for every record version it has seen, a row:

- metadata as categorical numpy columns (a code per row into the column's distinct values), so
  that a filter is a lookup table over distinct values gathered by the row codes, and a grouping
  is ``np.unique`` over codes;
- a roaring bitmap of rows per nucleotide mutation, amino-acid mutation and insertion;
- the reference ranges each genome leaves unknown (N runs, mixed sites, uncovered ends), so that
  ``241.`` (the reference base) and the proportions' denominators count only genomes whose base
  there is known.

A newer version of an accession retires the older row; a revoked record stays, flagged, and is
left out unless a query asks for it. One writer and many readers may use a store at once; every
change moves :attr:`PathogenStore.data_version`.
"""

from __future__ import annotations

import array
import difflib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from typing import Any, Literal

import numpy as np
from pyroaring import BitMap

from genofed.pathogen.analysis import Analysis, position
from genofed.pathogen.batch import date_range
from genofed.pathogen.organisms import Organism
from genofed.pathogen.record import RESTRICTED, PathogenRecord
from genofed.pathogen.variant_query import (
    AminoAcidMutation,
    And,
    Expression,
    Insertion,
    Leaf,
    NOf,
    Not,
    NucleotideMutation,
    Or,
    QueryError,
)

DATE_FIELDS = ("collection_date", "release_date")
NUMBER_FIELDS = ("coverage", "age")
LOCATION_LEVELS = ("region", "country", "division")
DERIVED_FIELDS = (
    "accession",
    "accessionVersion",
    "version",
    "node",
    "qcStatus",
    "dataUseTerms",
    "revoked",
    "release_date",
    "clade",
    "collection_month",  # YYYY-MM, for counts per month grouped with other fields
    *LOCATION_LEVELS,
)
BINNINGS = ("day", "week", "month", "year")
Binning = Literal["day", "week", "month", "year"]
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")
_ROW_READS_PER_BITMAP = 200  # keys read from row lists costing one bitmap intersection
_KEY = re.compile(r"(?:([A-Za-z0-9_]+):)?([A-Z*]?)(\d+)(.*)")  # [gene:][ref]position[rest]


class StoreError(QueryError):
    """A record the store cannot take, or a query it cannot answer; the message says why."""


@dataclass(frozen=True)
class SampleFilter:
    """Which records a query is about; every condition must hold.

    ``equals`` accepts any of the listed values (``location`` matches at level boundaries:
    'Europe / Belgium' covers 'Europe / Belgium / Brussels'); a record's partial date is inside
    a date range only if its whole span is.
    """

    equals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_ranges: Mapping[str, tuple[date | None, date | None]] = field(default_factory=dict)
    number_ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    variant: Expression | None = None
    include_revoked: bool = False


@dataclass(frozen=True)
class Answer:
    """A query's rows and the data version they were read at."""

    data: list[dict[str, Any]]
    data_version: int
    info: dict[str, Any] = field(default_factory=dict)


def camel(name: str) -> str:
    """``collection_date`` → ``collectionDate``, LAPIS's spelling of field names."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class PathogenStore:
    """The released records of one organism, indexed for LAPIS-style queries."""

    def __init__(self, organism: Organism, today: Callable[[], date] = date.today) -> None:
        self.organism = organism
        self._today = today  # restricted terms end on their own date
        self._lock = _ReadWriteLock()
        self._length = len(organism.reference)
        self._n = 0
        self._capacity = 1024
        self._columns: dict[str, _Column] = {}
        for name in (*organism.schema.fields, *DERIVED_FIELDS):
            self._columns[name] = _Column(self._capacity)
        self._live = np.zeros(self._capacity, bool)  # current version, not revoked
        self._current = np.zeros(self._capacity, bool)  # current version, revoked or not
        self._live_bitmap, self._current_bitmap = BitMap(), BitMap()
        self._until = np.zeros(self._capacity, np.int32)  # end of restricted terms, ordinal
        self._latest: dict[str, tuple[int, int]] = {}  # accession -> (row, version)
        self._codons = _codon_spans(organism)
        self._nucleotide = _MutationIndex()
        self._amino_acid = _MutationIndex(self._codons)
        self._nucleotide_insertions = _MutationIndex()
        self._amino_acid_insertions = _MutationIndex()
        self._unknown = _Intervals()
        self._genes = {name.lower(): name for name in self._codons}
        self._locations: dict[str, tuple[str, ...]] = {}
        self._cache: dict[Any, Any] = {}
        self._data_version = int(time.time() * 1000)

    # -- writing ---------------------------------------------------------------------------

    @property
    def data_version(self) -> int:
        """Moves on every change (milliseconds since the epoch, or one more than before)."""
        return self._data_version

    def __len__(self) -> int:
        """Records answering queries: current versions, not revoked."""
        return len(self._live_bitmap)

    def add(self, record: PathogenRecord) -> bool:
        """Take one record; False when it changes nothing (an older or the same version)."""
        return self.add_many([record]) == 1

    def add_many(self, records: Iterable[PathogenRecord], batch: int = 10_000) -> int:
        """Take records (replication is idempotent: repeats change nothing); the number that
        changed the store. Readers see each batch whole or not at all."""
        changed = 0
        iterator = iter(records)
        while chunk := list(islice(iterator, batch)):
            with self._lock.writing():
                pending = _Pending()
                done = sum(self._add(record, pending) for record in chunk)
                self._flush(pending)
                if done:
                    self._data_version = max(self._data_version + 1, int(time.time() * 1000))
                    self._cache.clear()
                changed += done
        return changed

    def _add(self, record: PathogenRecord, pending: _Pending) -> bool:
        if record.organism != self.organism.name:
            raise StoreError(
                f"{record.accession_version} is a {record.organism} record; this store holds "
                f"{self.organism.name}: add it to that organism's store"
            )
        latest = self._latest.get(record.accession)
        if latest is not None:
            row, version = latest
            if record.version < version:
                return False
            if record.version == version:
                if record.revoked == bool(self._current[row] and not self._live[row]):
                    return False
                self._flag(row, record.revoked)
                return True
            self._flag(row, None)
        row = self._new_row()
        self._latest[record.accession] = (row, record.version)
        self._fill(row, record)
        self._flag(row, record.revoked)
        pending.add(row, record.analysis, self._length)
        return True

    def _new_row(self) -> int:
        if self._n == self._capacity:
            self._capacity *= 2
            for column in self._columns.values():
                column.grow(self._capacity)
            self._live = _grown(self._live, self._capacity)
            self._current = _grown(self._current, self._capacity)
            self._until = _grown(self._until, self._capacity)
        self._n += 1
        return self._n - 1

    def _flag(self, row: int, revoked: bool | None) -> None:
        """Mark a row current (``revoked`` or not) or, with None, retired by a newer version."""
        self._current[row] = revoked is not None
        self._live[row] = revoked is False
        for bitmap, member in (
            (self._current_bitmap, revoked is not None),
            (self._live_bitmap, revoked is False),
        ):
            if member:
                bitmap.add(row)
            else:
                bitmap.discard(row)
        if revoked is not None:
            self._set(row, "revoked", "true" if revoked else "false")

    def _fill(self, row: int, record: PathogenRecord) -> None:
        values = dict(record.metadata)
        collected = values.get("collection_date", "")
        values.update(
            accession=record.accession,
            accessionVersion=record.accession_version,
            version=str(record.version),
            node=record.node,
            qcStatus=record.analysis.qc.status,
            dataUseTerms=record.data_use_terms,
            release_date=record.released_at.date().isoformat(),
            clade=record.analysis.clade or "",
            collection_month=collected[:7] if len(collected) >= 7 else "",  # not of a year
        )
        levels = self._location_levels(values.get("location", ""))
        values.update(zip(LOCATION_LEVELS, levels, strict=False))  # 'Europe / Belgium': 2 levels
        columns = self._columns
        for name, value in values.items():
            column = columns.get(name) or self._new_column(name)
            code = column.index.get(value) if value else 0  # the common case, without a call
            column.codes[row] = column.code(value) if code is None else code
        if record.data_use_terms == RESTRICTED and record.restricted_until:
            self._until[row] = record.restricted_until.toordinal()

    def _set(self, row: int, name: str, value: str) -> None:
        column = self._columns.get(name) or self._new_column(name)
        column.codes[row] = column.code(value)

    def _new_column(self, name: str) -> _Column:
        """A field beyond the organism's schema: queryable too."""
        column = self._columns[name] = _Column(self._capacity)
        return column

    def _location_levels(self, location: str) -> tuple[str, ...]:
        levels = self._locations.get(location)
        if levels is None:
            levels = self._locations[location] = tuple(_location_parts(location))
        return levels

    def _flush(self, pending: _Pending) -> None:
        if pending.first_row is None:
            return
        indexes = (
            self._nucleotide,
            self._amino_acid,
            self._nucleotide_insertions,
            self._amino_acid_insertions,
        )
        for index, keys, lengths in zip(indexes, pending.keys, pending.lengths, strict=True):
            index.append(pending.first_row, keys, lengths)
        self._unknown.extend(pending.unknown)

    # -- reading ---------------------------------------------------------------------------

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field a filter, grouping or details query may name."""
        return tuple(self._columns)

    def field(self, name: str) -> str:
        """The field ``name`` means (``collectionDate`` and ``date`` are ``collection_date``)."""
        if name in self._columns:
            return name
        aliases = {camel(column): column for column in self._columns} | {"date": "collection_date"}
        if name in aliases:
            return aliases[name]
        close = difflib.get_close_matches(name, [*self._columns, *aliases], n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise StoreError(
            f"unknown field {name!r}; {hint}fields are: {', '.join(sorted(self._columns))}"
        )

    def select(self, query: SampleFilter) -> np.ndarray:
        """The rows (sorted) of the records ``query`` matches."""
        with self._lock.reading():
            return self._select(query)

    def aggregated(self, query: SampleFilter, fields: Sequence[str] = ()) -> Answer:
        """``[{"count": n, field: value, ...}]``: matching records counted per distinct value
        combination of ``fields`` (one total without fields)."""
        with self._lock.reading():
            rows = self._select(query)
            names = [self.field(name) for name in fields]
            if not names:
                return Answer([{"count": len(rows)}], self._data_version)
            columns = [self._codes(name) for name in names]
            groups, counts = _group(
                [codes[rows] for codes, _ in columns], [len(values) for _, values in columns]
            )
            data = []
            for index, count in enumerate(counts.tolist()):
                entry = {
                    label: _shown(name, values[groups[i][index]])
                    for i, (label, name, (_, values)) in enumerate(
                        zip(fields, names, columns, strict=True)
                    )
                }
                entry["count"] = count
                data.append(entry)
            return Answer(data, self._data_version)

    def details(
        self,
        query: SampleFilter,
        fields: Sequence[str] = (),
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> Answer:
        """One entry per matching record with ``fields`` (all without), ordered by
        ``order_by`` (field, descending) and paged."""
        with self._lock.reading():
            rows = self._ordered(self._select(query), order_by)
            rows = rows[offset : None if limit is None else offset + limit]
            labels = list(fields) or list(self._columns)
            data: list[dict[str, Any]] = [{} for _ in range(len(rows))]
            for label in labels:
                name = self.field(label)
                codes, values = self._codes(name)
                for entry, code in zip(data, codes[rows].tolist(), strict=True):
                    entry[label] = _shown(name, values[code])
            return Answer(data, self._data_version)

    def accession_versions(
        self, query: SampleFilter, limit: int | None = None, offset: int = 0
    ) -> Answer:
        """The matching records' ``accession.version``, as ``{"accessionVersion": ...}``."""
        return self.details(query, ["accessionVersion"], (), limit, offset)

    def mutations(
        self,
        query: SampleFilter,
        kind: Literal["nucleotide", "aminoAcid"],
        min_proportion: float = 0.05,
    ) -> Answer:
        """The mutations of the matching records seen in at least ``min_proportion`` of those
        with a known base (codon) at their position: mutation, count, coverage, proportion."""
        with self._lock.reading():
            rows = self._select(query)
            index = self._nucleotide if kind == "nucleotide" else self._amino_acid
            keys, known = index.keys, len(index.keys)
            starts, widths, sizes = index.starts[:known], index.widths[:known], index.sizes[:known]
            mask = self._mask(rows)
            coverage = np.full(len(keys), len(rows), np.int64)
            for width in np.unique(widths).tolist():
                unknown = self._unknown.counts(mask, width, self._length)
                chosen = widths == width
                coverage[chosen] -= unknown[starts[chosen]]
            candidates = np.flatnonzero(
                (sizes > 0) & (coverage > 0) & (sizes >= min_proportion * coverage)
            )
            if len(rows) * index.mean_keys() < _ROW_READS_PER_BITMAP * len(candidates):
                counts = index.counts(rows)  # few rows: read their keys
            else:  # many rows: intersect the candidates' bitmaps with them
                counts = np.zeros(len(keys), np.int64)
                selected = _bitmap(rows)
                for i in candidates.tolist():
                    counts[i] = index.bitmaps[keys[i]].intersection_cardinality(selected)
            found = (counts > 0) & (coverage > 0) & (counts >= min_proportion * coverage)
            data = [
                _mutation_entry(keys[i], int(counts[i]), int(coverage[i]), kind)
                for i in np.flatnonzero(found).tolist()
            ]
            data.sort(key=lambda e: (e["sequenceName"] or "", e["position"], e["mutation"]))
            return Answer(data, self._data_version)

    def insertions(self, query: SampleFilter, kind: Literal["nucleotide", "aminoAcid"]) -> Answer:
        """The insertions of the matching records with how many carry each."""
        with self._lock.reading():
            selected = _bitmap(self._select(query))
            index = (
                self._nucleotide_insertions if kind == "nucleotide" else self._amino_acid_insertions
            )
            data = []
            for key, bitmap in index.bitmaps.items():
                count = bitmap.intersection_cardinality(selected)
                if count:
                    gene, _, place, symbols = index.sites[key]
                    data.append(
                        {
                            "insertion": f"ins_{key}",
                            "count": count,
                            "sequenceName": gene or None,
                            "position": place,
                            "insertedSymbols": symbols,
                        }
                    )
            return Answer(data, self._data_version)

    def mutations_over_time(
        self,
        query: SampleFilter,
        mutations: Sequence[Leaf],
        binning: Binning = "month",
        date_field: str = "collection_date",
        group_by: str | None = None,
    ) -> Answer:
        """Per date bin (and per value of ``group_by``) and mutation: count, coverage (records
        with a known base there) and proportion. Records whose date is vaguer than a bin
        (``2024-03`` by week) are left out and counted in ``info["undated"]``."""
        with self._lock.reading():
            name = self.field(date_field)
            if name not in DATE_FIELDS:
                raise StoreError(
                    f"{date_field!r} is not a date field; use one of {', '.join(DATE_FIELDS)}"
                )
            rows = self._select(query)
            codes, _ = self._codes(name)
            bins = self._bins(name, binning)[codes[rows]]
            dated = bins >= 0
            undated = int(len(rows) - np.count_nonzero(dated))
            rows, bins = rows[dated], bins[dated]
            group_codes, group_values = (
                self._codes(self.field(group_by))
                if group_by
                else (np.zeros(self._n, np.int32), [None])
            )
            cells = bins.astype(np.int64) * len(group_values) + group_codes[rows]
            cell_ids, inverse, totals = np.unique(cells, return_inverse=True, return_counts=True)
            data = []
            for leaf in mutations:
                carried = self._mask(_rows(self._leaf(leaf, self._current_bitmap)))[rows]
                unknown = self._unknown_mask(leaf)[rows]
                counts = np.bincount(inverse[carried], minlength=len(cell_ids))
                unknowns = np.bincount(inverse[unknown], minlength=len(cell_ids))
                for cell, count, total, missing in zip(
                    cell_ids.tolist(),
                    counts.tolist(),
                    totals.tolist(),
                    unknowns.tolist(),
                    strict=True,
                ):
                    start, group = divmod(cell, len(group_values))
                    entry = _bin_entry(start, binning)
                    if group_by:
                        entry[group_by] = group_values[group]
                    covered = total - missing
                    entry.update(
                        mutation=str(leaf),
                        count=count,
                        coverage=covered,
                        proportion=count / covered if covered else None,
                    )
                    data.append(entry)
            return Answer(data, self._data_version, {"undated": undated})

    # -- internals ---------------------------------------------------------------------------

    def _select(self, query: SampleFilter) -> np.ndarray:
        mask = (self._current if query.include_revoked else self._live)[: self._n].copy()
        for label, values in query.equals.items():
            name = self.field(label)
            codes, column_values = self._codes(name)
            mask &= self._equality_table(name, column_values, values)[codes[: self._n]]
        for label, (low, high) in query.date_ranges.items():
            name = self._typed(label, DATE_FIELDS, "date")
            first, last = self._spans(name)
            low_ordinal = low.toordinal() if low else 0
            high_ordinal = high.toordinal() if high else 1 << 30
            table = (first >= low_ordinal) & (last <= high_ordinal) & (first > 0)
            mask &= table[self._columns[name].codes[: self._n]]
        for label, (low_number, high_number) in query.number_ranges.items():
            name = self._typed(label, NUMBER_FIELDS, "number")
            numbers = self._numbers(name)
            with np.errstate(invalid="ignore"):
                table = (numbers >= (-np.inf if low_number is None else low_number)) & (
                    numbers <= (np.inf if high_number is None else high_number)
                )
            mask &= table[self._columns[name].codes[: self._n]]
        if query.variant is None:
            return np.flatnonzero(mask).astype(np.uint32)
        universe = self._current_bitmap if query.include_revoked else self._live_bitmap
        rows = _rows(self._evaluate(query.variant, universe))
        selected: np.ndarray = rows[mask[rows]]
        return selected

    def _typed(self, label: str, allowed: tuple[str, ...], kind: str) -> str:
        name = self.field(label)
        if name not in allowed:
            raise StoreError(
                f"{label!r} is not a {kind} field; {kind} ranges apply to "
                f"{', '.join(camel(a) for a in allowed)}"
            )
        return name

    def _codes(self, name: str) -> tuple[np.ndarray, list[str | None]]:
        """A field's row codes and distinct values; the terms in force today are computed."""
        if name == "dataUseTerms":
            restricted = self._until[: self._n] > self._today().toordinal()
            return restricted.astype(np.int32), ["open", "restricted"]
        column = self._columns[name]
        return column.codes[: self._n], column.values

    def _equality_table(
        self, name: str, values: list[str | None], wanted: tuple[str, ...]
    ) -> np.ndarray:
        table = np.zeros(len(values), bool)
        if name == "location":
            prefixes = [tuple(_location_parts(value)) for value in wanted]
            for code, value in enumerate(values):
                if value is not None:
                    parts = self._location_levels(value)
                    table[code] = any(parts[: len(p)] == p for p in prefixes)
            return table
        lookup: Mapping[Any, int] = (
            {value: code for code, value in enumerate(values)}
            if name == "dataUseTerms"
            else self._columns[name].index
        )
        for value in wanted:
            found = lookup.get(value)
            if found is not None:
                table[found] = True
        return table

    def _spans(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """First and last day (ordinals) of each distinct value of a date field (0: none)."""
        values = self._columns[name].values
        key = ("spans", name, len(values))
        if key not in self._cache:
            spans = [date_range(v) if v else None for v in values]
            first = np.array([s[0].toordinal() if s else 0 for s in spans], np.int64)
            last = np.array([s[1].toordinal() if s else 0 for s in spans], np.int64)
            self._cache[key] = first, last
        spans_found: tuple[np.ndarray, np.ndarray] = self._cache[key]
        return spans_found

    def _numbers(self, name: str) -> np.ndarray:
        values = self._columns[name].values
        key = ("numbers", name, len(values))
        if key not in self._cache:
            found = [_NUMBER.match(v) if v else None for v in values]
            self._cache[key] = np.array([float(m.group(1)) if m else np.nan for m in found])
        numbers: np.ndarray = self._cache[key]
        return numbers

    def _bins(self, name: str, binning: Binning) -> np.ndarray:
        """Per distinct date: the ordinal of the first day of its bin, -1 if it spans more."""
        first, last = self._spans(name)
        start, end = _bin_start(first, binning), _bin_start(last, binning)
        return np.where((first > 0) & (start == end), start, -1)

    def _ordered(self, rows: np.ndarray, order_by: Sequence[tuple[str, bool]]) -> np.ndarray:
        if not order_by:
            return rows
        keys = []
        for label, descending in reversed(order_by):  # lexsort: the last key is the primary
            name = self.field(label)
            codes, values = self._codes(name)
            rank = self._ranks(name, values)[codes[rows]]
            keys.append(-rank if descending else rank)
        return rows[np.lexsort(keys)]

    def _ranks(self, name: str, values: list[str | None]) -> np.ndarray:
        """Each distinct value's place in the field's natural order (dates, numbers, text)."""
        key = ("ranks", name, len(values))
        if key not in self._cache:
            if name in DATE_FIELDS:
                order = np.lexsort((self._spans(name)[1], self._spans(name)[0]))
            elif name in NUMBER_FIELDS:
                order = np.argsort(np.nan_to_num(self._numbers(name), nan=-1.0), kind="stable")
            else:
                order = np.array(sorted(range(len(values)), key=lambda c: values[c] or ""))
            ranks = np.empty(len(values), np.int64)
            ranks[order] = np.arange(len(values))
            self._cache[key] = ranks
        ranks_found: np.ndarray = self._cache[key]
        return ranks_found

    def _mask(self, rows: np.ndarray) -> np.ndarray:
        mask = np.zeros(self._n, bool)
        mask[rows] = True
        return mask

    def _evaluate(self, expression: Expression, universe: BitMap) -> BitMap:
        """The rows an expression holds for (may include retired rows; callers intersect)."""
        if isinstance(expression, And):
            result = self._evaluate(expression.children[0], universe)
            for child in expression.children[1:]:
                result = result & self._evaluate(child, universe)
            return result
        if isinstance(expression, Or):
            return BitMap.union(*(self._evaluate(c, universe) for c in expression.children))
        if isinstance(expression, Not):
            return universe - self._evaluate(expression.child, universe)
        if isinstance(expression, NOf):
            hits = np.concatenate(
                [_rows(self._evaluate(c, universe) & universe) for c in expression.children]
            )
            found, times = np.unique(hits, return_counts=True)
            chosen = times == expression.count if expression.exactly else times >= expression.count
            return _bitmap(found[chosen])
        return self._leaf(expression, universe)

    def _leaf(self, leaf: Leaf, universe: BitMap) -> BitMap:
        if isinstance(leaf, Insertion):
            return self._insertion(leaf)
        if isinstance(leaf, NucleotideMutation):
            if leaf.position > self._length:
                raise StoreError(
                    f"{leaf}: the {self.organism.name} reference has {self._length} positions"
                )
            reference = self.organism.reference[leaf.position - 1].upper()
            if leaf.reference and leaf.reference != reference:
                raise StoreError(
                    f"{leaf}: the reference base at {leaf.position} is "
                    f"{reference}; write {reference}{leaf.position}{leaf.symbol or ''}"
                )
            site, index = ("", leaf.position), self._nucleotide
            symbol = "." if leaf.symbol == reference else leaf.symbol
        else:
            gene = self._gene(leaf.gene, leaf.position)
            site, index, symbol = (gene, leaf.position), self._amino_acid, leaf.symbol
            found = next(iter(index.at.get(site, {}).values()), None)
            if leaf.reference and found and index.sites[found][1] != leaf.reference:
                raise StoreError(
                    f"{leaf}: the reference amino acid at {gene}:{leaf.position} "
                    f"is {index.sites[found][1]}"
                )
        at = index.at.get(site, {})
        if symbol == ".":
            changed = BitMap.union(*(index.bitmaps[k] for k in at.values())) if at else BitMap()
            return universe - changed - _bitmap(np.flatnonzero(self._unknown_mask(leaf)))
        if symbol is None:
            return BitMap.union(*(index.bitmaps[k] for k in at.values())) if at else BitMap()
        key = at.get(symbol)
        return index.bitmaps[key] if key else BitMap()

    def _insertion(self, leaf: Insertion) -> BitMap:
        if leaf.gene is None:
            site, index = ("", leaf.position), self._nucleotide_insertions
        else:
            site = (self._gene(leaf.gene, leaf.position), leaf.position)
            index = self._amino_acid_insertions
        pattern = re.compile(".*".join(map(re.escape, leaf.pattern.split("?"))))
        keys = [k for symbols, k in index.at.get(site, {}).items() if pattern.fullmatch(symbols)]
        return BitMap.union(*(index.bitmaps[k] for k in keys)) if keys else BitMap()

    def _gene(self, name: str, codon: int) -> str:
        gene = self._genes.get(name.lower())
        if gene is None:
            raise StoreError(
                f"no gene {name!r} in {self.organism.name}; genes are: {', '.join(self._codons)}"
            )
        if codon > len(self._codons[gene][0]):
            raise StoreError(f"{gene} has {len(self._codons[gene][0])} codons, not {codon}")
        return gene

    def _unknown_mask(self, leaf: Leaf) -> np.ndarray:
        """Rows whose base (codon) at the leaf's position is unknown; none for insertions."""
        if isinstance(leaf, NucleotideMutation):
            return self._unknown.covering(leaf.position, leaf.position, self._n)
        if isinstance(leaf, AminoAcidMutation):
            starts, ends = self._codons[self._gene(leaf.gene, leaf.position)]
            return self._unknown.covering(
                int(starts[leaf.position - 1]), int(ends[leaf.position - 1]), self._n
            )
        return np.zeros(self._n, bool)


class _Column:
    """A categorical column: each row holds a code into ``values`` (0: no value)."""

    def __init__(self, capacity: int) -> None:
        self.values: list[str | None] = [None]
        self.index: dict[str, int] = {}
        self.codes = np.zeros(capacity, np.int32)

    def code(self, value: str) -> int:
        if not value:
            return 0
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.values)
            self.values.append(value)
        return code

    def grow(self, capacity: int) -> None:
        self.codes = _grown(self.codes, capacity)


class _MutationIndex:
    """Rows per mutation (or insertion) key as bitmaps, keys by site (gene or '', position), and
    each row's key ids in order (to count over a few rows without touching every bitmap)."""

    def __init__(self, codons: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.codons = codons  # amino acids: each gene's codon spans on the reference
        self.keys: list[str] = []  # by id
        # by id: first reference position of the key's base (codon), the codon's width (0 for a
        # base), rows carrying it (retired ones too: an upper bound)
        self.starts = np.zeros(1024, np.int64)
        self.widths = np.zeros(1024, np.int64)
        self.sizes = np.zeros(1024, np.int64)
        self.ids: dict[str, int] = {}
        self.bitmaps: dict[str, BitMap] = {}
        self.sites: dict[str, tuple[str, str, int, str]] = {}  # key -> gene, ref, position, to
        self.at: dict[tuple[str, int], dict[str, str]] = {}  # site -> symbol -> key
        self.offsets = np.zeros(1024, np.int64)  # row r's ids: values[offsets[r]:offsets[r+1]]
        self.values = np.zeros(4096, np.int32)
        self.rows = 0

    def append(self, first_row: int, keys: list[str], lengths: list[int]) -> None:
        """Rows ``first_row``, ``first_row + 1``, ... carrying ``lengths[i]`` of ``keys`` each."""
        assert first_row == self.rows, "rows are indexed in order"
        for key in sorted(set(keys).difference(self.ids)):
            self._register(key)
        ids = np.fromiter(map(self.ids.__getitem__, keys), np.int32, len(keys))
        end = self.offsets[self.rows] + len(ids)
        self.offsets = _grown(self.offsets, self.rows + len(lengths) + 1)
        self.offsets[self.rows + 1 : self.rows + len(lengths) + 1] = self.offsets[
            self.rows
        ] + np.cumsum(lengths)
        self.values = _grown(self.values, int(end))
        self.values[end - len(ids) : end] = ids
        rows = np.repeat(np.arange(first_row, first_row + len(lengths), dtype=np.uint32), lengths)
        self.rows += len(lengths)
        if not len(ids):
            return
        self.sizes[: len(self.keys)] += np.bincount(ids, minlength=len(self.keys))
        order = np.argsort(ids, kind="stable")  # rows stay sorted within each key
        ids, rows = ids[order], rows[order]
        bounds = np.flatnonzero(np.diff(ids)) + 1
        firsts = ids[np.r_[0, bounds]].tolist()
        for key_id, part in zip(firsts, np.split(rows, bounds), strict=True):
            self.bitmaps[self.keys[key_id]].update(array.array("I", part.tobytes()))

    def _register(self, key: str) -> None:
        site = _site(key)
        self.ids[key] = len(self.keys)
        self.keys.append(key)
        self.bitmaps[key] = BitMap()
        self.sites[key] = site
        self.at.setdefault((site[0], site[2]), {})[site[3]] = key
        key_id = self.ids[key]
        self.starts = _grown(self.starts, key_id + 1)
        self.widths = _grown(self.widths, key_id + 1)
        self.sizes = _grown(self.sizes, key_id + 1)
        gene, _, place, _ = site
        if not gene:
            self.starts[key_id] = place
        elif self.codons and gene in self.codons and place <= len(self.codons[gene][0]):
            first, last = self.codons[gene]
            self.starts[key_id] = first[place - 1]
            self.widths[key_id] = last[place - 1] - first[place - 1]

    def counts(self, rows: np.ndarray) -> np.ndarray:
        """How many of ``rows`` carry each key, by id."""
        starts, ends = self.offsets[rows], self.offsets[rows.astype(np.int64) + 1]
        lengths = ends - starts
        steps = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.bincount(
            self.values[np.repeat(starts, lengths) + steps], minlength=len(self.keys)
        )

    def mean_keys(self) -> float:
        return float(self.offsets[self.rows]) / max(self.rows, 1)


class _Intervals:
    """Unknown reference ranges (inclusive) per row, in row then start order, disjoint per row."""

    def __init__(self) -> None:
        self._size = 0
        self._data = np.zeros((3, 4096), np.int64)  # rows, starts, ends

    def extend(self, intervals: list[tuple[int, int, int]]) -> None:
        if not intervals:
            return
        needed = self._size + len(intervals)
        if needed > self._data.shape[1]:
            grown = np.zeros((3, max(needed, 2 * self._data.shape[1])), np.int64)
            grown[:, : self._size] = self._data[:, : self._size]
            self._data = grown
        self._data[:, self._size : needed] = np.array(intervals, np.int64).T
        self._size = needed

    def covering(self, start: int, end: int, n: int) -> np.ndarray:
        """A row mask: rows with an unknown base somewhere in [start, end]."""
        rows, starts, ends = self._data[:, : self._size]
        mask = np.zeros(n, bool)
        mask[rows[(starts <= end) & (ends >= start)]] = True
        return mask

    def counts(self, selected: np.ndarray, width: int, length: int) -> np.ndarray:
        """For every position p (index p), how many ``selected`` rows have an unknown base in
        [p, p + width]."""
        rows, starts, ends = self._data[:, : self._size]
        chosen = selected[rows]
        rows, starts, ends = rows[chosen], starts[chosen] - width, ends[chosen]
        if width and len(rows):
            # widened ranges of one row may now overlap: start each after the one before
            same = np.zeros(len(rows), bool)
            same[1:] = rows[1:] == rows[:-1]
            previous = np.zeros(len(rows), np.int64)
            previous[1:] = ends[:-1]
            starts = np.where(same, np.maximum(starts, previous + 1), starts)
        starts = np.maximum(starts, 1)
        size = length + 2
        change = (
            np.bincount(starts, minlength=size)[:size]
            - np.bincount(ends + 1, minlength=size)[:size]
        )
        return np.cumsum(change)


class _Pending:
    """What a batch of new rows adds to the mutation indexes and intervals, flushed at once."""

    def __init__(self) -> None:
        self.first_row: int | None = None
        self.keys: tuple[list[str], ...] = ([], [], [], [])  # by index, all rows' keys in turn
        self.lengths: tuple[list[int], ...] = ([], [], [], [])
        self.unknown: list[tuple[int, int, int]] = []

    def add(self, row: int, analysis: Analysis, length: int) -> None:
        if self.first_row is None:
            self.first_row = row
        for keys, lengths, found in zip(
            self.keys,
            self.lengths,
            (
                analysis.substitutions + analysis.deletions,
                analysis.aa_substitutions + analysis.aa_deletions,
                analysis.insertions,
                analysis.aa_insertions,
            ),
            strict=True,
        ):
            distinct = dict.fromkeys(found) if found else ()  # a repeated key counts once
            keys.extend(distinct)
            lengths.append(len(distinct))
        ranges = list(analysis.unknown(length))
        ranges += [(position(site), position(site)) for site in analysis.ambiguous]
        self.unknown.extend((row, start, end) for start, end in _merged(ranges))


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            while self._writing or self._waiting:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._waiting += 1
            while self._writing or self._readers:
                self._condition.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._condition.notify_all()


def _site(key: str) -> tuple[str, str, int, str]:
    """A stored key's gene ('' for nucleotides), reference symbol, position and new symbol:
    ``S:E484K`` → (S, E, 484, K); ``22204:GAG`` (an insertion) → ('', '', 22204, GAG)."""
    found = _KEY.fullmatch(key)
    if found is None:
        raise StoreError(f"{key!r} is not a mutation in Nextclade notation")
    gene, reference, place, rest = found.groups()
    if rest.startswith(":"):  # an insertion: ``22204:GAG``, ``S:214:EPE``
        return gene or "", reference, int(place), rest[1:]
    return gene or "", reference, int(place), rest


def _location_parts(location: str) -> list[str]:
    return [part.strip() for part in location.split("/") if part.strip()]


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _codon_spans(organism: Organism) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per coding feature: the lowest and highest reference position of each codon."""
    spans = {}
    for feature in organism.coding:
        parts = feature.parts if feature.strand != "-" else tuple(reversed(feature.parts))
        positions = np.concatenate(
            [
                np.arange(start, end + 1)
                if feature.strand != "-"
                else np.arange(end, start - 1, -1)
                for start, end in parts
            ]
        )
        codons = positions[: len(positions) // 3 * 3].reshape(-1, 3)
        spans[feature.name] = codons.min(axis=1), codons.max(axis=1)
    return spans


def _group(codes: list[np.ndarray], sizes: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct combinations of several code columns and how often each occurs."""
    if np.prod([float(s) for s in sizes]) < 2**62:
        combined = np.zeros(len(codes[0]), np.int64)
        for column, size in zip(codes, sizes, strict=True):
            combined = combined * size + column
        found, counts = np.unique(combined, return_counts=True)
        groups = []
        for size in reversed(sizes):
            found, remainder = np.divmod(found, size)
            groups.append(remainder)
        return groups[::-1], counts
    stacked, counts = np.unique(np.stack(codes, axis=1), axis=0, return_counts=True)
    return [stacked[:, i] for i in range(len(codes))], counts


def _shown(name: str, value: str | None) -> Any:
    return int(value) if name == "version" and value is not None else value


def _mutation_entry(key: str, count: int, coverage: int, kind: str) -> dict[str, Any]:
    gene, reference, place, symbol = _site(key)
    return {
        "mutation": key,
        "count": count,
        "coverage": coverage,
        "proportion": count / coverage,
        "sequenceName": gene if kind == "aminoAcid" else None,
        "mutationFrom": reference,
        "mutationTo": symbol,
        "position": place,
    }


def _bin_start(ordinals: np.ndarray, binning: Binning) -> np.ndarray:
    """The ordinal of the first day of each day's bin (ISO weeks start on Monday)."""
    if binning == "day":
        return ordinals
    if binning == "week":
        mondays: np.ndarray = ordinals - (ordinals - 1) % 7  # 0001-01-01 was a Monday
        return mondays
    days = ordinals.astype("timedelta64[D]") + np.datetime64("0000-12-31")
    unit = "M" if binning == "month" else "Y"
    firsts = days.astype(f"datetime64[{unit}]").astype("datetime64[D]")
    return (firsts - np.datetime64("0000-12-31")).astype(np.int64)


def _bin_entry(start: int, binning: Binning) -> dict[str, Any]:
    first = date.fromordinal(start)
    if binning == "day":
        last = first
    elif binning == "week":
        last = first + timedelta(days=6)
    elif binning == "month":
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    else:
        last = first.replace(month=12, day=31)
    label = {
        "day": first.isoformat(),
        "week": f"{first.isocalendar()[0]}-W{first.isocalendar()[1]:02d}",
        "month": first.isoformat()[:7],
        "year": str(first.year),
    }[binning]
    return {"date": label, "dateFrom": first.isoformat(), "dateTo": last.isoformat()}


def _grown(values: np.ndarray, needed: int) -> np.ndarray:
    """``values`` with room for ``needed`` (at least doubled when it grows), zeros after."""
    if needed <= len(values):
        return values
    grown = np.zeros(max(needed, 2 * len(values)), values.dtype)
    grown[: len(values)] = values
    return grown


def _bitmap(rows: np.ndarray) -> BitMap:
    """A bitmap of sorted row numbers (through array.array: much faster than from numpy)."""
    return BitMap(array.array("I", np.asarray(rows, np.uint32).tobytes()))


def _rows(bitmap: BitMap) -> np.ndarray:
    return np.frombuffer(bitmap.to_array(), np.uint32)
