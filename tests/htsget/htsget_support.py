"""Fixture files for the htsget planner tests, built with pysam, and the checks they share.

The files are made large enough (several hundred KB compressed, dozens of BGZF blocks or CRAM
containers) that regions start and end inside blocks, which is what the trimming code is for.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import mkdtemp

import pysam
import pysam.bcftools

from genofed.htsget import Format, Piece, Region, plan, render
from genofed.htsget.bgzf import EOF_BLOCK, compress, iter_blocks

SEED = 20240611

# Reads: three references with reads, one without (to query an empty reference).
READ_REFERENCES = [("chr1", 400_000), ("chr2", 250_000), ("3", 150_000), ("chrM", 16_569)]
READS_PER_REFERENCE = {"chr1": 2600, "chr2": 1600, "3": 1000}
UNPLACED_READS = 250
READ_LENGTH = 100

# Variants: contigs with and without the chr prefix, and one declared without records.
VCF_CONTIGS = [("chr1", 3_000_000), ("chr2", 1_500_000), ("3", 800_000), ("chrX", 1_000_000)]
VARIANTS_PER_CONTIG = {"chr1": 9000, "chr2": 5000, "3": 3000}
SAMPLES = ["S1", "S2", "S3", "S4"]


@dataclass
class FileUnderTest:
    """A fixture file and its index, with a reader that records what the planner reads."""

    path: Path
    fmt: Format
    index_path: Path
    index_kind: str
    reference: Path | None = None
    reads: list[tuple[int, int]] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def reader(self) -> Callable[[int, int], bytes]:
        """A ``read(start, end)`` over the file that logs every call in ``self.reads``."""
        data = self.data
        self.reads = []

        def read(start: int, end: int) -> bytes:
            self.reads.append((start, end))
            return data[start:end]

        return read

    def plan(self, regions: list[Region] | None, header_only: bool = False) -> list[Piece]:
        return plan(
            self.fmt,
            self.index_path.read_bytes(),
            self.index_kind,
            self.size,
            self.reader(),
            regions=regions,
            header_only=header_only,
        )

    def assemble(self, regions: list[Region] | None, header_only: bool = False) -> bytes:
        """The bytes a client gets by concatenating the pieces."""
        pieces = self.plan(regions, header_only)
        read = self.reader()
        return b"".join(part for piece in pieces for part in render(piece, read))


@dataclass(frozen=True)
class Fixtures:
    """Every fixture file, by format and index kind (the ``files`` session fixture)."""

    bam_bai: FileUnderTest
    bam_csi: FileUnderTest
    packed_bam: FileUnderTest
    cram: FileUnderTest
    cram31: FileUnderTest
    vcf_tbi: FileUnderTest
    vcf_csi: FileUnderTest
    bcf_csi: FileUnderTest
    packed_vcf: FileUnderTest
    packed_bcf: FileUnderTest


# --- Building the files -------------------------------------------------------------------------


def write_reference(path: Path, rng: random.Random) -> dict[str, str]:
    """A FASTA of random sequences for READ_REFERENCES, indexed with faidx."""
    sequences = {name: "".join(rng.choices("ACGT", k=length)) for name, length in READ_REFERENCES}
    with path.open("w") as out:
        for name, seq in sequences.items():
            out.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                out.write(seq[i : i + 60] + "\n")
    pysam.faidx(str(path))
    return sequences


def _mutate(seq: str, rng: random.Random) -> str:
    bases = list(seq)
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(bases))
        bases[i] = rng.choice("ACGT")
    return "".join(bases)


def _cigar(rng: random.Random) -> tuple[list[tuple[int, int]], int]:
    """A CIGAR and its reference span: mostly plain matches, some deletions and long skips
    (spliced reads span many 16 kbp windows, so they land in the index's upper bins)."""
    roll = rng.random()
    if roll < 0.03:
        skip = rng.randint(20_000, 120_000)
        return [(0, 50), (3, skip), (0, 50)], 100 + skip
    if roll < 0.1:
        gap = rng.randint(1, 300)
        return [(0, 40), (2, gap), (0, 60)], 100 + gap
    return [(0, READ_LENGTH)], READ_LENGTH


def _read(
    header: pysam.AlignmentHeader, name: str, sequence: str, rng: random.Random
) -> pysam.AlignedSegment:
    """A read with random qualities (they make up most of a BAM's compressed size)."""
    read = pysam.AlignedSegment(header)
    read.query_name = name
    read.query_sequence = sequence  # before the qualities: setting it clears them
    read.query_qualities = pysam.qualitystring_to_array(
        "".join(chr(33 + rng.randint(2, 40)) for _ in range(READ_LENGTH))
    )
    return read


def build_bam(directory: Path) -> tuple[Path, Path]:
    """A sorted BAM (with mapped, placed-unmapped and unplaced reads) and its FASTA reference."""
    rng = random.Random(SEED)
    fasta = directory / "ref.fa"
    sequences = write_reference(fasta, rng)
    header = pysam.AlignmentHeader.from_dict(
        {
            "HD": {"VN": "1.6", "SO": "coordinate"},
            "SQ": [{"SN": n, "LN": length} for n, length in READ_REFERENCES],
            "RG": [{"ID": "rg1", "SM": "sample1"}],
        }
    )
    placed = []
    for tid, (name, length) in enumerate(READ_REFERENCES):
        for i in range(READS_PER_REFERENCE.get(name, 0)):
            cigar, span = _cigar(rng)
            pos = rng.randrange(0, length - span)
            placed.append((tid, pos, f"{name}_{i}", cigar))
    placed.sort(key=lambda r: (r[0], r[1]))
    path = directory / "reads.bam"
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for tid, pos, name, cigar in placed:
            ref = sequences[READ_REFERENCES[tid][0]]
            if rng.random() < 0.02:  # an unmapped read placed at its mate's position
                read = _read(header, name, "".join(rng.choices("ACGT", k=READ_LENGTH)), rng)
                read.flag = 4 | 1 | 64
            else:
                read = _read(header, name, _mutate(_aligned(ref, pos, cigar), rng), rng)
                read.cigartuples = cigar
                read.mapping_quality = rng.randint(0, 60)
            read.reference_id, read.reference_start = tid, pos
            read.set_tag("RG", "rg1")
            out.write(read)
        for i in range(UNPLACED_READS):
            read = _read(header, f"unplaced_{i}", "".join(rng.choices("ACGT", k=READ_LENGTH)), rng)
            read.flag = 4
            read.reference_id, read.reference_start = -1, -1
            out.write(read)
    pysam.index(str(path))
    pysam.samtools.index("-c", str(path), str(path) + ".csi")
    return path, fasta


def _aligned(ref: str, pos: int, cigar: list[tuple[int, int]]) -> str:
    """The read bases a CIGAR of matches, deletions and skips takes from the reference."""
    out, at = [], pos
    for op, length in cigar:
        if op == 0:
            out.append(ref[at : at + length])
        at += length
    return "".join(out)


def build_cram(bam: Path, fasta: Path, version: str = "3.0") -> Path:
    """The BAM as CRAM 3.0 or 3.1 with small slices (many containers), indexed .crai."""
    path = bam.with_name(f"reads-{version}.cram")
    pysam.samtools.view(
        "-C",
        "-T",
        str(fasta),
        "--output-fmt-option",
        "seqs_per_slice=250",
        "--output-fmt-option",
        f"version={version}",
        "-o",
        str(path),
        str(bam),
        catch_stdout=False,
    )
    pysam.samtools.index(str(path))
    return path


def build_vcf(directory: Path) -> Path:
    """A bgzipped VCF indexed both .tbi and .csi: SNVs, short deletions and long <DEL>s."""
    rng = random.Random(SEED + 1)
    text = directory / "variants.vcf"
    with text.open("w") as out:
        out.write("##fileformat=VCFv4.2\n")
        for name, length in VCF_CONTIGS:
            out.write(f"##contig=<ID={name},length={length}>\n")
        out.write('##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n')
        out.write('##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">\n')
        out.write('##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n')
        out.write('##ALT=<ID=DEL,Description="Deletion">\n')
        out.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        out.write('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n')
        out.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(SAMPLES))
        out.write("\n")
        for name, length in VCF_CONTIGS:
            positions = sorted(
                rng.sample(range(1, length - 200_000), VARIANTS_PER_CONTIG.get(name, 0))
            )
            for i, pos in enumerate(positions):
                out.write(_variant(name, pos, i, rng) + "\n")
    gz = directory / "variants.vcf.gz"
    pysam.tabix_compress(str(text), str(gz))
    pysam.tabix_index(str(gz), preset="vcf", force=True)
    pysam.tabix_index(str(gz), preset="vcf", csi=True, force=True)
    return gz


def _variant(contig: str, pos: int, i: int, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.01:
        end = pos + rng.randint(20_000, 150_000)
        ref, alt, info = (
            rng.choice("ACGT"),
            "<DEL>",
            f"DP={rng.randint(5, 90)};SVTYPE=DEL;END={end}",
        )
    elif roll < 0.1:
        ref = "".join(rng.choices("ACGT", k=rng.randint(2, 60)))
        alt, info = ref[0], f"DP={rng.randint(5, 90)}"
    else:
        ref = rng.choice("ACGT")
        alt, info = rng.choice([b for b in "ACGT" if b != ref]), f"DP={rng.randint(5, 90)}"
    genotypes = "\t".join(
        f"{rng.choice(['0/0', '0/1', '1/1', './.'])}:{rng.randint(0, 99)}" for _ in SAMPLES
    )
    qual = f"{rng.uniform(10, 999):.1f}"
    return f"{contig}\t{pos}\t{contig}_v{i}\t{ref}\t{alt}\t{qual}\tPASS\t{info}\tGT:DP\t{genotypes}"


def build_bcf(vcf: Path) -> Path:
    """The VCF as BCF, indexed .csi."""
    path = vcf.parent / "variants.bcf"
    pysam.bcftools.view("-Ob", "-o", str(path), str(vcf), catch_stdout=False)
    pysam.bcftools.index(str(path))
    return path


def repack(path: Path, name: str) -> Path:
    """The same BGZF file re-blocked as one continuous stream (blocks of 65280 bytes, as our
    own compressor makes them): the header then shares its last block with the first records,
    and records straddle blocks, which htslib's writers avoid for headers."""
    data = b"".join(block.data for block in iter_blocks(path.read_bytes()))
    out = path.with_name(name)
    out.write_bytes(compress(data) + EOF_BLOCK)
    return out


# --- Checking assembled files -------------------------------------------------------------------

SUFFIX = {Format.BAM: ".bam", Format.CRAM: ".cram", Format.VCF: ".vcf.gz", Format.BCF: ".bcf"}


def write_assembled(data: bytes, fmt: Format, directory: Path, name: str = "out") -> Path:
    path = directory / f"{name}{SUFFIX[fmt]}"
    path.write_bytes(data)
    return path


def region_args(region: Region) -> tuple[str, int | None, int | None]:
    return region.reference_name, region.start, region.end


def alignment_records(
    path: Path, region: Region | None, reference: Path | None = None
) -> list[str]:
    """The records of a BAM/CRAM overlapping ``region`` (all records when ``None``), as text."""
    with pysam.AlignmentFile(str(path), reference_filename=_str(reference)) as f:
        if region is None:
            return [r.to_string() for r in f.fetch(until_eof=True)]
        if region.reference_name == "*":
            return [r.to_string() for r in f.fetch(until_eof=True) if r.reference_id == -1]
        return [r.to_string() for r in f.fetch(*region_args(region))]


def variant_records(path: Path, region: Region | None) -> list[str]:
    """The records of a VCF/BCF overlapping ``region`` (all when ``None``), as text."""
    with pysam.VariantFile(str(path)) as f:
        rows = f.fetch() if region is None else f.fetch(*region_args(region))
        return [str(r) for r in rows]


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def index_assembled(path: Path, fmt: Format) -> None:
    """Index an assembled file so that it can be queried like the original."""
    if fmt is Format.VCF:
        pysam.tabix_index(str(path), preset="vcf", force=True, keep_original=True)
    elif fmt is Format.BCF:
        pysam.bcftools.index("-f", str(path))
    else:
        pysam.samtools.index(str(path))


def header_text(path: Path, fmt: Format, reference: Path | None = None) -> str:
    if fmt in (Format.BAM, Format.CRAM):
        with pysam.AlignmentFile(str(path), reference_filename=_str(reference)) as f:
            return str(f.header)
    with pysam.VariantFile(str(path)) as f:
        return str(f.header)


def records(path: Path, fmt: Format, region: Region | None, reference: Path | None) -> list[str]:
    if fmt in (Format.BAM, Format.CRAM):
        return alignment_records(path, region, reference)
    return variant_records(path, region)


def check_region(
    original: FileUnderTest, regions: list[Region], directory: Path, name: str = "out"
) -> Path:
    """Assemble the regions and check the result against the original file.

    The assembled file has the original header; for each region, its records overlapping the
    region equal the original's; it holds no record twice and none the original lacks; and
    samtools/bcftools read it with no complaint.
    """
    fmt, ref = original.fmt, original.reference
    path = write_assembled(original.assemble(regions), fmt, Path(mkdtemp(dir=directory)), name)
    index_assembled(path, fmt)
    assert header_text(path, fmt, ref) == header_text(original.path, fmt, ref)
    everything = records(path, fmt, None, ref)
    assert not Counter(everything) - _all_records(original.path, fmt, ref)
    assert len(set(everything)) == len(everything), "a record is served twice"
    for region in regions:
        expected = records(original.path, fmt, region, ref)
        assert records(path, fmt, region, ref) == expected, region
    check_tools_read(path, fmt, ref)
    return path


@functools.cache
def _all_records(path: Path, fmt: Format, reference: Path | None) -> Counter[str]:
    """Every record of an original fixture file, counted (read once per worker)."""
    return Counter(records(path, fmt, None, reference))


def check_tools_read(path: Path, fmt: Format, reference: Path | None = None) -> None:
    """samtools or bcftools read the file through, with nothing on stderr (e.g. no EOF warning)."""
    if fmt in (Format.BAM, Format.CRAM):
        args = ["-c", str(path)] + (["-T", str(reference)] if reference else [])
        pysam.samtools.view(*args)
        messages = pysam.samtools.view.get_messages()  # type: ignore[no-untyped-call]
    else:
        pysam.bcftools.view("-H", str(path))
        messages = pysam.bcftools.view.get_messages()  # type: ignore[no-untyped-call]
    assert not [m for m in messages or [] if m.strip()], messages
