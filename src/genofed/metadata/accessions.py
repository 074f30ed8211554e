"""Stable accessions: node-prefixed, typed, numbered, with a check character.

``GF`` + the node's country + a letter for the kind + 11 digits + a check character, e.g.
``GFBEF00000000042`` + check for the 42nd file of the Belgian node. The check character
(ISO 7064 MOD 37,36) catches every single mistyped character, and 99.6 % of swaps of two
neighbouring characters.
FEGA messages carry the EGA form of the same number (``EGAF00000000042``); both are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genofed.db import AccessionCounter, ObjectKind
from genofed.errors import GenofedError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = 11
PATHOGEN_RECORD = "pathogen"
PATHOGEN_SET = "pathogen_set"
# One letter per kind; files and pathogen records are not metadata objects but are accessioned
# alike.
KIND_LETTERS = {
    "file": "F",
    ObjectKind.DATASET: "D",
    ObjectKind.STUDY: "S",
    ObjectKind.SAMPLE: "N",
    ObjectKind.EXPERIMENT: "X",
    ObjectKind.RUN: "R",
    ObjectKind.ANALYSIS: "Z",
    ObjectKind.DAC: "C",
    ObjectKind.POLICY: "P",
    PATHOGEN_RECORD: "V",  # a viral genome record, versioned: GFBEV00000000042X.2
    PATHOGEN_SET: "E",  # a citable snapshot set of pathogen records
}
KINDS_BY_LETTER = {letter: kind for kind, letter in KIND_LETTERS.items()}
OURS = re.compile(r"^GF([A-Z]{2})([A-Z])(\d{11})([0-9A-Z])$")
EGA = re.compile(r"^EGA([A-Z])(\d{11})$")


class InvalidAccession(GenofedError):
    """A string that is not an accession of ours, or whose check character does not match."""


@dataclass(frozen=True)
class Accession:
    country: str
    kind: str  # "file" or an ObjectKind value
    number: int

    def __str__(self) -> str:
        body = f"GF{self.country}{KIND_LETTERS[self.kind]}{self.number:0{DIGITS}d}"
        return body + check_character(body)

    @property
    def ega(self) -> str:
        """The EGA form used in FEGA broker messages, e.g. ``EGAF00000000042``."""
        return f"EGA{KIND_LETTERS[self.kind]}{self.number:0{DIGITS}d}"


def check_character(text: str) -> str:
    """ISO 7064 MOD 37,36 check character of an upper-case alphanumeric string."""
    modulus, product = 36, 36
    for char in text:
        total = (product + ALPHABET.index(char)) % modulus or modulus
        product = total * 2 % (modulus + 1)
    return ALPHABET[(modulus + 1 - product) % modulus]


def parse(text: str, *, country: str | None = None) -> Accession:
    """Read an accession in our form or the EGA form (the EGA form needs the node's country)."""
    cleaned = text.strip().upper()
    if match := OURS.match(cleaned):
        found_country, letter, digits, check = match.groups()
        body = cleaned[:-1]
        if check_character(body) != check:
            raise InvalidAccession(
                f"accession {text!r} has a wrong check character (expected "
                f"{check_character(body)}): it was probably mistyped; copy it again"
            )
        return Accession(found_country, _kind(letter, text), int(digits))
    if (match := EGA.match(cleaned)) and country is not None:
        letter, digits = match.groups()
        return Accession(country, _kind(letter, text), int(digits))
    raise InvalidAccession(
        f"{text!r} is not an accession: expected GF + country + kind letter + 11 digits + check "
        "character (e.g. GFBEF00000000001?), or EGAF/EGAD + 11 digits"
    )


def parse_versioned(text: str) -> tuple[Accession, int | None]:
    """An accession with an optional version suffix: ``GFBEV00000000042X.2`` → (…, 2)."""
    base, dot, version = text.strip().partition(".")
    if not dot:
        return parse(base), None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise InvalidAccession(
            f"{text!r} has the version {version!r}: write a whole number from 1 after the dot, "
            "e.g. GFBEV00000000042X.2"
        )
    return parse(base), int(version)


def _kind(letter: str, text: str) -> str:
    kind = KINDS_BY_LETTER.get(letter)
    if kind is None:
        raise InvalidAccession(f"accession {text!r} has the unknown kind letter {letter!r}")
    return str(kind)


def allocate(session: Session, country: str, kind: str) -> Accession:
    """The next accession of ``kind``, taken atomically in the caller's transaction."""
    return allocate_many(session, country, kind, 1)[0]


def allocate_many(session: Session, country: str, kind: str, count: int) -> list[Accession]:
    """The next ``count`` accessions of ``kind``, consecutive, in one atomic step (a submission
    with thousands of samples takes its numbers in one statement, not thousands)."""
    if count < 1:
        return []
    first = _take_numbers(session, str(kind), count)
    if first is None:  # the first of its kind: create the counter (another process may too)
        try:
            with session.begin_nested():
                session.add(AccessionCounter(kind=str(kind), next_value=1))
        except IntegrityError:
            pass
        first = _take_numbers(session, str(kind), count)
    assert first is not None
    return [Accession(country.upper(), str(kind), number) for number in range(first, first + count)]


def _take_numbers(session: Session, kind: str, count: int) -> int | None:
    """The first of ``count`` numbers taken from ``kind``'s counter; None if it has none yet."""
    taken = session.execute(
        update(AccessionCounter)
        .where(AccessionCounter.kind == kind)
        .values(next_value=AccessionCounter.next_value + count)
        .returning(AccessionCounter.next_value)
    ).scalar_one_or_none()
    return None if taken is None else taken - count
