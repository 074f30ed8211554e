"""The variant-query parser: notation, precedence, round trips and located errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed.pathogen.variant_query import (
    AminoAcidMutation,
    And,
    Expression,
    Insertion,
    NOf,
    Not,
    NucleotideMutation,
    Or,
    VariantQueryError,
    leaves,
    parse_leaf,
    parse_variant_query,
)


@pytest.mark.parametrize(
    ("text", "leaf"),
    [
        ("C241T", NucleotideMutation(241, "C", "T")),
        ("241t", NucleotideMutation(241, None, "T")),
        ("A21765-", NucleotideMutation(21765, "A", "-")),
        ("21765-", NucleotideMutation(21765, None, "-")),
        ("C241.", NucleotideMutation(241, "C", ".")),
        ("241", NucleotideMutation(241, None, None)),
        ("S:E484K", AminoAcidMutation("S", 484, "E", "K")),
        ("S:484K", AminoAcidMutation("S", 484, None, "K")),
        ("S:H69-", AminoAcidMutation("S", 69, "H", "-")),
        ("ORF8:Q27*", AminoAcidMutation("ORF8", 27, "Q", "*")),
        ("ORF1a:4175.", AminoAcidMutation("ORF1a", 4175, None, ".")),
        ("ins_22204:GAGCCAGAA", Insertion(None, 22204, "GAGCCAGAA")),
        ("ins_S:214:EPE", Insertion("S", 214, "EPE")),
        ("INS_22204:ga?", Insertion(None, 22204, "GA?")),
    ],
)
def test_leaf_notation(text: str, leaf: Expression) -> None:
    assert parse_variant_query(text) == leaf
    assert parse_variant_query(f"  {text} ") == leaf


def test_precedence_not_then_and_then_or() -> None:
    a, b, c = (NucleotideMutation(p, None, "T") for p in (1, 2, 3))
    assert parse_variant_query("1T | 2T & !3T") == Or((a, And((b, Not(c)))))
    assert parse_variant_query("(1T | 2T) & 3T") == And((Or((a, b)), c))
    assert parse_variant_query("!(1T & 2T)") == Not(And((a, b)))


def test_n_of() -> None:
    query = parse_variant_query("[2-of: C241T, A23403G, S:501Y] & [exactly-1-of: 1T, 2T | 3T]")
    assert isinstance(query, And)
    first, second = query.children
    assert first == NOf(
        2,
        False,
        (
            NucleotideMutation(241, "C", "T"),
            NucleotideMutation(23403, "A", "G"),
            AminoAcidMutation("S", 501, None, "Y"),
        ),
    )
    assert isinstance(second, NOf) and second.exactly and second.count == 1
    assert len(leaves(query)) == 6


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("C241T &", 8, "found the end"),
        ("C241T & & A1G", 9, "expected a mutation"),
        ("C241J", 5, "'J'"),
        ("S:E484K )", 9, "expected '&', '|' or the end"),
        ("(C241T | 1A", 12, "expected ')'"),
        ("[3-of: 1T, 2T]", 1, "n must be between 1 and 2"),
        ("[2-of: 1T; 2T]", 10, "expected ',' or ']'"),
        ("S:E48Z4K", 1, "not an amino-acid mutation"),
        ("0T", 1, "positions start at 1"),
        ("ins_22204", 1, "not an insertion"),
        ("ins_22204:GAJ", 13, "'J'"),
        ("1T # 2T", 4, "expected '&', '|' or the end, found '#'"),
    ],
)
def test_errors_name_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(VariantQueryError) as raised:
        parse_variant_query(text)
    assert raised.value.column == column
    assert words in str(raised.value)
    assert f"column {column}" in str(raised.value)


def test_list_items_are_checked_for_their_kind() -> None:
    assert parse_leaf(" C241T ", "nucleotide") == NucleotideMutation(241, "C", "T")
    assert parse_leaf("ins_S:214:EPE", "aminoAcid") == Insertion("S", 214, "EPE")
    with pytest.raises(VariantQueryError, match="aminoAcidMutations"):
        parse_leaf("S:E484K", "nucleotide")
    with pytest.raises(VariantQueryError, match="nucleotideMutations"):
        parse_leaf("C241T", "aminoAcid")


# -- generated expressions -------------------------------------------------------------------

_NUC = st.builds(
    NucleotideMutation,
    st.integers(1, 29903),
    st.sampled_from([None, "A", "C", "G", "T"]),
    st.sampled_from([None, "A", "C", "G", "T", "N", "-", "."]),
)
_AA = st.builds(
    AminoAcidMutation,
    st.sampled_from(["S", "N", "ORF1a", "ORF8", "E"]),
    st.integers(1, 1273),
    st.sampled_from([None, "E", "N", "*"]),
    st.sampled_from([None, "K", "Y", "*", "-", "."]),
)
_INS = st.builds(
    Insertion,
    st.sampled_from([None, "S"]),
    st.integers(0, 30000),
    st.text(alphabet="ACGT?", min_size=1, max_size=6),
)
_LEAVES = st.one_of(_NUC, _AA, _INS)


def _compound(children: st.SearchStrategy[Expression]) -> st.SearchStrategy[Expression]:
    many = st.lists(children, min_size=2, max_size=4).map(tuple)
    n_of = st.lists(children, min_size=1, max_size=4).flatmap(
        lambda items: st.builds(
            NOf, st.integers(1, len(items)), st.booleans(), st.just(tuple(items))
        )
    )
    return st.one_of(many.map(And), many.map(Or), children.map(Not), n_of)


EXPRESSIONS = st.recursive(_LEAVES, _compound, max_leaves=12)


@given(EXPRESSIONS)
@settings(max_examples=300, deadline=None)
def test_printed_expressions_parse_back_to_themselves(expression: Expression) -> None:
    assert parse_variant_query(str(expression)) == expression


@given(st.text(alphabet="CT241:S&|!()[],-of. ", max_size=30))
@settings(max_examples=300, deadline=None)
def test_junk_parses_or_fails_with_a_column_inside_the_text(text: str) -> None:
    try:
        parse_variant_query(text)
    except VariantQueryError as error:
        assert 1 <= error.column <= len(text) + 1
