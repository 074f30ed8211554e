"""Mutation filters and boolean variant queries, as LAPIS writes them.

A leaf names one thing a genome may carry, in Nextclade / LAPIS notation:

- nucleotides: ``C241T`` or ``241T`` (that base), ``A21765-`` (deleted), ``241.`` (the
  reference base), ``241`` (any known base other than the reference);
- amino acids: ``S:E484K``, ``S:484K``, ``S:H69-``, ``S:484.``, ``ORF8:Q27*``, ``S:484``;
- insertions: ``ins_22204:GAGCCAGAA``, ``ins_S:214:EPE``; ``?`` stands for any run of symbols.

Leaves combine with ``&``, ``|``, ``!`` and parentheses (``!`` binds tightest, then ``&``, then
``|``), and with ``[2-of: a, b, c]`` (at least two) or ``[exactly-2-of: a, b, c]``. The parsed
tree prints back to text that parses to the same tree. Errors name the column where parsing
stopped and what was expected there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NoReturn

from genofed.errors import GenofedError

NUCLEOTIDES = frozenset("ACGTNRYKMSWBDHV")
AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWYX*")
Kind = Literal["nucleotide", "aminoAcid"]

_WORD = re.compile(r"[A-Za-z0-9_.*?:\-]+")
_N_OF = re.compile(r"\[\s*(exactly-)?(\d+)-of\s*:", re.IGNORECASE)
_NUC = re.compile(r"([A-Za-z])?(\d+)([A-Za-z.\-]?)")
_AA = re.compile(r"([A-Za-z0-9_]+):([A-Za-z*])?(\d+)([A-Za-z*.\-]?)")
_INSERTION = re.compile(r"ins_(?:([A-Za-z0-9_]+):)?(\d+):([A-Za-z*?]+)", re.IGNORECASE)
_EXAMPLES = "such as C241T, S:E484K or ins_22204:GAG"


class QueryError(GenofedError):
    """A query the store cannot answer as written (unknown field, bad value, ...)."""


class VariantQueryError(QueryError):
    """A mutation or variant query that does not parse; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        super().__init__(f"at column {column} of {text!r}: {problem}")
        self.text, self.column, self.problem = text, column, problem


@dataclass(frozen=True)
class NucleotideMutation:
    position: int
    reference: str | None  # the letter written before the position, if any
    symbol: str | None  # a base, '-' (deleted), '.' (reference) or None (any non-reference)

    def __str__(self) -> str:
        return f"{self.reference or ''}{self.position}{self.symbol or ''}"


@dataclass(frozen=True)
class AminoAcidMutation:
    gene: str
    position: int
    reference: str | None
    symbol: str | None

    def __str__(self) -> str:
        return f"{self.gene}:{self.reference or ''}{self.position}{self.symbol or ''}"


@dataclass(frozen=True)
class Insertion:
    gene: str | None  # None for a nucleotide insertion
    position: int  # inserted after this position (codon for amino acids)
    pattern: str  # the inserted symbols; '?' matches any run

    def __str__(self) -> str:
        gene = f"{self.gene}:" if self.gene else ""
        return f"ins_{gene}{self.position}:{self.pattern}"


Leaf = NucleotideMutation | AminoAcidMutation | Insertion


@dataclass(frozen=True)
class And:
    children: tuple[Expression, ...]

    def __str__(self) -> str:
        return " & ".join(_grouped(child) for child in self.children)


@dataclass(frozen=True)
class Or:
    children: tuple[Expression, ...]

    def __str__(self) -> str:
        return " | ".join(_grouped(child) for child in self.children)


@dataclass(frozen=True)
class Not:
    child: Expression

    def __str__(self) -> str:
        return f"!{_grouped(self.child)}"


@dataclass(frozen=True)
class NOf:
    count: int
    exactly: bool
    children: tuple[Expression, ...]

    def __str__(self) -> str:
        prefix = "exactly-" if self.exactly else ""
        return f"[{prefix}{self.count}-of: {', '.join(map(str, self.children))}]"


Expression = Leaf | And | Or | Not | NOf


def _grouped(expression: Expression) -> str:
    """Parentheses around an operand that is itself a binary operation."""
    return f"({expression})" if isinstance(expression, And | Or) else str(expression)


def leaves(expression: Expression) -> list[Leaf]:
    """Every mutation an expression names, in order."""
    if isinstance(expression, And | Or | NOf):
        return [leaf for child in expression.children for leaf in leaves(child)]
    if isinstance(expression, Not):
        return leaves(expression.child)
    return [expression]


def parse_variant_query(text: str) -> Expression:
    """The tree of a variant query such as ``C241T & (S:E484K | !S:501Y)``."""
    parser = _Parser(text)
    expression = parser.disjunction()
    parser.skip_space()
    if parser.at < len(text):
        parser.fail(f"expected '&', '|' or the end, found {text[parser.at]!r}")
    return expression


def parse_leaf(text: str, kind: Kind | None = None) -> Leaf:
    """One mutation or insertion; with ``kind``, it must be of that kind (for list filters such
    as ``nucleotideMutations``)."""
    stripped = text.strip()
    leaf = _leaf(stripped, text, text.index(stripped) if stripped else 0)
    if kind == "nucleotide" and not isinstance(leaf, NucleotideMutation | Insertion):
        raise VariantQueryError(text, 1, f"{stripped} is an amino-acid mutation; {_list_fix(kind)}")
    if kind == "aminoAcid" and not (
        isinstance(leaf, AminoAcidMutation) or (isinstance(leaf, Insertion) and leaf.gene)
    ):
        raise VariantQueryError(text, 1, f"{stripped} is a nucleotide mutation; {_list_fix(kind)}")
    return leaf


def _list_fix(kind: Kind) -> str:
    if kind == "nucleotide":
        return "list it under aminoAcidMutations (or aminoAcidInsertions)"
    return "list it under nucleotideMutations (or nucleotideInsertions)"


class _Parser:
    """Recursive descent over the text; ``at`` is the 0-based offset of the next character."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def fail(self, problem: str, at: int | None = None) -> NoReturn:
        raise VariantQueryError(self.text, (self.at if at is None else at) + 1, problem)

    def skip_space(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def take(self, symbol: str) -> bool:
        self.skip_space()
        if self.text.startswith(symbol, self.at):
            self.at += len(symbol)
            return True
        return False

    def disjunction(self) -> Expression:
        children = [self.conjunction()]
        while self.take("|"):
            children.append(self.conjunction())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def conjunction(self) -> Expression:
        children = [self.unary()]
        while self.take("&"):
            children.append(self.unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self) -> Expression:
        if self.take("!"):
            return Not(self.unary())
        if self.take("("):
            inner = self.disjunction()
            if not self.take(")"):
                self.fail(f"expected ')' to close the '(', found {self._found()}")
            return inner
        self.skip_space()
        header = _N_OF.match(self.text, self.at)
        if header:
            return self.n_of(header)
        word = _WORD.match(self.text, self.at)
        if word is None:
            self.fail(
                f"expected a mutation ({_EXAMPLES}), '(', '!' or '[2-of: ...]', "
                f"found {self._found()}"
            )
        self.at = word.end()
        return _leaf(word.group(), self.text, word.start())

    def n_of(self, header: re.Match[str]) -> NOf:
        start = self.at
        self.at = header.end()
        children = [self.disjunction()]
        while self.take(","):
            children.append(self.disjunction())
        if not self.take("]"):
            self.fail(f"expected ',' or ']' in the [n-of: ...] list, found {self._found()}")
        count = int(header.group(2))
        if not 1 <= count <= len(children):
            self.fail(
                f"[{count}-of: ...] lists {len(children)} expressions; n must be between 1 and "
                f"{len(children)}",
                start,
            )
        return NOf(count, bool(header.group(1)), tuple(children))

    def _found(self) -> str:
        self.skip_space()
        return repr(self.text[self.at]) if self.at < len(self.text) else "the end"


def _leaf(word: str, text: str, offset: int) -> Leaf:
    """One leaf from ``word``, found at ``offset`` of ``text`` (for the error's column)."""
    where = _Where(text, offset, word)
    if word[:4].lower() == "ins_":
        found = _INSERTION.fullmatch(word)
        if not found:
            raise where.error(
                f"{word!r} is not an insertion; write ins_POSITION:SYMBOLS or "
                "ins_GENE:CODON:SYMBOLS, e.g. ins_22204:GAG or ins_S:214:EPE"
            )
        gene, position, pattern = found.groups()
        where.check_position(int(position), minimum=0)
        alphabet = AMINO_ACIDS if gene else NUCLEOTIDES
        where.check_symbols(pattern.upper(), alphabet | {"?"}, found.start(3))
        return Insertion(gene, int(position), pattern.upper())
    if ":" in word:
        found = _AA.fullmatch(word)
        if not found:
            raise where.error(
                f"{word!r} is not an amino-acid mutation; write GENE:[REF]POSITION[AA], "
                "e.g. S:E484K, S:484K, S:H69- or S:484."
            )
        gene, reference, position, symbol = found.groups()
        where.check_position(int(position))
        where.check_symbols((reference or "").upper(), AMINO_ACIDS, found.start(2))
        where.check_symbols(symbol.upper(), AMINO_ACIDS | {"-", "."}, found.start(4))
        ref = reference.upper() if reference else None
        return AminoAcidMutation(gene, int(position), ref, symbol.upper() or None)
    found = _NUC.fullmatch(word)
    if not found:
        raise where.error(f"{word!r} is not a mutation; write one {_EXAMPLES}")
    reference, position, symbol = found.groups()
    where.check_position(int(position))
    where.check_symbols((reference or "").upper(), NUCLEOTIDES, 0)
    where.check_symbols(symbol.upper(), NUCLEOTIDES | {"-", "."}, found.start(3))
    ref = reference.upper() if reference else None
    return NucleotideMutation(int(position), ref, symbol.upper() or None)


@dataclass(frozen=True)
class _Where:
    """A word of the query being read, to locate its problems."""

    text: str
    offset: int
    word: str

    def error(self, problem: str, at: int = 0) -> VariantQueryError:
        return VariantQueryError(self.text, self.offset + at + 1, problem)

    def check_position(self, position: int, minimum: int = 1) -> None:
        if position < minimum:
            raise self.error(f"{self.word!r}: positions start at {minimum}")

    def check_symbols(self, symbols: str, alphabet: frozenset[str], start: int) -> None:
        for index, symbol in enumerate(symbols):
            if symbol not in alphabet:
                raise self.error(
                    f"{symbol!r} in {self.word!r} is not one of {''.join(sorted(alphabet))}",
                    start + index,
                )
