"""Fast reading of multi-sample VCF and BCF files into per-allele counts and carrier sets.

A VCF of 2,504 samples holds about 10 kB of text per record, nearly all of it genotypes; reading
tens of thousands of records a second leaves no time to look at samples one by one in Python.
So the work is shaped for numpy and for both cores:

- BGZF blocks are inflated in a thread pool (zlib releases the GIL), and batches of whole lines
  (whole records for BCF) are parsed in the same pool (numpy releases it in its loops);
- a record whose FORMAT is ``GT`` alone and whose every sample is ``a|b`` or ``a/b`` with
  one-character alleles (``.`` included) has its samples at a stride of exactly 4 bytes: a batch of
  such records is copied into one (records, samples, 4) byte matrix and decoded by a few passes;
- other records whose GT comes first (more FORMAT fields, haploid and mixed calls) are read
  batch-wide from the positions of their tabs; what that cannot read (alleles above 9, GT not
  first, a broken line) is split as text, which names the exact problem when a line is wrong;
- BCF is decoded natively (its GT is a fixed-width integer vector per sample), so reading BCF
  needs neither pysam nor htslib at run time.

Genotypes become codes, two per sample: the allele index (0 = REF), :data:`MISSING` for ``.``, or
:data:`ABSENT` for the second allele of a haploid call. From them, per ALT allele: AC (copies of
the allele), AN (called alleles of the record), hom (samples with two copies; a haploid call is
hemizygous, not homozygous, as bcftools counts) and the carriers (samples with at least one
copy), as a serialized roaring bitmap of sample numbers. Alleles no sample carries are left out:
an indexed allele exists in the dataset. Sites-only files (no samples) take AC and AN from INFO.

Positions are 0-based, half-open: ``start = POS - 1``; ``end = start + len(REF)``, or the INFO
``END`` (and else ``SVLEN``) of symbolic alleles, as htslib computes ``rlen``.
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from genofed.errors import GenofedError

MISSING: Final = 254  # a '.' allele
ABSENT: Final = 255  # the second allele of a haploid call
MAX_ALLELE: Final = 253
BATCH_BYTES: Final = 4 << 20  # uncompressed bytes per parse job: many records, bounded memory
READ_SIZE: Final = 1 << 20
MAX_HEADER: Final = 256 << 20  # a header longer than this is a file without one
DEFAULT_THREADS: Final = 2

Codes = npt.NDArray[np.uint8]
T = TypeVar("T")

_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_SKIPPED_ALTS = frozenset({"*", ".", "<*>", "<NON_REF>", "<X>"})
_SV_KINDS = frozenset({"DEL", "DUP", "INS", "INV", "CNV", "BND"})
_GT_SEPARATORS = re.compile(rb"[|/]")
_TAB, _NEWLINE, _COLON, _PIPE, _SLASH, _ZERO = 9, 10, 58, 124, 47, 48
# a sample field of the fast path, read as a little-endian uint32 with the allele bytes masked
_PHASED: Final = (_PIPE << 8) | (_TAB << 24)
_UNPHASED: Final = (_SLASH << 8) | (_TAB << 24)


class Readable(Protocol):
    """What the reader reads from: a binary file, or any object with ``read(size)``."""

    def read(self, size: int = ..., /) -> bytes: ...


class VariantFileError(GenofedError):
    """A VCF or BCF file that cannot be read: the message names the file, the line (or record)
    and what to fix."""


class ParsedAllele(NamedTuple):
    """One ALT allele of one record, counted over the file's samples."""

    chrom: str  # normalized: no 'chr', MT for the mitochondrion
    start: int  # 0-based
    end: int  # 0-based, exclusive
    ref: str
    alt: str
    variant_type: str
    ac: int
    an: int
    hom: int
    carriers: bytes  # a serialized roaring BitMap of sample numbers


@dataclass(frozen=True)
class VariantHeader:
    """What the header says: the format, the sample columns, contigs and the assembly."""

    kind: str  # "vcf" or "bcf"
    samples: tuple[str, ...]
    contigs: Mapping[str, int | None]  # as named in the file → length
    assembly: str | None  # GRCh37 or GRCh38 when the header tells (contig lengths, reference)


@dataclass
class AlleleBatch:
    """The alleles of a batch of consecutive records."""

    alleles: list[ParsedAllele]
    records: int


# -- chromosome and assembly names ---------------------------------------------------------------

_REFSEQ = re.compile(r"^NC_0+(\d+)\.\d+$")
_MITO = frozenset({"M", "MT", "CHRM", "CHRMT"})


def normalize_chrom(name: str) -> str:
    """A chromosome as the index keeps it: no ``chr`` prefix, X/Y upper-case, ``M`` → ``MT``,
    RefSeq accessions of the primary chromosomes (``NC_000001.11``) → their number.

    VCFs of the same assembly name chromosomes with and without ``chr``; queries do too.
    """
    text = name.strip()
    upper = text.upper()
    if upper in _MITO or upper == "NC_012920.1":
        return "MT"
    refseq = _REFSEQ.match(upper)
    if refseq is not None:
        number = int(refseq.group(1))
        if 1 <= number <= 24:
            return {23: "X", 24: "Y"}.get(number, str(number))
    if upper.startswith("CHR"):
        text = text[3:]
        upper = upper[3:]
    if upper in ("X", "Y"):
        return upper
    return text


# Lengths of the primary chromosomes: a header's ##contig lines tell the assembly apart.
_LENGTHS: Final[dict[str, dict[str, int]]] = {
    "GRCh37": {
        "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260,
        "6": 171115067, "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747,
        "11": 135006516, "12": 133851895, "13": 115169878, "14": 107349540, "15": 102531392,
        "16": 90354753, "17": 81195210, "18": 78077248, "19": 59128983, "20": 63025520,
        "21": 48129895, "22": 51304566, "X": 155270560, "Y": 59373566,
    },
    "GRCh38": {
        "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259,
        "6": 170805979, "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422,
        "11": 135086622, "12": 133275309, "13": 114364328, "14": 107043718, "15": 101991189,
        "16": 90338345, "17": 83257441, "18": 80373285, "19": 58617616, "20": 64444167,
        "21": 46709983, "22": 50818468, "X": 156040895, "Y": 57227415,
    },
}  # fmt: skip
_ASSEMBLY_NAMES: Final = (
    ("GRCh38", re.compile(r"grch38|hg38|hs38|b38", re.I)),
    ("GRCh37", re.compile(r"grch37|hg19|hs37|b37|g1k_v37|hs37d5", re.I)),
)


def normalize_assembly(name: str) -> str | None:
    """``GRCh37`` or ``GRCh38`` for the usual names of either (hg19, b37, hg38, ...), else None."""
    for assembly, pattern in _ASSEMBLY_NAMES:
        if pattern.search(name):
            return assembly
    return None


def infer_assembly(contigs: Mapping[str, int | None], hints: Sequence[str]) -> str | None:
    """The assembly a header's contig lengths prove, else the one its reference names, else
    None. Lengths win: a file named after one assembly may hold positions of the other."""
    votes = set()
    for name, length in contigs.items():
        chrom = normalize_chrom(name)
        for assembly, lengths in _LENGTHS.items():
            if length is not None and lengths.get(chrom) == length:
                votes.add(assembly)
    if len(votes) == 1:
        return votes.pop()
    named = {found for hint in hints if (found := normalize_assembly(hint)) is not None}
    return named.pop() if len(named) == 1 and not votes else None


# -- variant types and ends ------------------------------------------------------------------------


def classify(
    ref: str, alt: str, start: int, info_end: int | None, svlen: int | None
) -> tuple[str, int]:
    """The variant type and the 0-based exclusive end of one ALT allele.

    Types: SNP, MNP, INS, DEL, INDEL for sequence alleles; the SV kind of a symbolic allele
    (``<DEL>`` → DEL, ``<DUP:TANDEM>`` → DUP, ...); BND for breakends.
    """
    end = start + len(ref)
    if alt.startswith("<"):
        kind = alt[1:-1].split(":", 1)[0].upper()
        if info_end is not None and info_end > start:
            end = info_end
        elif svlen is not None and kind != "INS":
            end = start + 1 + abs(svlen) if len(ref) == 1 else start + abs(svlen)
        return (kind if kind in _SV_KINDS else kind or "SV"), end
    if "[" in alt or "]" in alt or (len(alt) > 1 and (alt[0] == "." or alt[-1] == ".")):
        return "BND", end
    if len(ref) == len(alt):
        return ("SNP" if len(ref) == 1 else "MNP"), end
    if len(alt) > len(ref) and (alt.startswith(ref) or alt.endswith(ref)):
        return "INS", end
    if len(ref) > len(alt) and (ref.startswith(alt) or ref.endswith(alt)):
        return "DEL", end
    return "INDEL", end


class _Alt(NamedTuple):
    alt: str
    end: int
    variant_type: str


class _Site(NamedTuple):
    """A record's position and alleles, before its genotypes are counted."""

    where: int  # line (VCF) or record (BCF) number, for messages
    chrom: str
    start: int
    ref: str
    alts: list[_Alt | None]  # None for ALT entries that are not indexed ('*', '.', <*>)
    info_counts: tuple[list[int], int] | None = None  # sites-only files: INFO AC, AN


# -- the reader ------------------------------------------------------------------------------------


class VariantReader:
    """Reads a VCF (bgzipped, gzipped or plain) or a BCF from ``source``.

    The header is read at once (``header``); :meth:`alleles` then yields batches of counted
    alleles, given each sample column's number in the dataset. Use it as a context manager: it
    owns a thread pool.
    """

    def __init__(self, source: Readable, *, name: str, threads: int = DEFAULT_THREADS) -> None:
        self.name = name
        self._input = _Input(source)
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="genofed-vcf")
        self._window = 3 * max(1, threads)
        try:
            self._chunks = _decompressed(self._input, name, self._pool, self._window)
            self._opened = _read_header(self._chunks, name)
        except BaseException:
            self.close()
            raise
        self.header = self._opened.header

    @property
    def compressed_bytes_read(self) -> int:
        """Bytes of the source consumed so far, for progress reports."""
        return self._input.consumed

    def alleles(self, numbers: Sequence[int] | npt.NDArray[np.uint32]) -> Iterator[AlleleBatch]:
        """Batches of counted alleles, in file order; ``numbers[i]`` is sample column i's number
        in the dataset (the bits of the carrier bitmaps)."""
        mapping = np.asarray(numbers, dtype=np.uint32)
        if mapping.shape != (len(self.header.samples),):
            raise ValueError(f"give one number per sample column ({len(self.header.samples)})")
        opened = self._opened
        jobs: Iterator[Callable[[], AlleleBatch]]
        if opened.bcf_keys is not None:
            bcf = _BcfDecoder(self.name, mapping, opened.bcf_keys)
            jobs = _bcf_jobs(self._chunks, opened.body, opened.first, bcf)
        else:
            vcf = _VcfDecoder(self.name, mapping)
            jobs = _vcf_jobs(self._chunks, opened.body, opened.first, vcf)
        yield from _ordered(self._pool, jobs, self._window)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> VariantReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_variants(source: Readable, *, name: str, threads: int = DEFAULT_THREADS) -> VariantReader:
    """Open ``source`` (a VCF or BCF stream) for reading; see :class:`VariantReader`."""
    return VariantReader(source, name=name, threads=threads)


def _ordered(pool: ThreadPoolExecutor, jobs: Iterator[Callable[[], T]], window: int) -> Iterator[T]:
    """Run ``jobs`` in ``pool``, at most ``window`` ahead, and yield their results in order."""
    pending: deque[Future[T]] = deque()
    try:
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


# -- bytes in: BGZF inflated in parallel; plain gzip and text in sequence --------------------------


class _Input:
    """The source, with a count of the bytes consumed (for progress)."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.consumed = 0

    def read(self, size: int = READ_SIZE) -> bytes:
        data = self._source.read(size)
        self.consumed += len(data)
        return data


def _decompressed(
    source: _Input, name: str, pool: ThreadPoolExecutor, window: int
) -> Iterator[bytes]:
    """The file's decompressed bytes, in order, in chunks of about :data:`BATCH_BYTES`."""
    head = source.read(READ_SIZE)
    if head[:2] != b"\x1f\x8b":
        return _plain(head, source)
    if _bgzf_block_size(head, 0) is not None:
        return _ordered(pool, _bgzf_jobs(head, source, name), window)
    return _gunzip(head, source, name)


def _plain(head: bytes, source: _Input) -> Iterator[bytes]:
    data = head
    while data:
        yield data
        data = source.read(BATCH_BYTES)


def _gunzip(head: bytes, source: _Input, name: str) -> Iterator[bytes]:
    """Plain gzip (not blocked, so not splittable), possibly of several members: one core."""
    inflater = zlib.decompressobj(31)
    inside = False  # bytes of the current member were read, its end not yet
    data = head
    try:
        while data:
            inside = True
            out = inflater.decompress(data)
            if out:
                yield out
            if inflater.eof:
                data, inside = inflater.unused_data, False
                inflater = zlib.decompressobj(31)
            else:
                data = source.read(READ_SIZE)
    except zlib.error as error:
        raise _damaged(name, f"is not valid gzip ({error})") from None
    if inside:
        raise _damaged(name, "ends inside a gzip member: it is truncated")


def _damaged(name: str, problem: str) -> VariantFileError:
    return VariantFileError(f"{name} {problem}; upload the complete file again")


def _bgzf_block_size(data: bytes | bytearray, pos: int) -> int | None:
    """The size of the BGZF block at ``pos`` (from its BC subfield), or None if not one."""
    if len(data) - pos < 18 or data[pos : pos + 4] != b"\x1f\x8b\x08\x04":
        return None
    (xlen,) = struct.unpack_from("<H", data, pos + 10)
    extra, at = pos + 12, 0
    while at + 6 <= xlen and extra + at + 6 <= len(data):
        si1, si2, slen = struct.unpack_from("<BBH", data, extra + at)
        if si1 == 66 and si2 == 67 and slen == 2:
            return int(struct.unpack_from("<H", data, extra + at + 4)[0]) + 1
        at += 4 + slen
    return None


def _bgzf_jobs(head: bytes, source: _Input, name: str) -> Iterator[Callable[[], bytes]]:
    """Inflate jobs of consecutive BGZF blocks, about :data:`BATCH_BYTES` inflated each: block
    headers and trailers give the sizes without inflating anything."""
    buffer = bytearray(head)
    offset = 0  # the file offset of buffer[0]
    pos = batch_size = 0
    last_size = -1
    while True:
        size = _bgzf_block_size(buffer, pos)
        while size is None or len(buffer) - pos < size:
            more = source.read(READ_SIZE)
            if not more:
                break
            buffer += more
            size = _bgzf_block_size(buffer, pos)
        if pos == len(buffer):
            break
        if size is None:
            raise _damaged(name, f"has no valid BGZF block at byte {offset + pos}")
        if len(buffer) - pos < size:
            raise _damaged(name, f"is truncated inside the BGZF block at byte {offset + pos}")
        (last_size,) = struct.unpack_from("<I", buffer, pos + size - 4)
        pos += size
        batch_size += last_size
        if batch_size >= BATCH_BYTES:
            yield partial(_inflate, bytes(buffer[:pos]), offset, name)
            del buffer[:pos]
            offset += pos
            pos = batch_size = 0
    if pos:
        yield partial(_inflate, bytes(buffer[:pos]), offset, name)
    if last_size != 0:
        raise _damaged(name, "has no BGZF end-of-file block: it is truncated")


def _inflate(batch: bytes, offset: int, name: str) -> bytes:
    """Inflate consecutive BGZF blocks, each checked against its CRC32 and size."""
    parts, pos = [], 0
    while pos < len(batch):
        size = _bgzf_block_size(batch, pos)
        assert size is not None  # the splitter checked it
        (xlen,) = struct.unpack_from("<H", batch, pos + 10)
        crc, isize = struct.unpack_from("<II", batch, pos + size - 8)
        try:
            data = zlib.decompress(batch[pos + 12 + xlen : pos + size - 8], -15)
        except zlib.error as error:
            raise _damaged(
                name, f"has a damaged BGZF block at byte {offset + pos} ({error})"
            ) from None
        if len(data) != isize or zlib.crc32(data) != crc:
            raise _damaged(name, f"has a damaged BGZF block at byte {offset + pos} (bad CRC)")
        parts.append(data)
        pos += size
    return b"".join(parts)


# -- the header --------------------------------------------------------------------------------

_META = re.compile(r"^##(\w+)=<(.*)>$")
_ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,]*)')


class _BcfKeys(NamedTuple):
    """A BCF header's dictionaries: FILTER/INFO/FORMAT IDs and contigs, by number."""

    strings: dict[str, int]
    contigs: dict[int, str]


class _Opened(NamedTuple):
    header: VariantHeader
    body: bytes  # bytes past the header already decompressed
    first: int  # the number of the first body line (VCF) or record (BCF)
    bcf_keys: _BcfKeys | None


def _read_header(chunks: Iterator[bytes], name: str) -> _Opened:
    data = b""
    for chunk in chunks:
        data += chunk
        found = _bcf_header(data, name) if data[:3] == b"BCF" else _vcf_header(data, name)
        if found is not None:
            return found
        if len(data) > MAX_HEADER:
            break
    if not data:
        raise VariantFileError(f"{name} is empty: upload the VCF or BCF again")
    if data[:3] == b"BCF":
        raise VariantFileError(f"{name} ends inside its BCF header: it is truncated")
    raise VariantFileError(
        f"{name} has no '#CHROM' header line: it is not a VCF (or it is truncated); give a VCF "
        "with its header"
    )


def _vcf_header(data: bytes, name: str) -> _Opened | None:
    if not data.startswith(b"##fileformat=VCF"):
        first = data[:60].split(b"\n", 1)[0]
        raise VariantFileError(
            f"{name}, line 1: {first!r} is not '##fileformat=VCFv4.x': the file is neither a "
            "VCF (plain, gzipped or bgzipped) nor a BCF; give one of those"
        )
    at = data.find(b"\n#CHROM")
    stop = data.find(b"\n", at + 1) if at >= 0 else -1
    if stop < 0:
        return None
    try:
        lines = data[:stop].decode().rstrip("\r").split("\n")
    except UnicodeDecodeError:
        raise VariantFileError(f"{name}: the VCF header is not UTF-8 text; fix it") from None
    columns = lines[-1].rstrip("\r").split("\t")
    where = f"{name}, line {len(lines)}"
    if tuple(columns[:8]) != _FIXED_COLUMNS or (len(columns) > 8 and columns[8] != "FORMAT"):
        raise VariantFileError(
            f"{where}: the header line must be the eight tab-separated columns "
            f"{' '.join(_FIXED_COLUMNS)}, then FORMAT and one column per sample; fix it"
        )
    samples = tuple(columns[9:])
    _check_samples(samples, where)
    contigs, hints = _contigs(lines[:-1])
    header = VariantHeader("vcf", samples, contigs, infer_assembly(contigs, hints))
    return _Opened(header, data[stop + 1 :], len(lines) + 1, None)


def _check_samples(samples: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for sample in samples:
        if not sample.strip():
            raise VariantFileError(f"{where}: a sample column has no name; name every sample")
        if sample in seen:
            raise VariantFileError(
                f"{where}: sample {sample!r} has two columns; give each sample one column"
            )
        seen.add(sample)


def _contigs(lines: Sequence[str]) -> tuple[dict[str, int | None], list[str]]:
    """The ##contig lengths, and what names the assembly (##reference, assembly= attributes)."""
    contigs: dict[str, int | None] = {}
    hints = []
    for line in lines:
        if line.startswith("##reference="):
            hints.append(line)
        meta = _META.match(line)
        if meta is None or meta.group(1) != "contig":
            continue
        values = _attributes(meta.group(2))
        if "ID" in values:
            length = values.get("length", "")
            contigs[values["ID"]] = int(length) if length.isdigit() else None
        if "assembly" in values:
            hints.append(values["assembly"])
    return contigs, hints


def _attributes(text: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _ATTRIBUTE.findall(text)}


def _bcf_header(data: bytes, name: str) -> _Opened | None:
    if len(data) < 9:
        return None
    if data[:5] != b"BCF\x02\x02":
        raise VariantFileError(
            f"{name} is BCF {data[3]}.{data[4]}; genofed reads BCF 2.2, what bcftools writes "
            "since 2014: convert it with 'bcftools view -Ob'"
        )
    (length,) = struct.unpack_from("<I", data, 5)
    if len(data) < 9 + length:
        return None
    text = data[9 : 9 + length].rstrip(b"\0").decode("utf-8", "replace")
    lines = [line.rstrip("\r") for line in text.split("\n") if line]
    columns = lines[-1].split("\t") if lines else []
    if tuple(columns[:8]) != _FIXED_COLUMNS:
        raise VariantFileError(f"{name}: the BCF header has no '#CHROM' line; it is damaged")
    samples = tuple(columns[9:])
    _check_samples(samples, f"{name} (BCF header)")
    contigs, hints = _contigs(lines[:-1])
    header = VariantHeader("bcf", samples, contigs, infer_assembly(contigs, hints))
    return _Opened(header, data[9 + length :], 1, _bcf_keys(lines))


def _bcf_keys(lines: Sequence[str]) -> _BcfKeys:
    """The dictionaries BCF records refer to by number: FILTER, INFO and FORMAT IDs share one
    (PASS is 0), contigs have their own; by IDX when the header gives it, else in order."""
    strings: dict[str, int] = {"PASS": 0}
    contigs: dict[int, str] = {}
    for line in lines:
        meta = _META.match(line)
        if meta is None or meta.group(1) not in ("FILTER", "INFO", "FORMAT", "contig"):
            continue
        values = _attributes(meta.group(2))
        ident, idx = values.get("ID"), values.get("IDX", "")
        if ident is None:
            continue
        if meta.group(1) == "contig":
            contigs[int(idx) if idx.isdigit() else len(contigs)] = ident
        elif idx.isdigit():
            strings[ident] = int(idx)
        elif ident not in strings:
            strings[ident] = max(strings.values()) + 1
    return _BcfKeys(strings, contigs)


# -- counting: genotype codes to alleles -------------------------------------------------------


class _Decoder:
    """Turns a batch of records into counted alleles; subclasses read VCF or BCF records."""

    unit = "line"

    def __init__(self, name: str, numbers: npt.NDArray[np.uint32]) -> None:
        self.name = name
        self.samples = len(numbers)
        self.numbers = numbers
        self.offset: int | None = None  # numbers == offset + column: the common case
        # columns in order have numbers in order: a row's carriers come out sorted
        self.increasing = bool(np.all(np.diff(numbers.astype(np.int64)) > 0))
        if self.samples and np.array_equal(
            numbers, np.arange(self.samples, dtype=np.uint32) + numbers[0]
        ):
            self.offset = int(numbers[0])
        self._chroms: dict[bytes, str] = {}

    def chrom(self, raw: bytes) -> str:
        found = self._chroms.get(raw)
        if found is None:
            found = self._chroms[raw] = normalize_chrom(raw.decode("ascii", "replace"))
        return found

    def error(self, where: int, problem: str) -> VariantFileError:
        return VariantFileError(f"{self.name}, {self.unit} {where}: {problem}")

    def sample_numbers(self, columns: npt.NDArray[np.intp]) -> npt.NDArray[np.uint32]:
        """The sample numbers of sample ``columns``."""
        if self.offset is not None:
            return columns.astype(np.uint32) + np.uint32(self.offset)
        return self.numbers[columns]

    def carriers(self, columns: npt.NDArray[np.intp]) -> bytes:
        """The serialized bitmap of the sample numbers of ``columns`` (ascending)."""
        numbers = self.sample_numbers(columns)
        small = numbers.size and numbers[-1] < 65536 and self.increasing
        return _serialized(numbers.astype("<u2")) if small else _bitmap(numbers)

    def alt(
        self, ref: str, raw: str, start: int, end: int | None, svlen: int | None
    ) -> _Alt | None:
        """An ALT entry as indexed, or None for one that is not an allele to index."""
        if raw in _SKIPPED_ALTS or not raw:
            return None
        alt = raw if raw.startswith("<") or "[" in raw or "]" in raw else raw.upper()
        kind, allele_end = classify(ref, alt, start, end, svlen)
        return _Alt(alt, allele_end, kind)

    def count(self, sites: Sequence[_Site], codes: Codes | None) -> list[ParsedAllele]:
        """Count each site's alleles from its genotype codes (``codes[i]`` is site i's
        (samples, 2) matrix): biallelic sites with every call made by a few passes over the
        whole batch, the others one by one."""
        if not sites:
            return []
        if codes is None:
            return [allele for site in sites for allele in _sites_only(site)]
        k, n = len(sites), self.samples
        flat = codes.reshape(k, 2 * n)
        highest = flat.max(axis=1)
        one_alt = np.fromiter((len(site.alts) == 1 for site in sites), bool, k)
        simple = one_alt & (highest <= 1)
        vector = _VectorCounts(codes, simple, self) if simple.any() else None
        alleles: list[ParsedAllele] = []
        for i, site in enumerate(sites):
            if not simple[i]:
                alleles.extend(self._count_row(site, codes[i]))
                continue
            assert vector is not None
            allele, ac = site.alts[0], vector.ac[i]
            if allele is not None and ac:
                alleles.append(
                    ParsedAllele(
                        site.chrom,
                        site.start,
                        allele.end,
                        site.ref,
                        allele.alt,
                        allele.variant_type,
                        ac,
                        2 * n,
                        vector.hom[i],
                        vector.carriers(i),
                    )
                )
        return alleles

    def _count_row(self, site: _Site, row: Codes) -> Iterator[ParsedAllele]:
        """Counts of a site the vector path does not take (several ALT alleles, missing or
        haploid calls), with every allele index checked against the ALT column."""
        nalt = len(site.alts)
        beyond = row[(row > nalt) & (row < MISSING)]
        if beyond.size:
            raise self.error(
                site.where,
                f"a genotype names allele {int(beyond[0])} but ALT has {nalt}; fix the "
                "genotypes or the ALT column",
            )
        an = int(np.count_nonzero(row < MISSING))
        first, second = row[:, 0], row[:, 1]
        for index, allele in enumerate(site.alts, start=1):
            if allele is None:
                continue
            on_first, on_second = first == index, second == index
            ac = int(np.count_nonzero(on_first)) + int(np.count_nonzero(on_second))
            if not ac:
                continue
            yield ParsedAllele(
                site.chrom,
                site.start,
                allele.end,
                site.ref,
                allele.alt,
                allele.variant_type,
                ac,
                an,
                int(np.count_nonzero(on_first & on_second)),
                self.carriers(np.flatnonzero(on_first | on_second)),
            )


class _VectorCounts:
    """AC, hom and carriers of a batch's biallelic fully-called sites, in a few numpy passes:
    a sample's two codes read as one uint16 are 0 (0/0), 0x0001 or 0x0100 (het), 0x0101 (hom)."""

    def __init__(self, codes: Codes, simple: npt.NDArray[np.bool_], decoder: _Decoder) -> None:
        k, n = codes.shape[0], codes.shape[1]
        pairs = codes.view("<u2").reshape(k, n)
        homozygous = (pairs == 0x0101).sum(axis=1)
        found = np.flatnonzero(pairs != 0)  # numpy's fast path: a flat boolean array
        rows = found // n
        columns = found - rows * n
        if not simple.all():  # other sites' codes are not 0/1: drop them
            kept = simple[rows]
            rows, columns = rows[kept], columns[kept]
        cuts = np.searchsorted(rows, np.arange(k + 1))
        self.hom: list[int] = homozygous.tolist()
        self.ac: list[int] = (np.diff(cuts) + homozygous).tolist()  # carriers + their 2nd copy
        self._numbers = decoder.sample_numbers(columns)
        self._small = None  # the numbers as uint16 when every carrier set is one sorted array
        if decoder.increasing and (not self._numbers.size or self._numbers.max() < 65536):
            self._small = self._numbers.astype("<u2")
        self._cuts: list[int] = cuts.tolist()

    def carriers(self, row: int) -> bytes:
        """Site ``row``'s carriers, as a serialized bitmap of sample numbers."""
        first, last = self._cuts[row], self._cuts[row + 1]
        if self._small is not None:
            return _serialized(self._small[first:last])
        return _bitmap(self._numbers[first:last])


def _bitmap(numbers: npt.NDArray[np.uint32]) -> bytes:
    return bytes(BitMap(array("I", numbers.tobytes())).serialize())


_EMPTY: Final = bytes(BitMap().serialize())
_ONE_ARRAY: Final = struct.Struct("<IIHHI")  # cookie, containers, key, cardinality - 1, offset
_NO_RUNS_COOKIE: Final = 12346
_ARRAY_MAX: Final = 4096


def _serialized(numbers: npt.NDArray[np.uint16]) -> bytes:
    """The portable roaring serialization of sorted distinct numbers below 65,536, written
    directly when it is one array container (up to 4,096 numbers): what pyroaring writes for
    them, at a fraction of the cost of building the bitmap first."""
    if not numbers.size:
        return _EMPTY
    if numbers.size > _ARRAY_MAX:
        return _bitmap(numbers.astype(np.uint32))
    return _ONE_ARRAY.pack(_NO_RUNS_COOKIE, 1, 0, numbers.size - 1, 16) + numbers.tobytes()


def _sites_only(site: _Site) -> Iterator[ParsedAllele]:
    """Alleles of a file without samples: counts from INFO AC and AN when it has them."""
    counts, an = site.info_counts or ([], 0)
    empty = bytes(BitMap().serialize())
    for index, allele in enumerate(site.alts):
        if allele is None:
            continue
        ac = counts[index] if index < len(counts) else 0
        if counts and not ac:
            continue
        yield ParsedAllele(
            site.chrom,
            site.start,
            allele.end,
            site.ref,
            allele.alt,
            allele.variant_type,
            ac,
            an,
            0,
            empty,
        )


# -- VCF records -------------------------------------------------------------------------------


class _VcfDecoder(_Decoder):
    def parse(self, text: bytes, first_line: int) -> AlleleBatch:
        """Count the alleles of the whole lines in ``text`` (which ends with a newline), whose
        first line is ``first_line``."""
        buffer = np.frombuffer(text, np.uint8)
        ends = np.flatnonzero(buffer == _NEWLINE).tolist()
        n = self.samples
        sites: list[_Site] = []
        fast: list[tuple[int, int]] = []  # (site, where its samples start)
        scan: list[tuple[int, int, int]] = []  # (site, start, end of its samples): GT first
        other: dict[int, Codes] = {}  # codes of the sites decoded alone
        start = 0
        for number, end in enumerate(ends, start=first_line):
            stop = end - 1 if end > start and text[end - 1] == 13 else end  # CRLF
            if stop > start:
                fields, at = self._columns(text, start, stop, number)
                sites.append(self._site(fields, number))
                site, format_ = len(sites) - 1, fields[8] if n else b""
                if not n:
                    pass
                elif format_ == b"GT" and stop == end and end + 1 - at == 4 * n:
                    fast.append((site, at))
                elif format_ == b"GT" or format_.startswith(b"GT:"):
                    scan.append((site, at, stop))
                else:
                    other[site] = self._decode_line(text, at, stop, format_, number)
            start = end + 1
        codes = self._codes(text, buffer, sites, fast, scan, other) if n else None
        return AlleleBatch(self.count(sites, codes), len(sites))

    def _codes(
        self,
        text: bytes,
        buffer: npt.NDArray[np.uint8],
        sites: Sequence[_Site],
        fast: Sequence[tuple[int, int]],
        scan: list[tuple[int, int, int]],
        other: dict[int, Codes],
    ) -> Codes:
        """The (sites, samples, 2) codes of a batch: the fast sites' matrix as it is when every
        site took the fast path (no copy), else assembled. A fast site that fails the stride's
        checks is scanned; a scanned site that fails the scan's is split."""
        decoded, good = self._decode_fast(buffer, fast)
        width = 4 * self.samples
        failed = np.flatnonzero(~good).tolist()
        scan += [(fast[j][0], fast[j][1], fast[j][1] + width - 1) for j in failed]
        scanned, ok = _scan_many(buffer, [(at, stop) for _, at, stop in scan], self.samples)
        for j, (site, at, stop) in enumerate(scan):
            if ok[j]:
                other[site] = scanned[j]
            else:
                other[site] = self._split_codes(text[at:stop], 0, sites[site].where)
        if not other:
            return decoded
        codes = np.empty((len(sites), self.samples, 2), np.uint8)
        if fast:
            rows = np.fromiter((site for site, _ in fast), np.intp, len(fast))
            codes[rows[good]] = decoded[good]
        for site, found in other.items():
            codes[site] = found
        return codes

    def _columns(self, text: bytes, start: int, end: int, number: int) -> tuple[list[bytes], int]:
        """The fixed columns (CHROM to FORMAT) and where the sample columns start."""
        if not self.samples:
            fields = text[start:end].split(b"\t")
            if len(fields) not in (8, 9):
                raise self._column_count(len(fields), 8, number)
            return fields, end
        at = start
        for _ in range(9):
            tab = text.find(b"\t", at, end)
            if tab < 0:
                raise self._column_count(text.count(b"\t", start, end) + 1, 9, number)
            at = tab + 1
        return text[start : at - 1].split(b"\t"), at

    def _column_count(self, found: int, fixed: int, number: int) -> VariantFileError:
        wanted = fixed + self.samples
        return self.error(
            number,
            f"it has {found} tab-separated columns, the header {wanted} ({fixed} fixed and "
            f"{self.samples} samples); fix the line (is it truncated?)",
        )

    def _site(self, fields: Sequence[bytes], number: int) -> _Site:
        try:
            pos = int(fields[1])
        except ValueError:
            raise self.error(number, f"POS {fields[1]!r} is not a number; fix it") from None
        if pos < 0:
            raise self.error(number, f"POS {pos} is negative; fix it")
        ref = fields[3].decode("ascii", "replace").upper()
        if not ref.isalpha():
            raise self.error(number, f"REF {fields[3]!r} is not a sequence of bases; fix it")
        start = max(pos - 1, 0)
        raw_alts = fields[4].decode("ascii", "replace").split(",")
        end, svlens = None, []
        if any(alt.startswith("<") for alt in raw_alts):
            end, svlens = _info_int(fields[7], b"END"), _info_ints(fields[7], b"SVLEN")
        alts = [
            self.alt(ref, raw, start, end, _pick(svlens, index))
            for index, raw in enumerate(raw_alts)
        ]
        counts = None
        if not self.samples:
            counts = (_info_ints(fields[7], b"AC"), _info_int(fields[7], b"AN") or 0)
        return _Site(number, self.chrom(fields[0]), start, ref, alts, counts)

    def _decode_fast(
        self, buffer: npt.NDArray[np.uint8], fast: Sequence[tuple[int, int]]
    ) -> tuple[Codes, npt.NDArray[np.bool_]]:
        """Codes of the sites whose samples lie at a stride of 4 bytes, all at once, and
        which of them passed the stride's checks (the others, a haploid call or a wrong
        character, are decoded alone)."""
        n, width = self.samples, 4 * self.samples
        matrix = np.empty((len(fast), width), np.uint8)
        for j, (_site, at) in enumerate(fast):
            matrix[j] = buffer[at : at + width]
        matrix[:, -1] = _TAB  # the line's '\n': every field now ends alike
        masked = matrix.view("<u4") & np.uint32(0xFF00FF00)
        good = ((masked == _PHASED) | (masked == _UNPHASED)).all(axis=1)
        decoded = matrix.reshape(len(fast), n, 4)[:, :, ::2] - np.uint8(_ZERO)
        highest = decoded.reshape(len(fast), 2 * n).max(axis=1)
        for j in np.flatnonzero(good & (highest > 9)).tolist():
            found = decoded[j]
            good[j] = bool(((found <= 9) | (found == MISSING)).all())
        return decoded, good

    def _decode_line(self, text: bytes, start: int, end: int, format_: bytes, number: int) -> Codes:
        """The codes of a record whose GT is not first in FORMAT (or absent: all missing)."""
        keys = format_.split(b":")
        if b"GT" not in keys:
            codes = np.full((self.samples, 2), ABSENT, np.uint8)
            codes[:, 0] = MISSING
            return codes
        return self._split_codes(text[start:end], keys.index(b"GT"), number)

    def _split_codes(self, region: bytes, gt_index: int, number: int) -> Codes:
        columns = region.split(b"\t")
        if len(columns) != self.samples:
            raise self._column_count(9 + len(columns), 9, number)
        codes = np.empty((self.samples, 2), np.uint8)
        known: dict[bytes, tuple[int, int]] = {}
        for column, value in enumerate(columns):
            parts = value.split(b":")
            gt = parts[gt_index] if gt_index < len(parts) else b"."
            pair = known.get(gt)
            if pair is None:
                pair = known[gt] = self._genotype(gt, column, number)
            codes[column] = pair
        return codes

    def _genotype(self, gt: bytes, column: int, number: int) -> tuple[int, int]:
        alleles = _GT_SEPARATORS.split(gt)
        shown = gt.decode(errors="replace")
        if len(alleles) > 2:
            raise self.error(
                number,
                f"sample {column + 1} has GT {shown!r} of ploidy {len(alleles)}; genofed "
                "indexes haploid and diploid calls only",
            )
        values = []
        for allele in alleles:
            if allele == b".":
                values.append(MISSING)
            elif allele.isdigit() and int(allele) <= MAX_ALLELE:
                values.append(int(allele))
            else:
                raise self.error(
                    number,
                    f"sample {column + 1} has GT {shown!r}, not a genotype such as 0/1, 1|0, "
                    "1 or ./.; fix that sample's GT",
                )
        return values[0], values[1] if len(values) == 2 else ABSENT


def _scan_many(
    buffer: npt.NDArray[np.uint8], spans: Sequence[tuple[int, int]], n: int
) -> tuple[Codes, npt.NDArray[np.bool_]]:
    """Codes of records whose GT comes first in FORMAT, from the positions of their tabs, all
    at once; and which records the scan could read (every GT one or two one-character alleles,
    n sample columns). The others are split as text, which names any problem."""
    codes = np.empty((len(spans), n, 2), np.uint8)
    if not spans:
        return codes, np.zeros(0, bool)
    bounds = np.array(spans, np.intp)
    tabs = np.flatnonzero(buffer == _TAB)
    low, high = np.searchsorted(tabs, bounds[:, 0]), np.searchsorted(tabs, bounds[:, 1])
    ok = high - low == n - 1
    rows = np.flatnonzero(ok)
    starts = np.empty((rows.size, n), np.intp)
    starts[:, 0] = bounds[rows, 0]
    starts[:, 1:] = tabs[low[rows, None] + np.arange(n - 1)] + 1
    # the batch ends with a newline: clipped reads past it see that newline
    second = buffer.take(starts + 1, mode="clip")
    fourth = buffer.take(starts + 3, mode="clip")
    ends_field = (second == _COLON) | (second == _TAB) | (second == _NEWLINE) | (second == 13)
    diploid = ((second == _PIPE) | (second == _SLASH)) & (
        (fourth == _COLON) | (fourth == _TAB) | (fourth == _NEWLINE) | (fourth == 13)
    )
    first = buffer.take(starts, mode="clip") - np.uint8(_ZERO)
    other = np.where(diploid, buffer.take(starts + 2, mode="clip") - np.uint8(_ZERO), ABSENT)
    valid = (
        (ends_field | diploid)
        & ((first <= 9) | (first == MISSING))
        & (ends_field | (other <= 9) | (other == MISSING))
    ).all(axis=1)
    codes[rows, :, 0] = first
    codes[rows, :, 1] = other
    ok[rows] = valid
    return codes, ok


def _pick(values: Sequence[int], index: int) -> int | None:
    if index < len(values):
        return values[index]
    return values[0] if values else None


def _info_value(info: bytes, key: bytes) -> bytes | None:
    for item in info.split(b";"):
        name, _, value = item.partition(b"=")
        if name == key:
            return value
    return None


def _info_int(info: bytes, key: bytes) -> int | None:
    values = _info_ints(info, key)
    return values[0] if values else None


def _info_ints(info: bytes, key: bytes) -> list[int]:
    value = _info_value(info, key)
    if not value:
        return []
    try:
        return [int(item) if item != b"." else 0 for item in value.split(b",")]
    except ValueError:
        return []


def _vcf_jobs(
    chunks: Iterator[bytes], body: bytes, first_line: int, decoder: _VcfDecoder
) -> Iterator[Callable[[], AlleleBatch]]:
    """Parse jobs of whole lines, at least half a batch each, told their first line number."""
    pieces, size, line = [body], len(body), first_line
    for chunk in chunks:
        pieces.append(chunk)
        size += len(chunk)
        if size < BATCH_BYTES // 2:
            continue
        data = b"".join(pieces)
        cut = data.rfind(b"\n") + 1
        if cut:
            yield partial(decoder.parse, data[:cut], line)
            line += data.count(b"\n", 0, cut)
        pieces, size = [data[cut:]], len(data) - cut
    data = b"".join(pieces)
    if data.strip():
        yield partial(decoder.parse, data if data.endswith(b"\n") else data + b"\n", line)


# -- BCF records -------------------------------------------------------------------------------

_BCF_SIZES: Final = {0: 0, 1: 1, 2: 2, 3: 4, 5: 4, 7: 1}
_BCF_INTS: Final[dict[int, np.dtype[Any]]] = {
    1: np.dtype("<i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
}
_INT_END: Final = {1: -127, 2: -32767, 3: -2147483647}
_INT_MISSING: Final = {1: -128, 2: -32768, 3: -2147483648}


def _gt_table() -> Codes:
    """Codes of the 256 int8 GT values: (allele + 1) << 1 | phased; 0 and 1 (and the int8
    missing value) are missing; the vector end (-127) is the absent allele of a haploid call."""
    table = np.empty(256, np.uint8)
    for value in range(256):
        signed = value - 256 if value > 127 else value
        if signed == _INT_END[1]:
            table[value] = ABSENT
        elif signed < 2:
            table[value] = MISSING
        else:
            table[value] = (signed >> 1) - 1
    return table


_GT_TABLE: Final = _gt_table()


class _BcfDecoder(_Decoder):
    unit = "record"

    def __init__(self, name: str, numbers: npt.NDArray[np.uint32], keys: _BcfKeys) -> None:
        super().__init__(name, numbers)
        self._contigs = {index: self.chrom(ident.encode()) for index, ident in keys.contigs.items()}
        self._gt = keys.strings.get("GT", -1)
        self._ac, self._an = keys.strings.get("AC", -1), keys.strings.get("AN", -1)

    def parse(self, data: bytes, first: int) -> AlleleBatch:
        """Count the alleles of the whole records in ``data``, the first being ``first``."""
        sites: list[_Site] = []
        gts: list[tuple[int, int, int, int]] = []  # (site, offset, int type, values per sample)
        pos = 0
        while pos < len(data):
            shared, indiv = struct.unpack_from("<II", data, pos)
            site, gt = self._record(data, pos + 8, shared, first + len(sites))
            sites.append(site)
            if gt is not None:
                gts.append((len(sites) - 1, *gt))
            pos += 8 + shared + indiv
        codes = None
        if self.samples:
            codes = np.empty((len(sites), self.samples, 2), np.uint8)
            codes[:, :, 0] = MISSING
            codes[:, :, 1] = ABSENT
            self._decode(data, gts, codes, sites)
        return AlleleBatch(self.count(sites, codes), len(sites))

    def _record(
        self, data: bytes, at: int, shared: int, number: int
    ) -> tuple[_Site, tuple[int, int, int] | None]:
        try:
            return self._unpack(data, at, shared, number)
        except (struct.error, IndexError, ValueError):
            raise self.error(number, "it is malformed; the BCF file is damaged") from None

    def _unpack(
        self, data: bytes, at: int, shared: int, number: int
    ) -> tuple[_Site, tuple[int, int, int] | None]:
        chrom_id, pos, rlen, _qual, info_allele, fmt_sample = struct.unpack_from(
            "<iiifII", data, at
        )
        n_info, n_allele = info_allele & 0xFFFF, info_allele >> 16
        n_fmt, samples = fmt_sample >> 24, fmt_sample & 0xFFFFFF
        chrom = self._contigs.get(chrom_id)
        if chrom is None:
            raise self.error(number, f"its contig number {chrom_id} is not in the header")
        if samples != self.samples:
            raise self.error(number, f"it has {samples} samples, the header {self.samples}")
        cursor = _skip_typed(data, at + 24)  # ID
        alleles = []
        for _ in range(n_allele):
            value, cursor = _typed_string(data, cursor)
            alleles.append(value)
        if not alleles or not alleles[0].isalpha():
            raise self.error(number, "its REF is not a sequence of bases; the file is damaged")
        cursor = _skip_typed(data, cursor)  # FILTER
        counts = None if self.samples else self._info_counts(data, cursor, n_info)
        ref = alleles[0].upper()
        end = pos + max(rlen, 1)  # htslib's rlen follows INFO END for symbolic alleles
        alts = [self.alt(ref, raw, pos, end, None) for raw in alleles[1:]]
        site = _Site(number, chrom, pos, ref, alts, counts)
        return site, self._find_gt(data, at + shared, n_fmt)

    def _info_counts(self, data: bytes, cursor: int, n_info: int) -> tuple[list[int], int]:
        ac: list[int] = []
        an = 0
        for _ in range(n_info):
            key, cursor = _typed_int(data, cursor)
            kind, count, cursor = _descriptor(data, cursor)
            if key in (self._ac, self._an) and kind in _BCF_INTS:
                values = np.frombuffer(data, _BCF_INTS[kind], count, cursor).tolist()
                if key == self._ac:
                    ac = [max(value, 0) for value in values]
                elif values:
                    an = max(values[0], 0)
            cursor += count * _BCF_SIZES.get(kind, 0)
        return ac, an

    def _find_gt(self, data: bytes, cursor: int, n_fmt: int) -> tuple[int, int, int] | None:
        for _ in range(n_fmt):
            key, cursor = _typed_int(data, cursor)
            kind, count, cursor = _descriptor(data, cursor)
            if key == self._gt and kind in _BCF_INTS:
                return cursor, kind, count
            cursor += self.samples * count * _BCF_SIZES.get(kind, 0)
        return None

    def _decode(
        self,
        data: bytes,
        gts: Sequence[tuple[int, int, int, int]],
        codes: Codes,
        sites: Sequence[_Site],
    ) -> None:
        """GT vectors to codes: every int8 diploid one in one table lookup, others alone."""
        n = self.samples
        common = [(site, at) for site, at, kind, count in gts if kind == 1 and count == 2]
        if common:
            buffer = np.frombuffer(data, np.uint8)
            raw = np.empty((len(common), 2 * n), np.uint8)
            for j, (_site, at) in enumerate(common):
                raw[j] = buffer[at : at + 2 * n]
            rows = np.fromiter((site for site, _ in common), np.intp, len(common))
            codes[rows] = _GT_TABLE[raw].reshape(len(common), n, 2)
        for site, at, kind, count in gts:
            if not (kind == 1 and count == 2) and count:
                values = np.frombuffer(data, _BCF_INTS[kind], n * count, at).reshape(n, count)
                codes[site] = self._decode_wide(values.astype(np.int64), kind, sites[site].where)

    def _decode_wide(self, values: npt.NDArray[np.int64], kind: int, number: int) -> Codes:
        end, missing = _INT_END[kind], _INT_MISSING[kind]
        if values.shape[1] > 2 and (values[:, 2:] != end).any():
            raise self.error(
                number, "a genotype has ploidy above 2; genofed indexes haploid and diploid only"
            )
        codes = np.full((values.shape[0], 2), ABSENT, np.uint8)
        for column in range(min(2, values.shape[1])):
            value = values[:, column]
            allele = (value >> 1) - 1
            if (allele > MAX_ALLELE).any():
                raise self.error(number, f"a genotype names an allele above {MAX_ALLELE}")
            called = np.where((value == missing) | (allele < 0), MISSING, allele)
            codes[:, column] = np.where(value == end, ABSENT, called)
        return codes


def _descriptor(data: bytes, cursor: int) -> tuple[int, int, int]:
    """A typed value's (type, count) and where its values start."""
    byte = data[cursor]
    kind, count = byte & 0x0F, byte >> 4
    cursor += 1
    if count == 15:
        count, cursor = _typed_int(data, cursor)
    if kind not in _BCF_SIZES:
        raise ValueError(f"BCF type {kind}")
    return kind, count, cursor


def _typed_int(data: bytes, cursor: int) -> tuple[int, int]:
    kind, _count, cursor = _descriptor(data, cursor)
    dtype = _BCF_INTS.get(kind)
    if dtype is None:
        raise ValueError(f"BCF type {kind} where an integer belongs")
    return int(np.frombuffer(data, dtype, 1, cursor)[0]), cursor + dtype.itemsize


def _typed_string(data: bytes, cursor: int) -> tuple[str, int]:
    kind, count, cursor = _descriptor(data, cursor)
    size = count * _BCF_SIZES[kind]
    return data[cursor : cursor + size].rstrip(b"\0").decode("ascii", "replace"), cursor + size


def _skip_typed(data: bytes, cursor: int) -> int:
    kind, count, cursor = _descriptor(data, cursor)
    return cursor + count * _BCF_SIZES[kind]


def _bcf_jobs(
    chunks: Iterator[bytes], body: bytes, first: int, decoder: _BcfDecoder
) -> Iterator[Callable[[], AlleleBatch]]:
    """Parse jobs of whole BCF records, cut by the two length fields that open each."""
    carry, number = b"", first
    for chunk in chain([body], chunks):
        data = carry + chunk if carry else chunk
        pos = count = 0
        while pos + 8 <= len(data):
            shared, indiv = struct.unpack_from("<II", data, pos)
            if pos + 8 + shared + indiv > len(data):
                break
            pos += 8 + shared + indiv
            count += 1
        if count:
            yield partial(decoder.parse, data[:pos], number)
            number += count
        carry = data[pos:]
    if carry:
        raise VariantFileError(
            f"{decoder.name}, record {number}: the file ends inside it; it is truncated, upload "
            "the complete file again"
        )
