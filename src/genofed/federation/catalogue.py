"""The hub's catalogue: the public summaries nodes publish, and the search over them.

Storage: one ``hub_datasets`` row per (node, accession) holding the summary the node sent, the
node's digest of it and a ``seq`` that grows with every change (writers are serialized, so an
index that has read up to ``seq`` N never misses a row it has not seen). Deprecated datasets keep
their row, so their page can say so, but leave search.

Search: :class:`CatalogueIndex` keeps, in the hub process, the released datasets of approved
nodes with an inverted index per facet (country, data type, assembly, access level, DUO terms)
and per ontology term. Before each search it asks the database what changed (the newest ``seq``
and the nodes' states: two small queries) and reads only newer rows; a change among the nodes
(approved, removed, renamed) rebuilds it. A search is then set operations in memory: filters
within a facet are OR, across facets AND; a phenotype or disease term stands for its subtree
(:mod:`genofed.federation.terms`); text must contain every word of the query (title, description,
studies, phenotype labels, accession). Results come in a stable order (country, node,
accession), datasets whose title holds more of the words first, paginated; facet counts are over
all matches. Why in memory: the p95 target is 50 ms at 10,000 datasets including facet counts,
which grouped SQL over a facet table does not keep on SQLite; 10,000 summaries take a few tens
of MB. The database stays the truth, so any number of hub processes can serve searches.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genofed.db.engine import serialize_writers
from genofed.db.models import HubDataset, HubNode, HubNodeStatus, utcnow
from genofed.errors import GenofedError
from genofed.federation import terms
from genofed.federation.summary import DatasetSummary
from genofed.metadata import duo
from genofed.metadata.ontology import curie

MAX_PAGE_SIZE = 100
MAX_PUBLICATION = 200  # summaries per publish call
FACETS = ("country", "data_type", "assembly", "access", "duo")
TOP_PHENOTYPES = 20
CATALOGUE_LOCK_ID = 0x6766636174  # "gfcat": PostgreSQL advisory lock of catalogue writers
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
FACET_SEPARATOR = "\x1f"


class InvalidQuery(GenofedError):
    """A search the hub cannot run as asked (unknown DUO term, malformed ontology term)."""


class UnknownDataset(GenofedError):
    """No such dataset in the catalogue."""


# -- publication --------------------------------------------------------------------------------


class Published(BaseModel):
    """One dataset of a publication: its summary and the node's digest of it."""

    model_config = ConfigDict(extra="forbid")

    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    summary: DatasetSummary


class Publication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: Annotated[list[Published], Field(max_length=MAX_PUBLICATION)]


def publish(session: Session, node: HubNode, items: Sequence[Published]) -> dict[str, int]:
    """Store a node's summaries; counts of what changed (created, updated, unchanged)."""
    serialize_writers(session, CATALOGUE_LOCK_ID)  # seq values commit in order
    seq = int(session.scalar(select(func.max(HubDataset.seq))) or 0)
    counts = Counter({"created": 0, "updated": 0, "unchanged": 0})
    accessions = [item.summary.accession for item in items]
    stored = {
        row.accession: row
        for row in session.scalars(
            select(HubDataset).where(
                HubDataset.node_id == node.id, HubDataset.accession.in_(accessions)
            )
        )
    }
    for item in items:
        row = stored.get(item.summary.accession)
        if row is not None and row.digest == item.digest and row.status == item.summary.status:
            counts["unchanged"] += 1
            continue
        seq += 1
        if row is None:
            row = HubDataset(node_id=node.id, accession=item.summary.accession)
            session.add(row)
            stored[row.accession] = row
            counts["created"] += 1
        else:
            counts["updated"] += 1
        row.status = item.summary.status
        row.digest = item.digest
        row.summary = item.summary.model_dump(mode="json")
        row.seq = seq
        row.published_at = utcnow()
    session.flush()
    return dict(counts)


def combined_digest(entries: Iterable[tuple[str, str, str]]) -> str:
    """One digest over (accession, status, digest) triples: the node and the hub compare it to
    learn whether the hub holds what the node last published."""
    lines = sorted(f"{accession} {status} {digest}" for accession, status, digest in entries)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def catalogue_state(session: Session, node_id: str) -> dict[str, Any]:
    """What the hub holds of a node's catalogue, for its heartbeat reply."""
    rows = session.execute(
        select(HubDataset.accession, HubDataset.status, HubDataset.digest).where(
            HubDataset.node_id == node_id
        )
    ).all()
    return {"datasets": len(rows), "digest": combined_digest((a, s, d) for a, s, d in rows)}


def find_dataset(session: Session, node_id: str, accession: str) -> HubDataset:
    found = session.scalars(
        select(HubDataset).where(HubDataset.node_id == node_id, HubDataset.accession == accession)
    ).first()
    if found is None:
        raise UnknownDataset(f"the catalogue has no dataset {accession} of node {node_id}")
    return found


# -- the search index ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A catalogue search: free text plus facet filters (OR within a facet, AND across)."""

    text: str = ""
    country: tuple[str, ...] = ()
    phenotype: tuple[str, ...] = ()
    data_type: tuple[str, ...] = ()
    assembly: tuple[str, ...] = ()
    access: tuple[str, ...] = ()
    duo: tuple[str, ...] = ()
    page: int = 1
    page_size: int = 20

    def filters(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(facet, getattr(self, facet)) for facet in FACETS if getattr(self, facet)]


@dataclass(frozen=True)
class Entry:
    """A searchable dataset: its words, facet values, terms, and its row in results."""

    row_id: int
    node_id: str
    sort_key: tuple[str, str, str]
    title: str  # case-folded
    text: str  # case-folded
    facets: tuple[str, ...]  # facet_key(facet, value as shown): strings keep their hash
    own_terms: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]  # the terms' labels, as the node published them
    result: dict[str, Any]


@dataclass
class SearchResult:
    total: int
    results: list[dict[str, Any]]
    facets: dict[str, dict[str, int]]
    phenotypes: list[dict[str, Any]]
    unexpanded: list[str]  # terms whose ontology is not loaded: matched exactly


@dataclass
class _State:
    entries: dict[int, Entry] = field(default_factory=dict)
    postings: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    terms: dict[str, set[int]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    order: list[int] | None = None
    all_facets: tuple[dict[str, dict[str, int]], list[dict[str, Any]]] | None = None


class CatalogueIndex:
    """The released datasets of approved nodes, in memory, caught up from the database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        self._seq = 0
        self._nodes_key: tuple[tuple[str, str, str, str], ...] | None = None

    def refresh(self, session: Session) -> list[HubNode]:
        """Read what changed since the last refresh; returns every registered node."""
        nodes = list(session.scalars(select(HubNode).order_by(HubNode.country, HubNode.id)))
        key = tuple((n.id, n.status.value, n.country, n.name) for n in nodes)
        newest = int(session.scalar(select(func.max(HubDataset.seq))) or 0)
        with self._lock:
            if key == self._nodes_key and newest == self._seq:
                return nodes
            rebuild = key != self._nodes_key
            since = 0 if rebuild else self._seq
            rows = session.execute(
                select(
                    HubDataset.id,
                    HubDataset.node_id,
                    HubDataset.status,
                    HubDataset.summary,
                    HubDataset.seq,
                ).where(HubDataset.seq > since)
            ).all()
            if rebuild:
                self._state = _State()
            members = {n.id: n for n in nodes if n.status is HubNodeStatus.APPROVED}
            for row_id, node_id, status, summary, _ in rows:
                self._remove(row_id)
                node = members.get(node_id)
                if status == "released" and node is not None:
                    self._add(_entry(row_id, node, summary))
            self._seq = max([newest, *(row[4] for row in rows)])
            self._nodes_key = key
            if rows or rebuild:
                self._state.order = None
                self._state.all_facets = None
        return nodes

    def __len__(self) -> int:
        return len(self._state.entries)

    def search(self, query: Query) -> SearchResult:
        """Run ``query`` against the index as last refreshed."""
        expanded, unexpanded = _expanded_terms(query.phenotype)
        duo_codes = _duo_codes(query.duo)
        with self._lock:
            state = self._state
            order = self._order(state)
            matched = self._filtered(state, query, expanded, duo_codes)
            ids = order if matched is None else [i for i in order if i in matched]
            words = query.text.casefold().split()
            if words:
                ids = _by_words(state, ids, words)
            facets, phenotypes = self._facets(state, ids, everything=matched is None and not words)
            start = (query.page - 1) * query.page_size
            page = [state.entries[i].result for i in ids[start : start + query.page_size]]
        return SearchResult(len(ids), page, facets, phenotypes, unexpanded)

    # -- internals ------------------------------------------------------------------------------

    def _add(self, entry: Entry) -> None:
        state = self._state
        state.entries[entry.row_id] = entry
        for pair in entry.facets:
            facet, value = pair.split(FACET_SEPARATOR)
            state.postings.setdefault((facet, _key(value)), set()).add(entry.row_id)
        for term in entry.own_terms:
            state.terms.setdefault(term, set()).add(entry.row_id)
        for term, label in entry.labels:
            state.labels.setdefault(term, label)

    def _remove(self, row_id: int) -> None:
        state = self._state
        entry = state.entries.pop(row_id, None)
        if entry is None:
            return
        for pair in entry.facets:
            facet, value = pair.split(FACET_SEPARATOR)
            state.postings.get((facet, _key(value)), set()).discard(row_id)
        for term in entry.own_terms:
            state.terms.get(term, set()).discard(row_id)

    @staticmethod
    def _order(state: _State) -> list[int]:
        if state.order is None:
            state.order = sorted(state.entries, key=lambda i: state.entries[i].sort_key)
        return state.order

    @staticmethod
    def _filtered(
        state: _State, query: Query, expanded: set[str], duo_codes: tuple[str, ...]
    ) -> set[int] | None:
        """The ids passing every facet filter; None when no filter is given (everything)."""
        matched: set[int] | None = None
        filters = [
            (facet, duo_codes if facet == "duo" else values) for facet, values in query.filters()
        ]
        for facet, values in filters:
            chosen = set().union(*(state.postings.get((facet, _key(v)), ()) for v in values))
            matched = chosen if matched is None else matched & chosen
        if query.phenotype:
            present = state.terms.keys() & expanded  # in C: the expansion may be 19k terms
            chosen = set().union(*(state.terms[term] for term in present))
            matched = chosen if matched is None else matched & chosen
        return matched

    def _facets(
        self, state: _State, ids: list[int], *, everything: bool
    ) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
        if everything and state.all_facets is not None:
            return state.all_facets
        entries = [state.entries[i] for i in ids]
        pairs = Counter(itertools.chain.from_iterable(entry.facets for entry in entries))
        facets: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
        for pair, count in sorted(pairs.items()):
            facet, value = pair.split(FACET_SEPARATOR)
            facets[facet][value] = count
        counted = Counter(itertools.chain.from_iterable(entry.own_terms for entry in entries))
        # Over the keys, not items(): no tuple per term (they would feed the garbage collector)
        top = heapq.nlargest(TOP_PHENOTYPES, counted, key=counted.__getitem__)
        phenotypes = [
            {"id": term, "label": state.labels.get(term), "datasets": counted[term]}
            for term in sorted(top, key=lambda term: (-counted[term], term))
        ]
        if everything:
            state.all_facets = (facets, phenotypes)
        return facets, phenotypes


def _by_words(state: _State, ids: list[int], words: list[str]) -> list[int]:
    """The ids whose text holds every word, those with more words in the title first."""
    found = [i for i in ids if all(word in state.entries[i].text for word in words)]
    scored = [
        (-sum(word in state.entries[i].title for word in words), n, i) for n, i in enumerate(found)
    ]
    return [i for _, _, i in sorted(scored)]


def _entry(row_id: int, node: HubNode, summary: dict[str, Any]) -> Entry:
    """A dataset's index entry, built once from its stored summary (a
    :class:`~genofed.federation.summary.DatasetSummary` validated when it was published, read
    as stored: validating 10,000 again would double the time a rebuild takes)."""
    policy = summary.get("policy") or {}
    duo_codes = [policy["permission"]["code"], *(m["code"] for m in policy.get("modifiers", []))]
    duo_codes = list(dict.fromkeys(duo_codes)) if policy else []
    terms = [*summary.get("phenotypes", []), *summary.get("diseases", [])]
    own_terms = tuple(sorted({term["id"] for term in terms}))
    labels = {term["id"]: term["label"] for term in terms if term.get("label")}
    facets = (
        facet_key("country", node.country),
        *(facet_key("data_type", value) for value in summary.get("data_types", [])),
        *(facet_key("assembly", value) for value in summary.get("assemblies", [])),
        facet_key("access", summary.get("access", "controlled")),
        *(facet_key("duo", code) for code in duo_codes),
    )
    studies = [
        f"{study['accession']} {study['title']} {study.get('description') or ''}"
        for study in summary.get("studies", [])
    ]
    accession, title = summary["accession"], summary["title"]
    words = [accession, title, summary.get("description") or "", node.name, *studies]
    result = {
        "node": {"id": node.id, "name": node.name, "country": node.country},
        "accession": accession,
        "title": title,
        "individuals": summary["individuals"],
        "data_types": summary.get("data_types", []),
        "assemblies": summary.get("assemblies", []),
        "access": summary.get("access", "controlled"),
        "duo": duo_codes,
        "dac": (summary.get("dac") or {}).get("title"),
        "href": f"/catalogue/datasets/{node.id}/{accession}",
    }
    return Entry(
        row_id=row_id,
        node_id=node.id,
        sort_key=(node.country, node.id, accession),
        title=title.casefold(),
        text=" ".join([*words, *labels.values(), *own_terms]).casefold(),
        facets=facets,
        own_terms=own_terms,
        labels=tuple(labels.items()),
        result=result,
    )


def facet_key(facet: str, value: str) -> str:
    """One interned string per facet value: counting strings is cheap, their hash is kept."""
    return sys.intern(f"{facet}{FACET_SEPARATOR}{value}")


def _key(value: str) -> str:
    """Facet values compare without case or punctuation: ``rna-seq`` finds ``RNA-Seq``."""
    return _NOT_ALNUM.sub("", value.upper())


def _expanded_terms(requested: Sequence[str]) -> tuple[set[str], list[str]]:
    """Every term the requested ones stand for, and those that could not be expanded."""
    expanded: set[str] = set()
    unexpanded: list[str] = []
    for raw in requested:
        term = _canonical(raw)
        below = terms.descendants(term)
        if below is None:
            unexpanded.append(term)
            below = frozenset({term})
        expanded |= below
    return expanded, unexpanded


def _canonical(raw: str) -> str:
    """The term as a CURIE; ICD-10 blocks and chapters (``ICD10:G40-G47``) are terms here too."""
    try:
        return curie(raw)
    except ValueError as error:
        prefix, _, local = raw.strip().partition(":")
        block = f"ICD10:{local.strip().upper()}"
        if prefix.upper() == "ICD10" and terms.descendants(block) is not None:
            return block
        raise InvalidQuery(f"phenotype {raw!r} is not an ontology term: {error}") from None


def _duo_codes(requested: Sequence[str]) -> tuple[str, ...]:
    codes = []
    for raw in requested:
        try:
            codes.append(duo.lookup(raw).code)
        except ValueError:
            raise InvalidQuery(
                f"{raw!r} is not a DUO term: give a code (GRU, HMB, DS, IRB, ...) or an id "
                "(DUO:0000042)"
            ) from None
    return tuple(codes)
