"""Session fixtures for the htsget planner: BAM, CRAM, VCF and BCF files with every index kind.

They are built once per xdist worker (about a second) in a session temporary directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pysam
import pysam.bcftools
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from htsget_support import (
    FileUnderTest,
    Fixtures,
    build_bam,
    build_bcf,
    build_cram,
    build_vcf,
    repack,
)

from genofed.htsget import Format


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    directory = tmp_path_factory.mktemp("htsget-files")
    bam, fasta = build_bam(directory)
    cram = build_cram(bam, fasta)
    cram31 = build_cram(bam, fasta, version="3.1")
    vcf = build_vcf(directory)
    bcf = build_bcf(vcf)
    packed_bam = repack(bam, "packed.bam")
    pysam.index(str(packed_bam))
    packed_vcf = repack(vcf, "packed.vcf.gz")
    pysam.tabix_index(str(packed_vcf), preset="vcf", force=True)
    packed_bcf = repack(bcf, "packed.bcf")
    pysam.bcftools.index("--csi", str(packed_bcf))
    return Fixtures(
        bam_bai=FileUnderTest(bam, Format.BAM, Path(f"{bam}.bai"), "bai"),
        bam_csi=FileUnderTest(bam, Format.BAM, Path(f"{bam}.csi"), "csi"),
        packed_bam=FileUnderTest(packed_bam, Format.BAM, Path(f"{packed_bam}.bai"), "bai"),
        packed_vcf=FileUnderTest(packed_vcf, Format.VCF, Path(f"{packed_vcf}.tbi"), "tbi"),
        packed_bcf=FileUnderTest(packed_bcf, Format.BCF, Path(f"{packed_bcf}.csi"), "csi"),
        cram=FileUnderTest(cram, Format.CRAM, Path(f"{cram}.crai"), "crai", fasta),
        cram31=FileUnderTest(cram31, Format.CRAM, Path(f"{cram31}.crai"), "crai", fasta),
        vcf_tbi=FileUnderTest(vcf, Format.VCF, Path(f"{vcf}.tbi"), "tbi"),
        vcf_csi=FileUnderTest(vcf, Format.VCF, Path(f"{vcf}.csi"), "csi"),
        bcf_csi=FileUnderTest(bcf, Format.BCF, Path(f"{bcf}.csi"), "csi"),
    )


@pytest.fixture(params=["bam_bai", "bam_csi", "packed_bam", "cram", "cram31"])
def reads_file(request: pytest.FixtureRequest, files: Fixtures) -> FileUnderTest:
    """Each reads file with each of its index kinds."""
    return getattr(files, request.param)  # type: ignore[no-any-return]


@pytest.fixture(params=["vcf_tbi", "vcf_csi", "bcf_csi", "packed_vcf", "packed_bcf"])
def variants_file(request: pytest.FixtureRequest, files: Fixtures) -> FileUnderTest:
    """Each variants file with each of its index kinds."""
    return getattr(files, request.param)  # type: ignore[no-any-return]


@pytest.fixture(
    params=["bam_bai", "bam_csi", "packed_bam", "cram", "cram31", "vcf_tbi", "vcf_csi", "bcf_csi"]
)
def any_file(request: pytest.FixtureRequest, files: Fixtures) -> FileUnderTest:
    """Every file and index kind."""
    return getattr(files, request.param)  # type: ignore[no-any-return]
