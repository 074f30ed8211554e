"""Mutation calls from an :class:`~genofed.pathogen.alignment.Alignment`, in Nextclade notation.

Nucleotides: substitutions ``C241T``, deletions per position ``A21765-``, insertions after a
position ``22204:GAGCCAGAA``; N runs are missing data and other IUPAC codes mixed sites, never
substitutions.

Amino acids, per coding sequence and codon-aware: the query's bases are read codon by codon in
the reference's frame. Codons untouched by indels translate with one array lookup; codons an
indel touches are read as a peptide alignment would: a deletion of whole codons deletes those
amino acids (``S:H69-``), one that straddles codons (21765-21770) leaves a merged codon that is
matched to one of the reference's (``S:I68`` kept, ``S:H69-``, ``S:V70-``); an insertion of whole
codons is an amino-acid insertion after a codon (``S:214:EPE``). An indel whose length is not a
multiple of 3 starts a frameshift, reported as the reference codon range until another indel
restores the frame (or the end of the gene), with no amino-acid calls inside. Codons holding N,
an ambiguity code or lying outside the aligned range are unknown (``X``) and give no call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from genofed.pathogen.alignment import GAP, UNCOVERED, Alignment, Reference
from genofed.pathogen.organisms import Feature
from genofed.pathogen.translation import (
    BASE_CODE,
    CODON_TABLE,
    UNKNOWN,
    codes,
    codon_indices,
    reverse_complement,
    similarity,
    translate_codes,
)

STOP = ord("*")
_NUMBER = re.compile(r"\d+")
_ACGTN = np.zeros(256, dtype=bool)
_ACGTN[[ord(c) for c in "ACGTN-"]] = True
_ACGTN[UNCOVERED] = True
_COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in zip("ACGTRYKMBDHV", "TGCAYRMKVHDB", strict=True):
    _COMPLEMENT[ord(_a)] = ord(_b)


@dataclass(frozen=True)
class NucleotideCalls:
    substitutions: tuple[str, ...]
    deletions: tuple[str, ...]
    insertions: tuple[str, ...]
    missing: tuple[tuple[int, int], ...]
    ambiguous: tuple[str, ...]
    substitution_positions: npt.NDArray[np.intp]  # 0-based, for QC
    missing_count: int  # N bases in the aligned range


@dataclass
class AminoAcidCalls:
    substitutions: list[str] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    insertions: list[str] = field(default_factory=list)
    frameshifts: list[str] = field(default_factory=list)
    stop_codons: list[str] = field(default_factory=list)


def nucleotide_calls(reference: Reference, alignment: Alignment) -> NucleotideCalls:
    """Substitutions, deletions, insertions, N runs and mixed sites of an alignment."""
    start, end = alignment.start, alignment.end
    query = alignment.aligned[start:end]
    ref = reference.sequence[start:end]
    query_codes = BASE_CODE[query]
    substituted = np.flatnonzero((query_codes < 4) & (query != ref))
    deleted = np.flatnonzero(query == GAP)
    missing_at = np.flatnonzero(query == ord("N"))
    mixed = np.flatnonzero(~_ACGTN[query])
    return NucleotideCalls(
        substitutions=_substitution_calls(ref, query, substituted, start),
        deletions=tuple(f"{chr(ref[i])}{i + start + 1}-" for i in deleted.tolist()),
        insertions=tuple(f"{after + 1}:{text}" for after, text in alignment.insertions),
        missing=_runs(missing_at + start + 1),
        ambiguous=tuple(f"{chr(query[i])}{i + start + 1}" for i in mixed.tolist()),
        substitution_positions=substituted + start,
        missing_count=len(missing_at),
    )


def _substitution_calls(
    ref: npt.NDArray[np.uint8], query: npt.NDArray[np.uint8], at: npt.NDArray[np.intp], start: int
) -> tuple[str, ...]:
    return tuple(f"{chr(ref[i])}{i + start + 1}{chr(query[i])}" for i in at.tolist())


def _runs(positions: npt.NDArray[np.intp]) -> tuple[tuple[int, int], ...]:
    """Inclusive (first, last) runs of consecutive positions."""
    if not len(positions):
        return ()
    breaks = np.flatnonzero(np.diff(positions) != 1)
    firsts = np.concatenate(([positions[0]], positions[breaks + 1]))
    lasts = np.concatenate((positions[breaks], [positions[-1]]))
    return tuple(zip(firsts.tolist(), lasts.tolist(), strict=True))


@dataclass(frozen=True)
class CodingSequence:
    """A CDS ready for calling: reference indices of its bases in reading order, its protein."""

    name: str
    minus: bool
    indices: npt.NDArray[np.intp]  # 0-based reference positions, 5' to 3' on its strand
    where: npt.NDArray[np.intp]  # reference position -> index in the CDS, -1 outside
    protein: npt.NDArray[np.uint8]  # reference amino acids (ASCII)
    offset: int  # of its first base among all coding bases (see Coding)

    @property
    def codons(self) -> int:
        return len(self.protein)

    def insertions(self, insertions: tuple[tuple[int, str], ...]) -> list[tuple[int, str]]:
        """Insertions inside the CDS as (CDS index they precede, bases on the CDS strand)."""
        found = []
        indices, where = self.indices, self.where
        for after, text in insertions:
            if self.minus:
                j = int(where[after + 1]) if after + 1 < len(where) else -1
                text = reverse_complement(text)
                contiguous = 0 <= j < len(indices) - 1 and indices[j + 1] == after
            else:
                j = int(where[after])
                contiguous = 0 <= j < len(indices) - 1 and indices[j + 1] == after + 1
            if contiguous:
                found.append((j + 1, text.upper()))
        return found


@dataclass(frozen=True)
class Coding:
    """All coding sequences end to end, so that every codon of a genome translates in one
    array operation; per codon, its gene and number."""

    genes: tuple[CodingSequence, ...]
    indices: npt.NDArray[np.intp]
    minus: npt.NDArray[np.bool_] | None  # per base, when any gene is on the '-' strand
    base_gene: npt.NDArray[np.intp]
    codon_gene: npt.NDArray[np.intp]
    codon_number: npt.NDArray[np.intp]  # 0-based, within its gene
    protein: npt.NDArray[np.uint8]
    last: npt.NDArray[np.bool_]  # the last codon of its gene (where a stop belongs)


@lru_cache(maxsize=16)
def coding_sequences(reference: str, features: tuple[Feature, ...]) -> Coding:
    """The organism's coding sequences, by start, prepared for calling."""
    genes = []
    offset = 0
    for feature in sorted(features, key=lambda f: (f.start, f.name)):
        indices = np.concatenate([np.arange(s - 1, e) for s, e in feature.parts])
        minus = feature.strand == "-"
        if minus:
            indices = indices[::-1]
        where = np.full(len(reference), -1, dtype=np.intp)
        where[indices] = np.arange(len(indices))
        bases = "".join(reference[i] for i in indices.tolist())
        if minus:
            bases = reverse_complement(bases)[::-1]
        protein = CODON_TABLE[codon_indices(codes(bases))]
        genes.append(CodingSequence(feature.name, minus, indices, where, protein, offset))
        offset += len(indices)
    sizes = [gene.codons for gene in genes]
    codon_gene = np.repeat(np.arange(len(genes)), sizes)
    ends = np.cumsum(sizes)
    last = np.zeros(int(ends[-1]), dtype=bool)
    last[ends - 1] = True
    any_minus = any(gene.minus for gene in genes)
    return Coding(
        genes=tuple(genes),
        indices=np.concatenate([gene.indices for gene in genes]),
        minus=np.repeat([g.minus for g in genes], [len(g.indices) for g in genes])
        if any_minus
        else None,
        base_gene=np.repeat(np.arange(len(genes)), [len(g.indices) for g in genes]),
        codon_gene=codon_gene,
        codon_number=np.arange(len(codon_gene)) - np.repeat(ends - sizes, sizes),
        protein=np.concatenate([gene.protein for gene in genes]),
        last=last,
    )


def amino_acid_calls(coding: Coding, alignment: Alignment) -> AminoAcidCalls:
    """Amino-acid substitutions, deletions, insertions, frameshifts and premature stops."""
    calls = AminoAcidCalls()
    bases = alignment.aligned[coding.indices]
    if coding.minus is not None:
        bases = np.where(coding.minus, _COMPLEMENT[bases], bases)
    base_codes = BASE_CODE[bases]
    masked = np.zeros(len(coding.protein), dtype=bool)
    # Genes an indel touches are read codon by codon around it; the rest in one pass below.
    touched = set(coding.base_gene[bases == GAP].tolist())
    inserted = {}
    for number, gene in enumerate(coding.genes):
        found = gene.insertions(alignment.insertions)
        if found:
            inserted[number] = found
            touched.add(number)
    for number in sorted(touched):
        gene = coding.genes[number]
        span = slice(gene.offset, gene.offset + len(gene.indices))
        codons = slice(gene.offset // 3, gene.offset // 3 + gene.codons)
        _GeneCaller(
            gene, bases[span], base_codes[span], inserted.get(number, []), masked[codons], calls
        ).run()
    _point_calls(coding, base_codes, masked, calls)
    rank = {gene.name: i for i, gene in enumerate(coding.genes)}

    def order(call: str) -> tuple[int, int]:
        gene, rest = call.split(":", 1)
        return rank[gene], int(_NUMBER.search(rest).group())  # type: ignore[union-attr]

    for of_a_kind in (calls.substitutions, calls.deletions, calls.insertions, calls.stop_codons):
        of_a_kind.sort(key=order)
    return calls


def _point_calls(
    coding: Coding,
    base_codes: npt.NDArray[np.uint8],
    masked: npt.NDArray[np.bool_],
    calls: AminoAcidCalls,
) -> None:
    """Substitutions and premature stops of every codon no indel touched, in one pass."""
    amino = CODON_TABLE[codon_indices(base_codes)]
    protein = coding.protein
    called = (amino != UNKNOWN) & ~masked
    names = [gene.name for gene in coding.genes]
    gene, number = coding.codon_gene, coding.codon_number
    changed = np.flatnonzero(called & (amino != protein)).tolist()
    calls.substitutions.extend(
        f"{names[gene[c]]}:{chr(protein[c])}{number[c] + 1}{chr(amino[c])}" for c in changed
    )
    stops = np.flatnonzero(called & (amino == STOP) & (protein != STOP) & ~coding.last)
    calls.stop_codons.extend(f"{names[gene[c]]}:{number[c] + 1}" for c in stops.tolist())


class _GeneCaller:
    """Calls around the indels of one coding sequence; ``masked`` (a view) receives the codons
    they took care of, or silenced."""

    def __init__(
        self,
        cds: CodingSequence,
        bases: npt.NDArray[np.uint8],
        base_codes: npt.NDArray[np.uint8],
        insertions: list[tuple[int, str]],
        masked: npt.NDArray[np.bool_],
        calls: AminoAcidCalls,
    ) -> None:
        self.cds = cds
        self.calls = calls
        self.bases = bases
        self.codes = base_codes
        self.masked = masked
        self.insertions = insertions

    def name(self, codon: int) -> str:
        return f"{self.cds.name}:{chr(self.cds.protein[codon])}{codon + 1}"

    def run(self) -> None:
        events = self._events()
        shifted_from: int | None = None
        offset = 0
        for position, length, text in events:
            change = len(text) if text else -length
            if not text and (position == 0 or position + length == len(self.bases)):
                self._truncation(position, position + length)  # shifts no frame downstream
                continue
            if shifted_from is None:
                if change % 3 == 0:
                    self._in_frame(position, length, text)
                    continue
                shifted_from = position // 3  # the first codon read out of frame
                offset = change % 3
                continue
            offset = (offset + change) % 3
            if offset == 0:
                last = _last_codon(position, length, text)
                self._frameshift(shifted_from, last)
                shifted_from = None
        if shifted_from is not None:
            self._frameshift(shifted_from, self.cds.codons - 1)

    def _events(self) -> list[tuple[int, int, str]]:
        """Deletion runs (start, length, '') and insertions (index they precede, 0, bases)."""
        gaps = np.flatnonzero(self.bases == GAP)
        events = [(first, last - first + 1, "") for first, last in _runs(gaps)]
        events += [(before, 0, text) for before, text in self.insertions]
        return sorted(events)

    def _truncation(self, first: int, end: int) -> None:
        """A deletion reaching either end of the CDS: the codons it takes whole are deleted,
        the one it cuts is unknown."""
        whole = range(-(-first // 3), end // 3)
        self.masked[first // 3 : -(-end // 3)] = True
        self.calls.deletions.extend(f"{self.name(c)}-" for c in whole)

    def _frameshift(self, first: int, last: int) -> None:
        last = max(first, min(last, self.cds.codons - 1))
        self.masked[first : last + 1] = True
        self.calls.frameshifts.append(f"{self.cds.name}:{first + 1}-{last + 1}")

    def _in_frame(self, position: int, length: int, text: str) -> None:
        if text:
            self._insertion(position, text)
        else:
            self._deletion(position, position + length)

    def _deletion(self, first: int, end: int) -> None:
        """Codons first//3..(end-1)//3 lose end-first bases (a multiple of 3)."""
        first_codon, last_codon = first // 3, (end - 1) // 3
        self.masked[first_codon : last_codon + 1] = True
        deleted = list(range(first_codon, last_codon + 1))
        if first % 3:
            # A straddling deletion leaves one merged codon. As a peptide alignment would, it
            # stands for the reference amino acid it resembles most (BLOSUM62; among equals the
            # last, gaps going left): S:H69- S:V70- keep I68, S:G142D S:V143- ..., S:N211- S:L212I.
            merged = np.concatenate(
                (self.codes[first_codon * 3 : first], self.codes[end : last_codon * 3 + 3])
            )
            amino = translate_codes(merged)
            if amino == "X":
                deleted.pop()
            else:
                kept = max(
                    reversed(deleted), key=lambda c: similarity(chr(self.cds.protein[c]), amino)
                )
                deleted.remove(kept)
                if chr(self.cds.protein[kept]) != amino:
                    self.calls.substitutions.append(f"{self.name(kept)}{amino}")
                self._stop(kept, amino)
        self.calls.deletions.extend(f"{self.name(c)}-" for c in deleted)

    def _insertion(self, before: int, text: str) -> None:
        """Bases inserted before CDS index ``before`` (a multiple of 3 of them)."""
        codon, phase = divmod(before, 3)
        if not phase:
            peptide = translate_codes(codes(text))
            if "X" not in peptide:
                self.calls.insertions.append(f"{self.cds.name}:{codon}:{peptide}")
            return
        self.masked[codon] = True
        merged = np.concatenate(
            (self.codes[codon * 3 : before], codes(text), self.codes[before : codon * 3 + 3])
        )
        peptide = translate_codes(merged)
        if "X" in peptide:
            return
        # As a peptide alignment: the reference amino acid pairs with the end of the merged
        # peptide it resembles most (the last among equals, gaps going left).
        reference = chr(self.cds.protein[codon])
        if similarity(reference, peptide[-1]) >= similarity(reference, peptide[0]):
            after, inserted, paired = codon, peptide[:-1], peptide[-1]
        else:
            after, inserted, paired = codon + 1, peptide[1:], peptide[0]
        if paired != reference:
            self.calls.substitutions.append(f"{self.name(codon)}{paired}")
        self.calls.insertions.append(f"{self.cds.name}:{after}:{inserted}")

    def _stop(self, codon: int, amino: str) -> None:
        if amino == "*" and codon < self.cds.codons - 1 and self.cds.protein[codon] != STOP:
            self.calls.stop_codons.append(f"{self.cds.name}:{codon + 1}")


def _last_codon(position: int, length: int, text: str) -> int:
    """The last codon before the indel that restores the frame is back in frame."""
    return (position - 1) // 3 if text else (position + length - 1) // 3
