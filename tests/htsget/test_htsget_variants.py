"""Bgzipped VCF (with .tbi and .csi) and BCF (with .csi): header class, regions and whole files,
assembled from the planned pieces and checked against pysam's own region queries."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from htsget_support import (
    FileUnderTest,
    Fixtures,
    check_region,
    check_tools_read,
    header_text,
    variant_records,
    write_assembled,
)

from genofed.htsget import Region, UnknownReference
from genofed.htsget.bgzf import EOF_BLOCK, MAX_BLOCK_SIZE, compress
from genofed.htsget.headers import contig_dictionary

REGIONS = {
    "contig start": Region("chr1", 0, 20_000),
    "middle": Region("chr1", 1_000_000, 1_100_000),
    "across blocks": Region("chr2", 200_000, 700_000),
    "whole contig": Region("3"),
    "start only": Region("chr2", 1_000_000),
    "end only": Region("chr1", None, 5_000),
    "inside long deletions": Region("chr1", 2_700_000, 2_700_010),
    "empty range": Region("chr1", 500_000, 500_000),
    "declared contig without records": Region("chrX"),
    "beyond the contig": Region("3", 10_000_000, 20_000_000),
}


@pytest.mark.parametrize("region", REGIONS.values(), ids=REGIONS.keys())
def test_region_has_exactly_the_records_of_a_direct_query(
    variants_file: FileUnderTest, region: Region, tmp_path: Path
) -> None:
    check_region(variants_file, [region], tmp_path)


def test_several_regions_on_several_contigs(variants_file: FileUnderTest, tmp_path: Path) -> None:
    regions = [
        Region("chr2", 300_000, 400_000),
        Region("chr1", 10_000, 600_000),
        Region("chr1", 550_000, 900_000),
        Region("3", 0, 1),
    ]
    check_region(variants_file, regions, tmp_path)


def test_header_class_is_the_header_alone(variants_file: FileUnderTest, tmp_path: Path) -> None:
    path = write_assembled(
        variants_file.assemble(None, header_only=True), variants_file.fmt, tmp_path
    )
    assert header_text(path, variants_file.fmt) == header_text(
        variants_file.path, variants_file.fmt
    )
    assert variant_records(path, None) == []
    check_tools_read(path, variants_file.fmt)


def test_no_region_is_the_whole_file(variants_file: FileUnderTest) -> None:
    assert variants_file.assemble(regions=None) == variants_file.data


def test_regions_inside_blocks_are_trimmed_and_end_with_eof(variants_file: FileUnderTest) -> None:
    pieces = variants_file.plan([Region("chr1", 1_000_000, 1_100_000)])
    trimmed = [p for p in pieces if p.trimmed]
    assert trimmed and all(p.end - p.start <= MAX_BLOCK_SIZE for p in trimmed)
    assert pieces[-1].literal == EOF_BLOCK


def test_unplaced_reads_do_not_exist_in_variant_files(variants_file: FileUnderTest) -> None:
    with pytest.raises(UnknownReference, match=r"'\*'"):
        variants_file.plan([Region("*")])


def without_tabix_aux(csi: bytes) -> bytes:
    """The same CSI without its aux data: names then come from the VCF header's contigs."""
    raw = gzip.decompress(csi)
    (l_aux,) = struct.unpack_from("<i", raw, 12)
    return compress(raw[:12] + struct.pack("<i", 0) + raw[16 + l_aux :]) + EOF_BLOCK


def test_csi_without_names_follows_the_header_contigs(files: Fixtures, tmp_path: Path) -> None:
    vcf: FileUnderTest = files.vcf_csi
    bare = tmp_path / "bare.csi"
    bare.write_bytes(without_tabix_aux(vcf.index_path.read_bytes()))
    bare_vcf = FileUnderTest(vcf.path, vcf.fmt, bare, "csi")
    for region in (Region("chr2", 200_000, 700_000), Region("3"), Region("chrX")):
        check_region(bare_vcf, [region], tmp_path)


def test_contig_dictionary_numbers_by_idx_then_by_order() -> None:
    text = "\n".join(
        [
            "##fileformat=VCFv4.2",
            "##contig=<ID=chr1,length=10>",
            "##contig=<ID=chr2,length=10,IDX=3>",
            "##contig=<ID=chrM>",
            '##INFO=<ID=DP,Number=1,Type=Integer,Description="x">',
            "#CHROM\tPOS",
        ]
    )
    assert contig_dictionary(text) == ("chr1", "", "chrM", "chr2")
