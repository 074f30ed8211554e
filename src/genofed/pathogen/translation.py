"""The standard genetic code over numpy arrays of base codes.

Bases are coded A=0, C=1, G=2, T=3 (:data:`BASE_CODE`); anything else (N, IUPAC ambiguity codes,
gaps, uncovered positions) is 4, and a codon holding one translates to ``X``, unknown, as
Nextclade does: an ambiguous codon never yields an amino-acid call.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.uint8]

# Codons in the order TCAG x TCAG x TCAG, the classic table's order.
_TABLE_TCAG = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
_TCAG = "TCAG"
UNKNOWN = ord("X")

BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _code, _base in enumerate("ACGT"):
    BASE_CODE[ord(_base)] = _code
    BASE_CODE[ord(_base.lower())] = _code

# Amino acid (ASCII) by codon index 16*b1 + 4*b2 + b3 in ACGT codes; index 64 is unknown.
CODON_TABLE = np.full(65, UNKNOWN, dtype=np.uint8)
for _i, _aa in enumerate(_TABLE_TCAG):
    _codon = _TCAG[_i // 16] + _TCAG[_i // 4 % 4] + _TCAG[_i % 4]
    _index = sum(4 ** (2 - j) * "ACGT".index(b) for j, b in enumerate(_codon))
    CODON_TABLE[_index] = ord(_aa)

_COMPLEMENT = bytes.maketrans(b"ACGTRYKMBDHVNacgtrykmbdhvn", b"TGCAYRMKVHDBNtgcayrmkvhdbn")


def codes(sequence: bytes | str) -> Codes:
    """Base codes of a sequence (upper or lower case)."""
    raw = sequence.encode("ascii") if isinstance(sequence, str) else sequence
    return BASE_CODE[np.frombuffer(raw, dtype=np.uint8)]


def codon_indices(base_codes: Codes) -> npt.NDArray[np.intp]:
    """Codon indices of consecutive triplets (a trailing partial codon is dropped); 64 where a
    codon holds anything but A, C, G, T."""
    whole = len(base_codes) // 3 * 3
    triplets = base_codes[:whole].reshape(-1, 3).astype(np.intp)
    index = triplets[:, 0] * 16 + triplets[:, 1] * 4 + triplets[:, 2]
    index[(triplets > 3).any(axis=1)] = 64
    return index


def translate_codes(base_codes: Codes) -> str:
    """The peptide of a run of base codes, ``X`` for unknown codons."""
    return CODON_TABLE[codon_indices(base_codes)].tobytes().decode("ascii")


def translate(sequence: str) -> str:
    """The peptide of a nucleotide sequence read in frame from its first base."""
    return translate_codes(codes(sequence))


def reverse_complement(sequence: str) -> str:
    """The other strand, read 5' to 3' (IUPAC codes complemented too)."""
    return sequence.translate(_COMPLEMENT)[::-1]


# BLOSUM62 (Henikoff & Henikoff 1992), the usual amino-acid similarity scores: which reference
# amino acid a merged codon stands for when an indel straddles codons.
_BLOSUM62_ORDER = "ARNDCQEGHILKMFPSTWYV"
_BLOSUM62_ROWS = """
 4 -1 -2 -2  0 -1 -1  0 -2 -1 -1 -1 -1 -2 -1  1  0 -3 -2  0
-1  5  0 -2 -3  1  0 -2  0 -3 -2  2 -1 -3 -2 -1 -1 -3 -2 -3
-2  0  6  1 -3  0  0  0  1 -3 -3  0 -2 -3 -2  1  0 -4 -2 -3
-2 -2  1  6 -3  0  2 -1 -1 -3 -4 -1 -3 -3 -1  0 -1 -4 -3 -3
 0 -3 -3 -3  9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1
-1  1  0  0 -3  5  2 -2  0 -3 -2  1  0 -3 -1  0 -1 -2 -1 -2
-1  0  0  2 -4  2  5 -2  0 -3 -3  1 -2 -3 -1  0 -1 -3 -2 -2
 0 -2  0 -1 -3 -2 -2  6 -2 -4 -4 -2 -3 -3 -2  0 -2 -2 -3 -3
-2  0  1 -1 -3  0  0 -2  8 -3 -3 -1 -2 -1 -2 -1 -2 -2  2 -3
-1 -3 -3 -3 -1 -3 -3 -4 -3  4  2 -3  1  0 -3 -2 -1 -3 -1  3
-1 -2 -3 -4 -1 -2 -3 -4 -3  2  4 -2  2  0 -3 -2 -1 -2 -1  1
-1  2  0 -1 -3  1  1 -2 -1 -3 -2  5 -1 -3 -1  0 -1 -3 -2 -2
-1 -1 -2 -3 -1  0 -2 -3 -2  1  2 -1  5  0 -2 -1 -1 -1 -1  1
-2 -3 -3 -3 -2 -3 -3 -3 -1  0  0 -3  0  6 -4 -2 -2  1  3 -1
-1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4  7 -1 -1 -4 -3 -2
 1 -1  1  0 -1  0  0  0 -1 -2 -2  0 -1 -2 -1  4  1 -3 -2 -2
 0 -1  0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1  1  5 -2 -2  0
-3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1  1 -4 -3 -2 11  2 -3
-2 -2 -2 -3 -2 -1 -2 -3  2 -1 -1 -2 -1  3 -3 -2 -2  2  7 -1
 0 -3 -3 -3 -1 -2 -2 -3 -3  3  1 -2  1 -1 -2 -2  0 -3 -1  4
"""
BLOSUM62 = {
    (a, b): int(score)
    for a, row in zip(_BLOSUM62_ORDER, _BLOSUM62_ROWS.split("\n")[1:-1], strict=True)
    for b, score in zip(_BLOSUM62_ORDER, row.split(), strict=True)
}


def similarity(a: str, b: str) -> int:
    """BLOSUM62 score of two amino acids; a stop matches only a stop (1), else -4."""
    if a == "*" or b == "*":
        return 1 if a == b else -4
    return BLOSUM62.get((a, b), -1)
