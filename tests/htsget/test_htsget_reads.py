"""BAM (with .bai and .csi) and CRAM 3.0/3.1 (with .crai): header class, regions and whole files,
assembled from the planned pieces and checked against pysam's own region queries."""

from __future__ import annotations

from pathlib import Path

import pysam
import pytest
from htsget_support import (
    FileUnderTest,
    Fixtures,
    alignment_records,
    check_region,
    check_tools_read,
    header_text,
    write_assembled,
)

from genofed.htsget import Format, Piece, Region, render
from genofed.htsget.bgzf import EOF_BLOCK, MAX_BLOCK_SIZE
from genofed.htsget.cram import EOF_CONTAINER_3

REGIONS = {
    "contig start": Region("chr1", 0, 5_000),
    "middle": Region("chr1", 200_000, 230_000),
    "across blocks": Region("chr2", 60_000, 140_000),
    "whole contig": Region("chr2"),
    "start only": Region("3", 100_000),
    "end only": Region("chr1", None, 1_000),
    "contig end": Region("3", 147_000, 150_000),
    "empty range": Region("chr1", 100_000, 100_000),
    "contig without reads": Region("chrM"),
    "beyond the contig": Region("chr1", 5_000_000, 6_000_000),
    "unplaced": Region("*"),
}


@pytest.mark.parametrize("region", REGIONS.values(), ids=REGIONS.keys())
def test_region_has_exactly_the_records_of_a_direct_query(
    reads_file: FileUnderTest, region: Region, tmp_path: Path
) -> None:
    check_region(reads_file, [region], tmp_path)


def test_several_overlapping_regions_serve_each_record_once(
    reads_file: FileUnderTest, tmp_path: Path
) -> None:
    regions = [Region("chr1", 10_000, 60_000), Region("chr1", 50_000, 90_000), Region("3", 0, 9)]
    check_region(reads_file, [*regions, Region("*")], tmp_path)


def test_header_class_is_the_header_alone(reads_file: FileUnderTest, tmp_path: Path) -> None:
    data = reads_file.assemble(regions=None, header_only=True)
    path = write_assembled(data, reads_file.fmt, tmp_path)
    ref = reads_file.reference
    assert header_text(path, reads_file.fmt, ref) == header_text(reads_file.path, Format.BAM, ref)
    assert alignment_records(path, None, ref) == []
    check_tools_read(path, reads_file.fmt, ref)


def test_header_class_ignores_regions(reads_file: FileUnderTest) -> None:
    with_regions = reads_file.plan([Region("chr1", 0, 1000)], header_only=True)
    assert with_regions == reads_file.plan(None, header_only=True)


def test_no_region_is_the_whole_file_as_one_raw_piece(reads_file: FileUnderTest) -> None:
    pieces = reads_file.plan(regions=None)
    assert len(pieces) == 1 and not pieces[0].trimmed
    assert reads_file.assemble(regions=None) == reads_file.data
    assert len(reads_file.reads) == 1  # streamed: the whole file in 1 MiB reads


def test_responses_end_with_the_eof_marker(reads_file: FileUnderTest) -> None:
    eof = EOF_BLOCK if reads_file.fmt is Format.BAM else EOF_CONTAINER_3
    assert reads_file.assemble([Region("chr1", 0, 100)]).endswith(eof)
    assert reads_file.assemble(None, header_only=True).endswith(eof)


def test_bam_regions_inside_blocks_are_trimmed(files: Fixtures) -> None:
    bam: FileUnderTest = files.bam_bai
    pieces = bam.plan([Region("chr1", 200_000, 230_000)])
    trimmed = [p for p in pieces if p.trimmed]
    assert trimmed, "a mid-contig region should start or end inside a block"
    assert all(p.end - p.start <= MAX_BLOCK_SIZE for p in trimmed)


def test_small_region_reads_little_of_the_file(reads_file: FileUnderTest) -> None:
    """The planner reads the header and a few block or container headers, not the file."""
    reads_file.plan([Region("chr2", 100_000, 101_000)])
    assert sum(end - start for start, end in reads_file.reads) < reads_file.size // 4
    data = reads_file.assemble([Region("chr2", 100_000, 101_000)])
    assert len(data) < reads_file.size // 4


def test_cram_is_served_by_whole_containers(files: Fixtures) -> None:
    cram: FileUnderTest = files.cram
    pieces = cram.plan([Region("chr2", 60_000, 140_000)])
    assert not any(p.trimmed for p in pieces)
    assert pieces[0].start == 0 and pieces[-1].literal == EOF_CONTAINER_3
    assert len(pieces) >= 3  # header, containers (coalesced when adjacent), EOF


def test_samtools_region_query_on_the_assembled_bam(files: Fixtures, tmp_path: Path) -> None:
    bam: FileUnderTest = files.bam_csi
    path = check_region(bam, [Region("chr2", 60_000, 140_000)], tmp_path)
    count = pysam.samtools.view("-c", str(path), "chr2:60001-140000")
    assert int(str(count)) == len(alignment_records(bam.path, Region("chr2", 60_000, 140_000)))


def test_header_ending_inside_a_block_is_trimmed(files: Fixtures, tmp_path: Path) -> None:
    """In the re-blocked BAM the header shares its block with the first reads."""
    packed: FileUnderTest = files.packed_bam
    header, eof = packed.plan(None, header_only=True)
    assert header.trimmed and header.trim_end and eof.literal == EOF_BLOCK
    path = write_assembled(packed.assemble(None, header_only=True), Format.BAM, tmp_path)
    assert alignment_records(path, None) == []


def test_raw_pieces_are_streamed_in_bounded_reads(files: Fixtures) -> None:
    bam = files.bam_bai
    read = bam.reader()
    parts = list(render(Piece(0, bam.size), read, chunk_size=50_000))
    assert b"".join(parts) == bam.data
    assert max(len(p) for p in parts) == 50_000
    assert all(end - start <= 50_000 for start, end in bam.reads)
