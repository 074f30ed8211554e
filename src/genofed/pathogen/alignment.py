"""Pairwise alignment of a genome to its organism's reference, in numpy.

Viral genomes of one species differ from their reference by a few substitutions per kilobase and
a handful of indels, so a full dynamic-programming alignment (30,000 x 30,000 cells) is wasted
work. Instead:

1. **Anchors.** Every k-mer occurring once in the reference is indexed (once per reference); the
   query's k-mers found there give (query, reference) anchor pairs.
2. **Chain.** Anchors on one diagonal (reference - query offset) form blocks; a small dynamic
   programme keeps the best colinear chain of blocks, which drops chance hits.
3. **Indels.** Between consecutive blocks on different diagonals lies one indel: its place is the
   split point minimising mismatches on either side (numpy cumulative sums). Among equally good
   places the leftmost wins, except that a codon-aligned one inside a coding sequence is
   preferred, as Nextclade does. Regions where one indel explains the data badly (several indels
   close together) are re-aligned by a small affine-gap dynamic programme.
4. **Ends.** The first and last blocks extend to the ends of the query without gaps, stopping
   where the sequence stops resembling the reference (an X-drop), so adapter or junk ends are
   clipped rather than called as mutations. Where an extension stops short of the query's end,
   an indel may lie close to it: the rest is aligned with gaps, and kept if it resembles the
   reference.

The result is the query laid on reference coordinates plus its insertions, from which
:mod:`~genofed.pathogen.mutations` reads every call with array operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from genofed.errors import GenofedError
from genofed.pathogen.translation import BASE_CODE

if TYPE_CHECKING:
    from genofed.pathogen.analysis import Analysis
    from genofed.pathogen.organisms import Organism

Bytes = npt.NDArray[np.uint8]

GAP = ord("-")
UNCOVERED = 0  # reference positions the query does not reach
# Anchors: k-mers mostly unique in a viral genome yet several per stretch between mutations,
# found through a direct table of 4**K entries (16 MiB) rather than a search per k-mer.
K = 11
QUERY_STEP = 3  # every third query k-mer is looked up: plenty, and a third of the work
# Chain
BLOCK_CHANGE_PENALTY = 8  # anchored bases a diagonal change must bring to be worth chaining
MAX_INSERTION = 1000
MAX_DELETION = 5000
MAX_OVERLAP = 48  # chained blocks may overlap by a repeat around an indel, not more
# Indels
WINDOW = 64  # how far either side of a block boundary an indel may move
MESSY_MISMATCHES = 3  # mismatches left by the best single indel that call for the DP
DP_MAX_CELLS = 40_000  # pure Python: a few ms at most, and rare
DP_BUDGET = 150_000  # per query: a far too divergent one must not take seconds
DP_MARGIN = 12
END_DP_MAX = 48  # query bases beyond a gapless end worth aligning with gaps
END_DP_SLACK = 24  # reference bases beyond them (a deletion that long, at most)
END_DP_MIN_PAIRS = 6  # aligned bases an end must have to be kept
# Ends and verdict
END_XDROP = 12  # score drop (match +1, mismatch -2) that ends an end's extension
MIN_BASES = 50
MIN_IDENTITY = 0.7
_IUPAC = np.zeros(256, dtype=bool)
_IUPAC[list(b"ACGTRYSWKMBDHVN")] = True
_REARRANGED = (
    "the sequence is rearranged relative to the reference (duplicated, inverted or moved "
    "segments) beyond what mutation calls describe; check the assembly"
)


class AlignmentError(GenofedError):
    """A sequence cannot be aligned to the organism's reference (another virus, too short, ...);
    the message says what was found and what to check."""


@dataclass(frozen=True)
class Reference:
    """A reference ready for alignment: its bytes, base codes, k-mer index and coding frame."""

    sequence: Bytes  # upper-case ASCII
    codes: Bytes
    table: npt.NDArray[np.int32]  # k-mer -> reference position + 1 if it occurs once, else 0
    frame: npt.NDArray[np.int8]  # codon position (0, 1, 2) of each base in a '+' CDS, else -1

    @property
    def length(self) -> int:
        return len(self.sequence)


@dataclass(frozen=True)
class Alignment:
    """A query on reference coordinates (0-based, ``end`` exclusive).

    ``aligned`` holds, per reference position, the query's base (upper-case ASCII), ``-`` for a
    deletion, or 0 outside ``start:end``; ``insertions`` are (reference index of the base before,
    inserted bases), by position.
    """

    aligned: Bytes
    start: int
    end: int
    insertions: tuple[tuple[int, str], ...]
    clipped: int  # query bases left unaligned at the ends


@lru_cache(maxsize=8)
def prepare(sequence: str, coding: tuple[tuple[tuple[int, int], ...], ...] = ()) -> Reference:
    """Index a reference (once: cached); ``coding`` gives the 1-based parts of its '+' strand
    CDSs, where codon-aligned indel places are preferred."""
    raw = np.frombuffer(sequence.upper().encode("ascii"), dtype=np.uint8)
    base_codes = BASE_CODE[raw]
    values, good = kmers(base_codes)
    positions = np.flatnonzero(good)
    values = values[good]
    order = np.argsort(values, kind="stable")
    values, positions = values[order], positions[order]
    # Keep k-mers occurring once: a repeated one cannot say where a query k-mer belongs.
    repeated = np.zeros(len(values), dtype=bool)
    same = values[1:] == values[:-1]
    repeated[1:] |= same
    repeated[:-1] |= same
    frame = np.full(len(raw), -1, dtype=np.int8)
    for parts in coding:
        offset = 0
        for start, end in parts:
            span = np.arange(end - start + 1)
            frame[start - 1 : end] = np.where(
                frame[start - 1 : end] < 0, (span + offset) % 3, frame[start - 1 : end]
            )
            offset += end - start + 1
    table = np.zeros(4**K, dtype=np.int32)
    table[values[~repeated]] = positions[~repeated] + 1
    return Reference(raw, base_codes, table, frame)


def kmers(base_codes: Bytes, step: int = 1) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
    """The k-mers starting every ``step`` positions, packed in 2 bits per base, and whether
    each holds only A, C, G, T."""
    count = len(base_codes) - K + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=bool)
    # Contiguous shifts over every position, then every step-th: faster than strided ones.
    two_bits = (base_codes & 3).astype(np.uint32)
    values = two_bits[:count].copy()
    for j in range(1, K):
        values <<= 2
        values |= two_bits[j : j + count]
    bad = np.concatenate(([0], np.cumsum(base_codes > 3)))
    return values[::step], (bad[K : K + count : step] - bad[0:count:step]) == 0


def align(reference: Reference, query: str) -> Alignment:
    """Align ``query`` (any case) to ``reference``; :class:`AlignmentError` if it does not."""
    raw = np.frombuffer(query.upper().encode("ascii", "replace"), dtype=np.uint8)
    foreign = np.flatnonzero(~_IUPAC[raw])
    if len(foreign):
        at = int(foreign[0])
        raise AlignmentError(
            f"the sequence holds {query[at]!r} at position {at + 1}, not an IUPAC nucleotide "
            "code; submit bases (A, C, G, T), N and ambiguity codes only, without gaps"
        )
    query_codes = BASE_CODE[raw]
    bases = int(np.count_nonzero(query_codes < 4))
    if bases < MIN_BASES:
        what = "is empty" if len(raw) == 0 else f"has only {bases} A/C/G/T bases"
        raise AlignmentError(
            f"the sequence {what}; submit a genome with at least {MIN_BASES} called bases"
        )
    blocks = _chain(reference, query_codes)
    try:
        if not blocks:
            raise AlignmentError(
                "the sequence shares no stretch with the reference; check that it is this "
                "organism's genome"
            )
        alignment = _Aligner(reference, raw, query_codes, blocks).run()
        _check(reference, alignment, bases)
    except AlignmentError as error:
        if _reverse_strand(reference, query_codes):
            raise AlignmentError(
                "the sequence is the reverse complement of the genome; submit it in the "
                "reference's orientation"
            ) from error
        raise
    return alignment


def _reverse_strand(reference: Reference, query_codes: Bytes) -> bool:
    """Whether the query's other strand aligns: a common mistake worth naming."""
    complement = np.where(query_codes < 4, 3 - query_codes, query_codes)[::-1]
    blocks = _chain(reference, np.ascontiguousarray(complement, dtype=np.uint8))
    return sum(q1 - q0 for q0, q1, _ in blocks) > len(query_codes) / 2


def _chain(reference: Reference, query_codes: Bytes) -> list[list[int]]:
    """The best colinear chain of anchor blocks, as [query start, query end, diagonal]."""
    values, good = kmers(query_codes, QUERY_STEP)
    if not len(values):
        return []
    found = reference.table[values]
    hits = np.flatnonzero(good & (found > 0))
    if not len(hits):
        return []
    qpos = hits * QUERY_STEP
    diagonal = found[hits].astype(np.int64) - 1 - qpos
    breaks = np.flatnonzero(np.diff(diagonal)) + 1
    firsts = np.concatenate(([0], breaks))
    lasts = np.concatenate((breaks - 1, [len(qpos) - 1]))
    groups = [
        (int(qpos[f]), int(qpos[last]) + K, int(diagonal[f]), int(last - f + 1))
        for f, last in zip(firsts, lasts, strict=True)
    ]
    if len(groups) > 2000:  # a noisy query: chance hits dominate; keep runs of anchors only
        groups = [g for g in groups if g[3] > 1]
    return _best_chain(groups)


def _best_chain(groups: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """Colinear chaining: anchors count, each diagonal change costs a penalty."""
    count = len(groups)
    score = [0.0] * count
    back = [-1] * count
    for i, (q0, _q1, d, n) in enumerate(groups):
        best, link = float(n * QUERY_STEP), -1
        r0 = q0 + d
        for j in range(i - 1, max(-1, i - 200), -1):
            pq0, pq1, pd, _pn = groups[j]
            if pq0 > q0 or pq0 + pd > r0 or max(pq1 - q0, pq1 + pd - r0) > MAX_OVERLAP:
                continue
            change = d - pd
            if change > MAX_DELETION or -change > MAX_INSERTION:
                continue
            candidate = score[j] + n * QUERY_STEP - (BLOCK_CHANGE_PENALTY if change else 0)
            if candidate > best:
                best, link = candidate, j
        score[i], back[i] = best, link
    i = max(range(count), key=score.__getitem__)
    # Blocks on one diagonal stay apart when chance hits were dropped between them: what lies
    # between may hide two indels that cancel out, which the join will look at.
    chain: list[list[int]] = []
    while i >= 0:
        q0, q1, d, _n = groups[i]
        chain.append([q0, q1, d])
        i = back[i]
    chain.reverse()
    return chain


class _Aligner:
    """Turns a chain of blocks into an :class:`Alignment`."""

    def __init__(
        self, reference: Reference, raw: Bytes, query_codes: Bytes, blocks: list[list[int]]
    ) -> None:
        self.ref = reference
        self.raw = raw
        self.q = query_codes
        self.blocks = blocks
        # (query start, query end, diagonal) pieces and insertions, built left to right.
        self.pieces: list[tuple[int, int, int]] = []
        self.insertions: list[tuple[int, str]] = []
        self.budget = DP_BUDGET  # cells of dynamic programming left for this query

    def run(self) -> Alignment:
        blocks = self.blocks
        blocks[0][0] = self._extend_left(blocks[0][0], blocks[0][2])
        blocks[-1][1] = self._extend_right(blocks[-1][1], blocks[-1][2])
        self._align_head(blocks[0][0], blocks[0][2])
        current = blocks[0]
        for following in blocks[1:]:
            self._join(current, following)
            current = following
        self._align_tail(current)
        return self._build()

    def _mismatches(self, q0: int, q1: int, diagonal: int) -> npt.NDArray[np.int64]:
        """1 where query bases q0..q1 differ from the reference on ``diagonal``: N and ambiguity
        codes count 0 (they agree with anything), positions beyond the reference 1."""
        length = self.ref.length
        positions = np.arange(q0 + diagonal, q1 + diagonal)
        inside = (positions >= 0) & (positions < length)
        ref = self.ref.codes[np.clip(positions, 0, length - 1)]
        query = self.q[q0:q1]
        return np.where(inside, (query < 4) & (query != ref), 1).astype(np.int64)

    def _join(self, left: list[int], right: list[int]) -> None:
        """Place the indel between two blocks; ``left`` is final afterwards."""
        d_left, d_right = left[2], right[2]
        change = d_right - d_left
        # Same diagonal (chance hits were dropped between): one block, unless what lies
        # between differs too much to be substitutions alone.
        if (
            not change
            and right[0] > left[1]
            and self._mismatches(left[1], right[0], d_left).sum() < MESSY_MISMATCHES
        ):
            right[0] = left[0]
            return
        inserted = max(0, -change)
        lo = max(left[0], min(left[1], right[0]) - WINDOW)
        hi = min(right[1], max(left[1], right[0]) + WINDOW)
        hi = min(len(self.q), max(hi, lo + inserted))
        if hi - lo < inserted:
            raise AlignmentError(_REARRANGED)
        left_mm = np.concatenate(([0], np.cumsum(self._mismatches(lo, hi, d_left))))
        right_mm = np.concatenate(([0], np.cumsum(self._mismatches(lo, hi, d_right))))
        splits = np.arange(lo, hi - inserted + 1)
        cost = left_mm[splits - lo] + (right_mm[-1] - right_mm[splits + inserted - lo])
        best = int(cost.min())
        ties = splits[cost == best]
        split = int(ties[0])
        if change % 3 == 0:
            in_frame = ties[self.ref.frame[np.clip(ties + d_left, 0, self.ref.length - 1)] == 0]
            if len(in_frame):
                split = int(in_frame[0])
        # Mismatches a single indel leaves between the blocks' anchors call for the DP.
        inner_lo = min(max(min(left[1], right[0]), lo), hi)
        inner_hi = min(max(left[1], right[0], inner_lo), hi)
        flanks = left_mm[inner_lo - lo] + right_mm[-1] - right_mm[inner_hi - lo]
        if best - flanks >= MESSY_MISMATCHES and self._realign(left, right, inner_lo, inner_hi):
            return
        self.pieces.append((left[0], split, d_left))
        if inserted:
            text = self.raw[split : split + inserted].tobytes().decode("ascii")
            self.insertions.append((split + d_left - 1, text))
        right[0] = split + inserted

    def _realign(self, left: list[int], right: list[int], lo: int, hi: int) -> bool:
        """Align the query between two blocks (lo..hi and a margin) to its reference span by
        dynamic programming; False if too big."""
        lo = max(left[0], lo - DP_MARGIN)
        hi = min(right[1], hi + DP_MARGIN)
        r0, r1 = lo + left[2], hi + right[2]
        cells = (hi - lo) * (r1 - r0)
        if r0 < 0 or r1 > self.ref.length or r1 < r0 or cells > min(DP_MAX_CELLS, self.budget):
            return False
        self.budget -= cells
        ops = affine_alignment(self.q[lo:hi], self.ref.codes[r0:r1])
        self.pieces.append((left[0], lo, left[2]))
        self._apply(ops, lo, r0)
        right[0] = hi
        return True

    def _align_tail(self, last: list[int]) -> None:
        """Add the last block. Where its gapless extension stopped short of the query's end, an
        indel may lie close to the end: the rest of the query is aligned with gaps, and kept if
        it resembles the reference (else it stays clipped)."""
        q0, q1, diagonal = last
        r0 = q1 + diagonal
        rest = len(self.q) - q1
        ops: list[tuple[str, int]] = []
        if 0 < rest <= END_DP_MAX and r0 < self.ref.length:
            r1 = min(self.ref.length, r0 + rest + END_DP_SLACK)
            ops = _trimmed(affine_alignment(self.q[q1:], self.ref.codes[r0:r1], True))
            if not self._resembles(ops, q1, r0):
                ops = []
        # The gapless extension may have run past the best place of the indel: move it left.
        self._apply(
            self._left_normalised([("M", q1 - q0), *ops], q0, q0 + diagonal), q0, q0 + diagonal
        )

    def _align_head(self, q0: int, diagonal: int) -> None:
        """As :meth:`_align_tail`, before the first block: the same, on reversed sequences."""
        r1 = q0 + diagonal
        if not 0 < q0 <= END_DP_MAX or r1 <= 0:
            return
        r0 = max(0, r1 - q0 - END_DP_SLACK)
        reversed_ops = affine_alignment(
            self.q[q0 - 1 :: -1], self.ref.codes[r1 - 1 : None if r0 == 0 else r0 - 1 : -1], True
        )
        ops = _trimmed(reversed_ops)[::-1]
        used_q = sum(n for op, n in ops if op != "D")
        used_r = sum(n for op, n in ops if op != "I")
        if self._resembles(ops, q0 - used_q, r1 - used_r):
            ops = self._left_normalised(ops, q0 - used_q, r1 - used_r)
            self._apply(ops, q0 - used_q, r1 - used_r, first=True)

    def _left_normalised(
        self, ops: list[tuple[str, int]], qpos: int, rpos: int
    ) -> list[tuple[str, int]]:
        """``ops`` (from qpos, rpos) with each gap moved to its leftmost equivalent place."""
        kinds = [op for op, _ in ops]
        lengths = [length for _, length in ops]
        q, r = self.q, self.ref.codes
        i = 0
        while i < len(kinds):
            kind, length = kinds[i], lengths[i]
            # A gap moves left by one while the matched base before it equals its last base.
            while kind != "M" and i > 0 and kinds[i - 1] == "M" and lengths[i - 1] > 1:
                last = q[qpos + length - 1] if kind == "I" else r[rpos + length - 1]
                if not q[qpos - 1] == r[rpos - 1] == last:
                    break
                lengths[i - 1] -= 1
                if i + 1 < len(kinds) and kinds[i + 1] == "M":
                    lengths[i + 1] += 1
                else:
                    kinds.insert(i + 1, "M")
                    lengths.insert(i + 1, 1)
                qpos, rpos = qpos - 1, rpos - 1
            qpos += length if kind != "D" else 0
            rpos += length if kind != "I" else 0
            i += 1
        return [(kind, length) for kind, length in zip(kinds, lengths, strict=True) if length]

    def _resembles(self, ops: list[tuple[str, int]], qpos: int, rpos: int) -> bool:
        """Whether the aligned pairs of ``ops`` (from qpos, rpos) cover most of the query's
        stretch and are at least 90% identical: a junk end has no such alignment."""
        same = pairs = 0
        for op, length in ops:
            if op == "M":
                query = self.q[qpos : qpos + length]
                ref = self.ref.codes[rpos : rpos + length]
                called = query < 4
                pairs += int(np.count_nonzero(called))
                same += int(np.count_nonzero(called & (query == ref)))
            qpos += length if op != "D" else 0
            rpos += length if op != "I" else 0
        stretch = sum(length for op, length in ops if op != "D")
        return pairs >= max(END_DP_MIN_PAIRS, 0.75 * stretch) and same >= 0.9 * pairs

    def _apply(self, ops: list[tuple[str, int]], qpos: int, rpos: int, first: bool = False) -> None:
        """Add the pieces and insertions of ``ops`` (from qpos, rpos) to the alignment; at the
        start of it when ``first``."""
        pieces: list[tuple[int, int, int]] = []
        for op, length in ops:
            if op == "M":
                pieces.append((qpos, qpos + length, rpos - qpos))
                qpos += length
                rpos += length
            elif op == "I":
                text = self.raw[qpos : qpos + length].tobytes().decode("ascii")
                self.insertions.append((rpos - 1, text))
                qpos += length
            else:
                rpos += length
        self.pieces = pieces + self.pieces if first else self.pieces + pieces

    def _extend_left(self, q0: int, diagonal: int) -> int:
        """How far left the first block reaches without gaps."""
        stop = max(0, -diagonal)
        if q0 <= stop:
            return q0
        return q0 - _reach(self._end_scores(stop, q0, diagonal)[::-1])

    def _extend_right(self, q1: int, diagonal: int) -> int:
        stop = min(len(self.q), self.ref.length - diagonal)
        if q1 >= stop:
            return q1
        return q1 + _reach(self._end_scores(q1, stop, diagonal))

    def _end_scores(self, q0: int, q1: int, diagonal: int) -> npt.NDArray[np.int64]:
        query = self.q[q0:q1]
        ref = self.ref.codes[q0 + diagonal : q1 + diagonal]
        return np.where(query > 3, 0, np.where(query == ref, 1, -2)).astype(np.int64)

    def _build(self) -> Alignment:
        aligned = np.zeros(self.ref.length, dtype=np.uint8)
        pieces = [p for p in self.pieces if p[1] > p[0]]
        for (_a0, a1, da), (b0, _b1, db) in pairwise(pieces):
            if b0 < a1 or b0 + db < a1 + da:
                raise AlignmentError(_REARRANGED)
        for q0, q1, d in pieces:
            aligned[q0 + d : q1 + d] = self.raw[q0:q1]
        for (_a0, a1, da), (b0, _b1, db) in pairwise(pieces):
            if b0 + db > a1 + da:
                aligned[a1 + da : b0 + db] = GAP
        start = pieces[0][0] + pieces[0][2]
        end = pieces[-1][1] + pieces[-1][2]
        clipped = pieces[0][0] + len(self.q) - pieces[-1][1]
        # Insertions at one place (two joins may meet there) are one, in the query's order.
        inserted: dict[int, str] = {}
        for after, text in self.insertions:
            if start <= after < end - 1:
                inserted[after] = inserted.get(after, "") + text
        insertions = tuple(sorted(inserted.items()))
        return Alignment(aligned, start, end, insertions, clipped)


def _reach(scores: npt.NDArray[np.int64]) -> int:
    """How many of ``scores`` (outward from a block) to keep: up to the best running total
    (the furthest of equals, so N runs at the ends stay aligned) before it drops by X."""
    total = np.cumsum(scores)
    peak = np.maximum.accumulate(np.maximum(total, 0))
    dropped = np.flatnonzero(peak - total > END_XDROP)
    limit = int(dropped[0]) if len(dropped) else len(scores)
    if limit == 0:
        return 0
    window = total[:limit]
    top = int(window.max())
    if top < 0:
        return 0
    return int(np.flatnonzero(window == top)[-1]) + 1


def _check(reference: Reference, alignment: Alignment, bases: int) -> None:
    """Refuse alignments too partial or too divergent to call mutations from."""
    covered = alignment.aligned[alignment.start : alignment.end]
    ref = reference.sequence[alignment.start : alignment.end]
    called = BASE_CODE[covered] < 4
    aligned_bases = int(np.count_nonzero(called))
    inserted = sum(len(text) for _, text in alignment.insertions)
    if aligned_bases + inserted < bases / 2:
        raise AlignmentError(
            f"only {aligned_bases} of the sequence's {bases} bases align to the reference; "
            "check that it is this organism's genome"
        )
    identity = np.count_nonzero(covered[called] == ref[called]) / max(aligned_bases, 1)
    if identity < MIN_IDENTITY:
        raise AlignmentError(
            f"the sequence is only {identity:.0%} identical to the reference where it aligns; "
            "check that it is this organism's genome"
        )


def affine_alignment(
    query: Bytes, reference: Bytes, free_reference_end: bool = False
) -> list[tuple[str, int]]:
    """Global alignment with affine gaps (Gotoh) of two short code arrays, as run-length
    operations M (match or mismatch), I (query only), D (reference only). With
    ``free_reference_end`` the reference may end unaligned (the query ends the alignment).

    Scores as Nextclade's defaults: match +3, mismatch -1, gap open -6, extend -1 (N and
    ambiguity codes score 0 against anything). Pure Python: only messy stretches come here.
    """
    match, mismatch, gap_open, gap_extend = 3, -1, -6, -1
    rows, cols = len(query), len(reference)
    low = -(10**9)
    # M: ends in a pair; X: ends in a query-only column (insertion); Y: reference-only.
    best_m = [[low] * (cols + 1) for _ in range(rows + 1)]
    best_x = [[low] * (cols + 1) for _ in range(rows + 1)]
    best_y = [[low] * (cols + 1) for _ in range(rows + 1)]
    best_m[0][0] = 0
    for i in range(1, rows + 1):
        best_x[i][0] = gap_open + (i - 1) * gap_extend
    for j in range(1, cols + 1):
        best_y[0][j] = gap_open + (j - 1) * gap_extend
    q = query.tolist()
    r = reference.tolist()
    for i in range(1, rows + 1):
        qi = q[i - 1]
        m_prev, x_prev, y_prev = best_m[i - 1], best_x[i - 1], best_y[i - 1]
        m_row, x_row, y_row = best_m[i], best_x[i], best_y[i]
        # The best of the previous row's states, per column, in one C-level pass.
        best_prev = list(map(max, m_prev, x_prev, y_prev))
        for j in range(1, cols + 1):
            pair = 0 if qi > 3 else (match if qi == r[j - 1] else mismatch)
            m_row[j] = best_prev[j - 1] + pair
            opened, extended = max(m_prev[j], y_prev[j]) + gap_open, x_prev[j] + gap_extend
            x_row[j] = opened if opened > extended else extended
            opened = max(m_row[j - 1], x_row[j - 1]) + gap_open
            extended = y_row[j - 1] + gap_extend
            y_row[j] = opened if opened > extended else extended
    if free_reference_end:  # the best cell of the last row, the shortest among equals
        ends = [max(best_m[rows][j], best_x[rows][j], best_y[rows][j]) for j in range(cols + 1)]
        cols = ends.index(max(ends))
    return _traceback(best_m, best_x, best_y, rows, cols, (gap_open, gap_extend), q, r)


def _traceback(
    best_m: list[list[int]],
    best_x: list[list[int]],
    best_y: list[list[int]],
    i: int,
    j: int,
    gaps: tuple[int, int],
    q: list[int],
    r: list[int],
) -> list[tuple[str, int]]:
    gap_open, gap_extend = gaps
    tables = {"M": best_m, "I": best_x, "D": best_y}
    state = max(tables, key=lambda s: tables[s][i][j])
    ops: list[str] = []
    while i > 0 or j > 0:
        ops.append(state)
        if state == "M":
            pair = 0 if q[i - 1] > 3 else (3 if q[i - 1] == r[j - 1] else -1)
            target = best_m[i][j] - pair
            i, j = i - 1, j - 1
            state = next(s for s in ("M", "I", "D") if tables[s][i][j] == target)
        elif state == "I":
            value = best_x[i][j]
            i -= 1
            state = (
                "I"
                if i > 0 and best_x[i][j] + gap_extend == value
                else _opened(tables, i, j, value - gap_open)
            )
        else:
            value = best_y[i][j]
            j -= 1
            state = (
                "D"
                if j > 0 and best_y[i][j] + gap_extend == value
                else _opened(tables, i, j, value - gap_open)
            )
    ops.reverse()
    runs: list[tuple[str, int]] = []
    for op in ops:
        if runs and runs[-1][0] == op:
            runs[-1] = (op, runs[-1][1] + 1)
        else:
            runs.append((op, 1))
    return runs


def _opened(tables: dict[str, list[list[int]]], i: int, j: int, target: int) -> str:
    return next((s for s in ("M", "I", "D") if tables[s][i][j] == target), "M")


def aligned_sequence(organism: Organism, analysis: Analysis) -> str:
    """The genome laid on the reference, rebuilt from its analysis: reference length, ``-`` for
    deletions and uncovered ends, ``N`` for missing data, ambiguity codes in place, insertions
    dropped (as Nextclade's aligned FASTA). Needs no stored alignment."""
    bases = bytearray(organism.reference.upper().encode("ascii"))
    for call in analysis.substitutions:
        bases[int(call[1:-1]) - 1] = ord(call[-1])
    for call in analysis.deletions:
        bases[int(call[1:-1]) - 1] = GAP
    for first, last in analysis.missing:
        bases[first - 1 : last] = b"N" * (last - first + 1)
    for call in analysis.ambiguous:
        bases[int(call[1:]) - 1] = ord(call[0])
    start, end = analysis.alignment_start - 1, analysis.alignment_end
    bases[:start] = b"-" * start
    bases[end:] = b"-" * (len(bases) - end)
    return bases.decode("ascii")


def _trimmed(ops: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Operations without trailing gaps: an end's unaligned query bases are clipped."""
    while ops and ops[-1][0] != "M":
        ops = ops[:-1]
    return ops
