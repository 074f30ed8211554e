"""Accessions: format, check character, EGA form, atomic allocation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from genofed import db
from genofed.metadata.accessions import (
    ALPHABET,
    Accession,
    InvalidAccession,
    allocate,
    check_character,
    parse,
)

KINDS = ["file", *(kind.value for kind in db.ObjectKind)]


@given(
    country=st.sampled_from(["BE", "FI", "SE"]),
    kind=st.sampled_from(KINDS),
    number=st.integers(min_value=0, max_value=10**11 - 1),
)
def test_round_trip(country: str, kind: str, number: int) -> None:
    accession = Accession(country, kind, number)
    text = str(accession)
    assert len(text) == 2 + 2 + 1 + 11 + 1
    assert parse(text) == accession
    assert parse(text.lower()) == accession
    assert parse(accession.ega, country=country) == accession


@given(number=st.integers(min_value=0, max_value=10**11 - 1), data=st.data())
def test_every_single_typo_is_caught(number: int, data: st.DataObject) -> None:
    text = str(Accession("BE", "file", number))
    position = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != text[position]))
    typo = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(InvalidAccession):
        parse(typo)


def test_nearly_every_swap_of_neighbours_is_caught() -> None:
    rng = random.Random(1)
    caught = total = 0
    for _ in range(3000):
        text = str(Accession("FI", "dataset", rng.randrange(10**11)))
        for position in range(len(text) - 1):
            swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
            if swapped == text:
                continue
            total += 1
            try:
                parse(swapped)
            except InvalidAccession:
                caught += 1
    assert caught / total > 0.99


def test_check_character_is_iso_7064_mod_37_36() -> None:
    # the defining property: running the system over text + check ends on a sum of 1
    for text in ["GFBEF00000000001", "A", "ZZZZ", "0"]:
        modulus, product, total = 36, 36, 0
        for char in text + check_character(text):
            total = (product + ALPHABET.index(char)) % modulus or modulus
            product = total * 2 % (modulus + 1)
        assert total == 1


@pytest.mark.parametrize("text", ["", "EGAF123", "GFBEQ00000000001A", "hello", "GFBEF0000000001"])
def test_malformed_accessions_are_refused_with_the_form(text: str) -> None:
    with pytest.raises(InvalidAccession, match=r"not an accession|unknown kind|check character"):
        parse(text)


def test_ega_form_needs_the_country() -> None:
    with pytest.raises(InvalidAccession):
        parse("EGAF00000000001")


def test_allocation_counts_per_kind(db_engine: Engine) -> None:
    with db.session_scope(db_engine) as session:
        files = [allocate(session, "be", "file") for _ in range(3)]
        dataset = allocate(session, "BE", db.ObjectKind.DATASET)
    assert [a.number for a in files] == [1, 2, 3]
    assert dataset == Accession("BE", "dataset", 1)
    with db.session_scope(db_engine) as session:
        assert allocate(session, "BE", "file").number == 4


def test_allocation_rolls_back_with_its_transaction(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError), db.session_scope(db_engine) as session:
        allocate(session, "BE", "file")
        raise RuntimeError("the stage failed")
    with db.session_scope(db_engine) as session:
        assert allocate(session, "BE", "file").number == 1
