"""Ontology terms as CURIEs, sex and age: the phenotypic fields Beacon and the catalogue query.

Terms are kept as CURIEs (``HP:0001250``) of a few known ontologies, each checked for the shape of
its local identifiers: a typo such as ``HP:000125`` is caught at submission, not when a researcher
finds no match. Whether the term exists in the ontology is not checked (that needs the ontology
files, which a node may not have).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genofed.metadata.problems import invalid


@dataclass(frozen=True)
class Prefix:
    name: str
    ontology: str
    local_id: re.Pattern[str]
    shape: str  # the local id's shape, for messages
    example: str


_SEVEN_DIGITS = re.compile(r"\d{7}")
PREFIXES = {
    prefix.name: prefix
    for prefix in (
        Prefix("HP", "Human Phenotype Ontology", _SEVEN_DIGITS, "7 digits", "HP:0001250"),
        Prefix(
            "ICD10",
            "ICD-10",
            re.compile(r"[A-Z]\d{2}(\.[0-9A-Z]{1,4})?"),
            "a letter, 2 digits and an optional .subcode",
            "ICD10:E11.9",
        ),
        Prefix("NCIT", "NCI Thesaurus", re.compile(r"C\d{1,7}"), "C + digits", "NCIT:C3224"),
        Prefix("MONDO", "Mondo Disease Ontology", _SEVEN_DIGITS, "7 digits", "MONDO:0005148"),
        Prefix("EFO", "Experimental Factor Ontology", _SEVEN_DIGITS, "7 digits", "EFO:0000400"),
        Prefix("ORPHA", "Orphanet", re.compile(r"\d{1,7}"), "digits", "ORPHA:558"),
    )
}
KNOWN = ", ".join(f"{name}:" for name in PREFIXES)
_OBO_IRI = re.compile(r"^https?://purl\.obolibrary\.org/obo/([A-Za-z]+)_(\w+)$")
_UNDERSCORE = re.compile(r"^([A-Za-z0-9]+)_(\w+)$")


def curie(text: str) -> str:
    """The CURIE ``text`` in canonical form (upper-case prefix); raises with the fix otherwise."""
    value = text.strip()
    match = _OBO_IRI.match(value) or _UNDERSCORE.match(value)
    if match and match.group(1).upper() in PREFIXES:
        written = f"{match.group(1).upper()}:{match.group(2)}"
        raise invalid("an ontology IRI or OBO id, not a CURIE", f"write it as {written}")
    prefix, colon, local = value.partition(":")
    if not colon or not prefix or not local:
        raise invalid(
            "not an ontology term",
            f"write a CURIE, PREFIX:ID, with a prefix among {KNOWN} e.g. HP:0001250",
        )
    known = PREFIXES.get(prefix.upper().replace("-", ""))
    if known is None:
        raise invalid(f"unknown ontology prefix {prefix!r}", f"use one of {KNOWN}")
    local = local.strip().upper() if known.name in ("ICD10", "NCIT") else local.strip()
    if not known.local_id.fullmatch(local):
        raise invalid(
            f"not a valid {known.name} term",
            f"{known.ontology} ids are {known.shape}, e.g. {known.example}",
        )
    return f"{known.name}:{local}"


# -- sex ----------------------------------------------------------------------------------------

# The NCIT terms Beacon v2 uses for sex, and the PATO terms submitters often write instead.
SEX_TERMS = {"female": "NCIT:C16576", "male": "NCIT:C20197", "unknown": "NCIT:C17998"}
_SEX_SYNONYMS = {
    "NCIT:C16576": "female",
    "PATO:0000383": "female",
    "NCIT:C20197": "male",
    "PATO:0000384": "male",
    "NCIT:C17998": "unknown",
    "NCIT:C124294": "unknown",  # undetermined
}


def sex(text: str) -> str:
    """``female``, ``male`` or ``unknown``, from the word or an NCIT/PATO term."""
    value = text.strip()
    if value.lower() in SEX_TERMS:
        return value.lower()
    found = _SEX_SYNONYMS.get(value.upper())
    if found is None:
        raise invalid(
            "not a known sex",
            "write female, male or unknown (or NCIT:C16576, NCIT:C20197, NCIT:C17998)",
        )
    return found


# -- age ----------------------------------------------------------------------------------------

_AGE = re.compile(
    r"P(?=\d|T\d)(?:(?P<Y>\d{1,3})Y)?(?:(?P<M>\d{1,4})M)?(?:(?P<W>\d{1,4})W)?(?:(?P<D>\d{1,5})D)?"
    r"(?:T(?=\d)(?:\d{1,5}H)?(?:\d{1,5}M)?(?:\d{1,5}S)?)?"
)
MAX_AGE_YEARS = 150


def age(text: str) -> str:
    """An age as an ISO 8601 duration (``P45Y``, ``P3M``, ``P2W10D``), in upper case."""
    value = text.strip().upper()
    match = _AGE.fullmatch(value)
    if match is None:
        raise invalid("not an ISO 8601 duration", "write the age as e.g. P45Y, P45Y6M or P10D")
    parts = {unit: int(match.group(unit) or 0) for unit in "YMWD"}
    years = parts["Y"] + parts["M"] / 12 + parts["W"] / 52 + parts["D"] / 365
    if years > MAX_AGE_YEARS:
        raise invalid(f"an age over {MAX_AGE_YEARS} years", "check the value and its unit")
    return value
