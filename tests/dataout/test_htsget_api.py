"""htsget over the archive: the reference htsget client fetches regions of encrypted BAM and VCF
files, and samtools/bcftools read what it wrote, record for record like the original."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pysam
import pytest
from dataout_support import archive_file, grant, make_node, release_dataset

import htsget
from genofed import db
from genofed.access import audit
from genofed.access.tokens import issue_token
from genofed.config import Settings
from genofed.node.app import create_app
from genofed.node.server import free_socket, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "htsget"))
from htsget_support import (
    build_bam,
    build_bcf,
    build_cram,
    build_vcf,
    header_text,
    index_assembled,
    records,
)

from genofed.htsget import Format, Region

READER = "bob@ulb.be"


@dataclass
class Served:
    settings: Settings
    url: str
    bam: str
    vcf: str
    bam_path: Path
    vcf_path: Path
    others: dict[Format, tuple[str, Path]]  # CRAM and BCF: accession, original
    fasta: Path

    def token(self, user: str = READER) -> str:
        return issue_token(self.settings, user, ["requester"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("htsget-node")
    bam, fasta = build_bam(folder)
    vcf = build_vcf(folder)
    cram, bcf = build_cram(bam, fasta), build_bcf(vcf)
    sock = free_socket()
    settings = make_node(folder / "node", http={"port": sock.getsockname()[1]})
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session:
        paths = [bam, vcf, cram, bcf]
        indexes = [Path(f"{bam}.bai"), Path(f"{vcf}.tbi"), Path(f"{cram}.crai"), Path(f"{bcf}.csi")]
        archived = [
            archive_file(session, settings, path.read_bytes(), name=path.name)
            for path in [*paths, *indexes]
        ]
        dataset = release_dataset(session, settings, archived, "Reads and calls")
        grant(session, READER, dataset)
        ids = [str(file.accession) for file in archived]
    engine.dispose()
    others = {Format.CRAM: (ids[2], cram), Format.BCF: (ids[3], bcf)}
    with serving(create_app(settings), sock) as url:
        yield Served(settings, url, ids[0], ids[1], bam, vcf, others, fasta)


def _fetch(served: Served, endpoint: str, accession: str, out: Path, **query: object) -> None:
    with open(out, "wb") as handle:
        htsget.get(
            f"{served.url}/htsget/{endpoint}/{accession}",
            handle,
            bearer_token=served.token(),
            max_retries=0,
            **query,
        )


@pytest.mark.parametrize(
    ("name", "start", "end"), [("chr1", 1_000_000, 1_400_000), ("3", None, None), ("chr2", 0, 5000)]
)
def test_the_htsget_client_fetches_a_vcf_region(
    served: Served, tmp_path: Path, name: str, start: int | None, end: int | None
) -> None:
    out = tmp_path / "region.vcf.gz"
    _fetch(served, "variants", served.vcf, out, reference_name=name, start=start, end=end)
    pysam.bcftools.view("-h", str(out))  # bcftools reads it
    index_assembled(out, Format.VCF)
    region = Region(name, start, end)
    assert header_text(out, Format.VCF) == header_text(served.vcf_path, Format.VCF)
    fetched = records(out, Format.VCF, region, None)
    assert fetched and fetched == records(served.vcf_path, Format.VCF, region, None)


def test_the_htsget_client_fetches_a_bam_region(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "region.bam"
    region = Region("chr2", 200_000, 260_000)
    _fetch(served, "reads", served.bam, out, reference_name="chr2", start=200_000, end=260_000)
    pysam.samtools.quickcheck(str(out))
    index_assembled(out, Format.BAM)
    fetched = records(out, Format.BAM, region, None)
    assert fetched and fetched == records(served.bam_path, Format.BAM, region, None)


@pytest.mark.parametrize(
    ("fmt", "endpoint", "suffix"),
    [(Format.CRAM, "reads", ".cram"), (Format.BCF, "variants", ".bcf")],
)
def test_cram_and_bcf_regions_come_through_too(
    served: Served, tmp_path: Path, fmt: Format, endpoint: str, suffix: str
) -> None:
    accession, original = served.others[fmt]
    region = Region("chr1", 100_000, 200_000)
    out = tmp_path / f"region{suffix}"
    _fetch(served, endpoint, accession, out, reference_name="chr1", start=100_000, end=200_000)
    index_assembled(out, fmt)
    reference = served.fasta if fmt is Format.CRAM else None
    fetched = records(out, fmt, region, reference)
    assert fetched and fetched == records(original, fmt, region, reference)


def test_the_header_class_gives_the_header_and_no_record(served: Served, tmp_path: Path) -> None:
    ticket = httpx.get(
        f"{served.url}/htsget/variants/{served.vcf}",
        params={"class": "header"},
        headers={"Authorization": f"Bearer {served.token()}"},
    ).json()["htsget"]
    [part] = ticket["urls"]
    assert part["class"] == "header"
    data = httpx.get(part["url"], headers=part["headers"]).content
    out = tmp_path / "header.vcf.gz"
    out.write_bytes(data)
    assert header_text(out, Format.VCF) == header_text(served.vcf_path, Format.VCF)
    assert records(out, Format.VCF, None, None) == []


def test_refusals_use_htsget_errors_and_serve_nothing(served: Served) -> None:
    base = f"{served.url}/htsget/variants/{served.vcf}"
    stranger = httpx.get(base, headers={"Authorization": f"Bearer {served.token('mallory')}"})
    assert stranger.status_code == 403
    assert stranger.json()["htsget"]["error"] == "PermissionDenied"
    anonymous = httpx.get(base)
    assert anonymous.status_code == 401
    assert anonymous.json()["htsget"]["error"] == "InvalidAuthentication"
    mine = {"Authorization": f"Bearer {served.token()}"}
    unknown = httpx.get(base, params={"referenceName": "chr99"}, headers=mine)
    assert unknown.status_code == 404 and "chr99" in unknown.json()["htsget"]["message"]
    backwards = httpx.get(
        base, params={"referenceName": "chr1", "start": 10, "end": 5}, headers=mine
    )
    assert backwards.status_code == 400 and backwards.json()["htsget"]["error"] == "InvalidRange"
    wrong = httpx.get(f"{served.url}/htsget/reads/{served.vcf}", headers=mine)
    assert wrong.json()["htsget"]["error"] == "UnsupportedFormat"
    ticket = httpx.get(base, params={"referenceName": "3"}, headers=mine).json()["htsget"]
    [part] = ticket["urls"]
    other_file = part["url"].rsplit("/", 1)[0] + "/not-this-file"
    swapped = httpx.get(other_file, headers=part["headers"])
    assert swapped.status_code == 403
    forged = httpx.get(part["url"], headers={"Authorization": f"Bearer {served.token()}"})
    assert forged.status_code == 401  # a bearer token is not a ticket


def test_tickets_and_data_are_audited(served: Served, tmp_path: Path) -> None:
    _fetch(served, "variants", served.vcf, tmp_path / "x.vcf.gz", reference_name="3")
    engine = db.make_engine(served.settings.database_url)
    with db.session_scope(engine) as session:
        actions = {e.action for e in audit.query(session, actor=READER, limit=1000)}
    engine.dispose()
    assert {"htsget.ticket", "htsget.data"} <= actions
