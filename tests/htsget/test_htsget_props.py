"""Property-based: random regions (and pairs of regions) on the BAM and VCF fixtures assemble to
files holding exactly the records a direct region query returns."""

from __future__ import annotations

import pytest
from htsget_support import READ_REFERENCES, VCF_CONTIGS, FileUnderTest, Fixtures, check_region
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genofed.htsget import Region

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def regions(contigs: list[tuple[str, int]]) -> st.SearchStrategy[Region]:
    """A region on one of ``contigs``: any start (sometimes open), short to very long."""

    def on(contig: tuple[str, int]) -> st.SearchStrategy[Region]:
        name, length = contig
        start = st.one_of(st.none(), st.integers(0, length + 1000))
        span = st.one_of(st.none(), st.integers(0, 2_000), st.integers(0, length))
        return st.builds(
            lambda s, n: Region(name, s, None if n is None else (s or 0) + n), start, span
        )

    return st.sampled_from(contigs).flatmap(on)


@pytest.mark.parametrize("name", ["bam_bai", "bam_csi", "packed_bam", "cram"])
@SETTINGS
@given(region_list=st.lists(regions(READ_REFERENCES), min_size=1, max_size=2))
def test_random_bam_regions(
    files: Fixtures, name: str, region_list: list[Region], tmp_path_factory: pytest.TempPathFactory
) -> None:
    f: FileUnderTest = getattr(files, name)
    check_region(f, region_list, tmp_path_factory.mktemp("props"))


@pytest.mark.parametrize("name", ["vcf_tbi", "packed_vcf", "packed_bcf"])
@SETTINGS
@given(region_list=st.lists(regions(VCF_CONTIGS), min_size=1, max_size=2))
def test_random_variant_regions(
    files: Fixtures, name: str, region_list: list[Region], tmp_path_factory: pytest.TempPathFactory
) -> None:
    f: FileUnderTest = getattr(files, name)
    check_region(f, region_list, tmp_path_factory.mktemp("props"))
