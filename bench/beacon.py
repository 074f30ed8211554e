"""Beacon variant index: load speed, index size and memory, query latency, against bcftools.

A VCF is generated with numpy (``--samples`` columns, ``--records`` records on chromosome 22 at
the density of a 1000 Genomes slice, a neutral allele-frequency spectrum: P(c copies) ∝ 1/c;
phased GT only; 8 % indels, 2 % tri-allelic), bgzipped in BGZF blocks of the default level on
both cores and tabix-indexed with pysam. A fresh node archives it encrypted, as the pipeline
leaves a file, and releases it in a dataset. Then, in one run:

- load: ``index_dataset`` in a child process (decryption from the archive, parsing, SQLite
  inserts), records/s, its peak RSS, and the index's size on disk;
- beside it, on the same file: BGZF inflation alone on one core, over the first blocks;
- queries: ``find_alleles`` directly, p50/p95 over random existing alleles (sequence queries)
  and random 1 Mb windows (range queries, complete answers and as the API asks them, capped at
  10,001 alleles); then the same questions over HTTP (``/beacon/g_variants``, count
  granularity, a reader with a grant) on the node app in a separate process;
- bcftools (pysam's bundled copy, in process, from the tabix index) answering the same questions:
  a site's carriers (``query -r POS -i 'REF=.. && ALT=.. && GT="alt"'``) and a window's carriers
  (``query -r WINDOW -i 'GT="alt"'``);

``--scale`` loads smaller files at 1,000, 10,000 and 100,000 samples instead and reports load
time, index size and memory per sample count (docs/scale.md).

    .venv/bin/python bench/beacon.py [--samples 2504] [--records 1000000] [--dir /tmp]
    .venv/bin/python bench/beacon.py --scale
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pysam
from pysam import bcftools
from sqlalchemy import create_engine, func, make_url, select

from genofed import crypt4gh, db
from genofed.access.tokens import issue_token
from genofed.beacon.index import VariantQuery, find_alleles
from genofed.config import Settings, load_settings
from genofed.metadata.accessions import allocate
from genofed.node.directory import init_node
from genofed.storage import open_store
from served import ServedApp

CHROM, CHROM_LENGTH, FIRST_POS = "22", 50_818_468, 16_050_000
MEAN_GAP = 33  # bp between records: ~30,000 variants per Mb, as in 1000 Genomes chromosome 22
CHUNK = 2000  # records per generation job (fewer for many samples)
BGZF_INPUT = 65280
READER = "reader@bench.example"
TARGETS = {"load": 20_000, "allele_ms": 20.0, "range_ms": 100.0}
API_CAP = 10_001  # the API asks find_alleles for at most this many alleles
SCALE = ((1_000, 200_000), (10_000, 50_000), (100_000, 5_000))
LOAD = """
import json, sys, time
from pathlib import Path
from genofed import db
from genofed.beacon.index import index_dataset
from genofed.config import load_settings
settings = load_settings(Path(sys.argv[1]), embedded_workers=False)
engine = db.make_engine(settings.database_url)
start = time.perf_counter()
report = index_dataset(engine, settings, sys.argv[2])
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "records": report.records, "alleles": report.alleles,
                  "peak_kib": peak}))
"""
SERVER = """
import socket, sys, uvicorn
from pathlib import Path
from genofed.config import load_settings
from genofed.node.app import create_app
app = create_app(load_settings(Path(sys.argv[1]), embedded_workers=False))
if not any(getattr(route, "path", "").startswith("/beacon") for route in app.routes):
    from genofed.beacon.api import router
    app.include_router(router)
config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[2]))])
"""


# -- the VCF ------------------------------------------------------------------------------------


def _bgzf(data: bytes) -> bytes:
    """BGZF blocks of ``data`` at zlib's default level, as bgzip writes them."""
    out = []
    for begin in range(0, len(data), BGZF_INPUT):
        piece = data[begin : begin + BGZF_INPUT]
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        deflated = packer.compress(piece) + packer.flush()
        header = struct.pack(
            "<4BI2BH2BHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(deflated) + 25
        )
        out += [header, deflated, struct.pack("<II", zlib.crc32(piece), len(piece))]
    return b"".join(out)


EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _spectrum(n: int) -> np.ndarray:
    """P(c alternate copies) for c = 1..2n-1 under the neutral spectrum, ∝ 1/c."""
    weights = 1.0 / np.arange(1, 2 * n)
    return weights / weights.sum()


def _records(job: tuple[int, int, int, np.ndarray]) -> bytes:
    """VCF lines for ``len(positions)`` records, bgzipped (runs in a worker process)."""
    seed, n, first_id, positions = job
    rng = np.random.default_rng(seed)
    k = len(positions)
    copies = rng.choice(np.arange(1, 2 * n), size=k, p=_spectrum(n))
    haplotypes = np.zeros((k, 2 * n), np.uint8)
    rows = np.repeat(np.arange(k), copies)
    haplotypes[rows, rng.integers(0, 2 * n, rows.size)] = 1
    kinds = rng.random(k)
    triallelic = kinds >= 0.98
    second = (haplotypes == 1) & triallelic[:, None] & (rng.random((k, 2 * n)) < 0.3)
    haplotypes[second] = 2
    text = np.empty((k, n, 4), np.uint8)
    text[:, :, 0] = 48 + haplotypes[:, 0::2]
    text[:, :, 1] = ord("|")
    text[:, :, 2] = 48 + haplotypes[:, 1::2]
    text[:, :, 3] = 9
    text[:, -1, 3] = 10
    bases = np.frombuffer(b"ACGT", np.uint8)
    refs = rng.integers(0, 4, k)
    lines = []
    for i in range(k):
        ref = chr(bases[refs[i]])
        alt = chr(bases[(refs[i] + 1 + i % 3) % 4])
        if kinds[i] < 0.04:
            ref, alt = ref + "".join(rng.choice(list("ACGT"), 1 + i % 5)), ref  # deletion
        elif kinds[i] < 0.08:
            alt = ref + "".join(rng.choice(list("ACGT"), 1 + i % 5))  # insertion
        elif triallelic[i]:
            alt = f"{alt},{next(b for b in 'ACGT' if b not in (ref, alt))}"
        counts = [int((haplotypes[i] == a).sum()) for a in range(1, 3 if triallelic[i] else 2)]
        info = f"AC={','.join(map(str, counts))};AN={2 * n};NS={n}"
        prefix = f"{CHROM}\t{positions[i]}\trs{first_id + i}\t{ref}\t{alt}\t100\tPASS\t{info}\tGT\t"
        lines.append(prefix.encode() + text[i].tobytes())
    return _bgzf(b"".join(lines))


def generate(path: Path, samples: int, records: int, seed: int = 22) -> float:
    """Write the VCF; returns the seconds it took (both cores)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    gaps = rng.geometric(1 / MEAN_GAP, records)
    positions = FIRST_POS + np.cumsum(gaps)
    assert positions[-1] < CHROM_LENGTH, "too many records for chromosome 22 at this density"
    names = "\t".join(f"HG{number:05d}" for number in range(samples))
    header = (
        "##fileformat=VCFv4.2\n"
        f"##contig=<ID={CHROM},length={CHROM_LENGTH},assembly=GRCh38>\n"
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Alternate allele count">\n'
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Called alleles">\n'
        '##INFO=<ID=NS,Number=1,Type=Integer,Description="Samples with data">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{names}\n"
    )
    chunk = max(10, min(CHUNK, 4_000_000 // samples))  # bounded memory per job
    jobs = (
        (seed * 1_000_003 + begin, samples, begin, positions[begin : begin + chunk])
        for begin in range(0, records, chunk)
    )
    with path.open("wb") as out, ProcessPoolExecutor(2) as pool:
        out.write(_bgzf(header.encode()))
        for block in pool.map(_records, jobs):
            out.write(block)
        out.write(EOF_BLOCK)
    return time.perf_counter() - started


def inflate_rate(path: Path, limit: int = 256 << 20) -> float:
    """Records/s of BGZF inflation alone on one core, over the file's first ``limit`` bytes."""
    with path.open("rb") as source:
        data = source.read(limit)
    pos = inflated = lines = 0
    started = time.perf_counter()
    while pos + 18 <= len(data):
        size = struct.unpack_from("<H", data, pos + 16)[0] + 1
        if pos + size > len(data):
            break
        block = zlib.decompress(data[pos + 18 : pos + size - 8], -15)
        lines += block.count(b"\n")
        inflated += size
        pos += size
    return lines / (time.perf_counter() - started)


# -- the node -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    settings: Settings
    config: Path
    dataset: str


def node_with(work: Path, vcf: Path) -> Node:
    """A fresh node whose archive holds ``vcf`` in a released dataset granted to the reader."""
    made = init_node(work / "node", name="Bench node", country="BE")
    settings = load_settings(made.config_file, embedded_workers=False)
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    sealed = work / "sealed.c4gh"
    with vcf.open("rb") as plain, sealed.open("wb") as out:
        crypt4gh.encrypt(plain, out, [public])
    engine = db.make_engine(settings.database_url)
    with db.session_scope(engine) as session, sealed.open("rb") as stream:
        header = crypt4gh.split(stream)
        file = db.ArchiveFile(
            submitter="bench",
            inbox_path=f"bench/{vcf.name}.c4gh",
            state=db.FileState.READY,
            accession=str(allocate(session, settings.country, "file")),
            header=header,
            archive_size=sealed.stat().st_size - len(header),
            decrypted_size=vcf.stat().st_size,
        )
        session.add(file)
        session.flush()
        file.archive_path = f"bench/{file.id}"
        open_store(settings.archive).put(file.archive_path, stream)
        dataset = db.MetadataObject(
            kind=db.ObjectKind.DATASET,
            accession=str(allocate(session, settings.country, "dataset")),
            alias="bench",
            submitter="bench",
            status=db.ObjectStatus.RELEASED,
            body={"title": "Bench"},
        )
        session.add(dataset)
        session.flush()
        session.add(db.ObjectFile(object_id=dataset.id, file_id=file.id))
        session.add(
            db.Grant(
                subject=READER,
                dataset_accession=str(dataset.accession),
                granted_by="bench",
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        accession = str(dataset.accession)
    engine.dispose()
    sealed.unlink()
    return Node(settings, made.config_file, accession)


@dataclass(frozen=True)
class Loaded:
    seconds: float
    wall: float
    records: int
    alleles: int
    peak_rss: int  # bytes
    db_bytes: int
    carrier_bytes: int


def load(node: Node) -> Loaded:
    """``index_dataset`` in a child process, timed inside it; its peak RSS is its own VmHWM
    (``ru_maxrss`` would count this process's pages at the fork)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(node.config), node.dataset],
        stdout=subprocess.PIPE,
        check=True,
    )
    wall = time.perf_counter() - started
    found = json.loads(done.stdout)
    size, carriers = index_size(node.settings.database_url)
    return Loaded(
        found["seconds"],
        wall,
        found["records"],
        found["alleles"],
        found["peak_kib"] * 1024,
        size,
        carriers,
    )


def index_size(url: str) -> tuple[int, int]:
    """Bytes of the index on disk (the SQLite file; PostgreSQL's beacon tables with their
    indexes and TOAST), and of the carrier bitmaps in it."""
    engine = db.make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if not postgres:  # first, outside any transaction: the WAL into the file
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        carriers = connection.scalar(select(func.sum(func.length(db.BeaconAllele.carriers))))
        if postgres:
            tables = ("beacon_alleles", "beacon_samples", "beacon_sources")
            total = sum(
                int(connection.exec_driver_sql(f"SELECT pg_total_relation_size('{t}')").scalar())
                for t in tables
            )
        else:
            database = Path(url.removeprefix("sqlite:///"))
            total = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
    engine.dispose()
    return total, int(carriers or 0)


# -- queries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    start: int
    ref: str
    alt: str


def sample_sites(node: Node, count: int, seed: int = 1) -> list[Site]:
    """``count`` alleles of the index, drawn at random."""
    engine = db.make_engine(node.settings.database_url)
    with engine.connect() as connection:
        total = int(connection.scalar(select(func.max(db.BeaconAllele.id))) or 0)
        ids = random.Random(seed).sample(range(1, total + 1), min(count, total))
        table = db.BeaconAllele.__table__.c
        statement = select(table.start, table.ref, table.alt).where(table.id.in_(ids))
        rows = connection.execute(statement).all()
    engine.dispose()
    return [Site(*row) for row in rows]


def windows(count: int, last: int, seed: int = 2) -> list[tuple[int, int]]:
    """``count`` random 1 Mb windows inside the generated records' span."""
    rng = random.Random(seed)
    starts = [rng.randrange(FIRST_POS, max(FIRST_POS + 1, last - 1_000_000)) for _ in range(count)]
    return [(start, start + 1_000_000) for start in starts]


def timed(actions: Sequence[Callable[[], object]]) -> list[float]:
    """Milliseconds of each action, after one untimed warm-up."""
    actions[0]()
    timings = []
    for action in actions:
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentiles(timings: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def allele_query(site: Site) -> VariantQuery:
    return VariantQuery(
        "GRCh38", CHROM, site.start, reference_bases=site.ref, alternate_bases=site.alt
    )


def range_query(window: tuple[int, int]) -> VariantQuery:
    return VariantQuery("GRCh38", CHROM, window[0], window[1])


def direct(
    node: Node, sites: Sequence[Site], spans: Sequence[tuple[int, int]]
) -> tuple[dict[str, list[float]], list[int]]:
    """``find_alleles`` timings, a session per question as the API opens them; and the number of
    alleles in each window."""
    engine = db.make_engine(node.settings.database_url)
    sessions = db.session_factory(engine)

    def ask(query: VariantQuery, limit: int | None = None) -> int:
        with sessions() as session:
            return len(find_alleles(session, [node.dataset], query, limit=limit))

    sizes = [ask(range_query(window)) for window in spans]
    results = {
        "allele": timed([partial(ask, allele_query(site)) for site in sites]),
        "range": timed([partial(ask, range_query(window)) for window in spans]),
        "range_api": timed([partial(ask, range_query(window), API_CAP) for window in spans]),
    }
    engine.dispose()
    return results, sizes


def with_bcftools(
    vcf: Path, sites: Sequence[Site], spans: Sequence[tuple[int, int]]
) -> dict[str, list[float]]:
    """bcftools answering the same questions from the tabix-indexed VCF: who carries the
    allele; who carries any allele of the window."""
    path = str(vcf)

    def site(s: Site) -> None:
        region = f"{CHROM}:{s.start + 1}-{s.start + 1}"
        expression = f'REF="{s.ref}" && ALT="{s.alt}" && GT="alt"'
        bcftools.query("-r", region, "-i", expression, "-f", "[%SAMPLE\t]\n", path)

    def window(w: tuple[int, int]) -> None:
        region = f"{CHROM}:{w[0] + 1}-{w[1]}"
        bcftools.query("-r", region, "-i", 'GT="alt"', "-f", "[%SAMPLE\t]\n", path)

    return {
        "allele": timed([partial(site, s) for s in sites]),
        "range": timed([partial(window, w) for w in spans]),
    }


def over_http(
    node: Node, sites: Sequence[Site], spans: Sequence[tuple[int, int]]
) -> dict[str, list[float]]:
    """``/beacon/g_variants`` at count granularity, as a reader with a grant (the guard lets
    readers through, so this times the index and the API, not the budget)."""
    server = ServedApp(SERVER, node.config, probe="/beacon/info", what="the node's server")
    token = issue_token(node.settings, READER, ["requester"])
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, timeout=60, headers=headers) as client:

            def get(parameters: dict[str, object]) -> None:
                params = {
                    "assemblyId": "GRCh38",
                    "referenceName": CHROM,
                    "requestedGranularity": "count",
                    **parameters,
                }
                response = client.get("/beacon/g_variants", params=params)
                if response.status_code != 200:
                    raise SystemExit(f"g_variants answered {response.status_code}: {response.text}")
                if not response.json()["responseSummary"]["exists"]:
                    raise SystemExit(f"g_variants found nothing for {params}")

            alleles = [
                {"start": s.start, "referenceBases": s.ref, "alternateBases": s.alt} for s in sites
            ]
            ranges = [{"start": w[0], "end": w[1]} for w in spans]
            return {
                "allele": timed([partial(get, parameters) for parameters in alleles]),
                "range": timed([partial(get, parameters) for parameters in ranges]),
            }
    finally:
        server.stop()


# -- the report ---------------------------------------------------------------------------------


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def main_bench(args: argparse.Namespace, work: Path) -> None:
    vcf = prepare_vcf(args, work)
    inflate = inflate_rate(vcf)
    node = node_with(work, vcf)
    loaded = load(node)
    rate, per_allele = loaded.records / loaded.seconds, loaded.db_bytes / loaded.alleles
    took = f"{loaded.records:,} records, {loaded.alleles:,} alleles in {loaded.seconds:.1f} s"
    print(f"\nload: {took} ({loaded.wall:.1f} s with the process start-up)")
    print(f"  records/s             {rate:,.0f} (target >= {TARGETS['load']:,})")
    print(f"  BGZF inflation alone  {inflate:,.0f} records/s on one core, this file")
    print(f"  index size            {mib(loaded.db_bytes)}, {per_allele:,.0f} B/allele")
    print(f"  of it carrier bitmaps {mib(loaded.carrier_bytes)}")
    print(f"  peak RSS              {mib(loaded.peak_rss)}")
    last = FIRST_POS + args.records * MEAN_GAP
    sites = sample_sites(node, args.queries)
    spans = windows(args.ranges, last)
    mine, sizes = direct(node, sites, spans)
    theirs = with_bcftools(vcf, sites[: args.bcftools], spans[: args.bcftools_ranges])
    spread = f"{min(sizes):,}-{max(sizes):,}, {statistics.median(sizes):,.0f} on median"
    print(f"\nqueries, p50 / p95 ms: {len(sites)} alleles; {len(spans)} 1 Mb windows ({spread})")
    print(f"  {'':42} {'index':>17} {'bcftools':>17}   bcftools/index")
    rows = [
        ("single allele, find_alleles", mine["allele"], theirs["allele"]),
        ("1 Mb range, find_alleles, every allele", mine["range"], theirs["range"]),
        (f"1 Mb range, find_alleles(limit={API_CAP:,})", mine["range_api"], theirs["range"]),
    ]
    if args.http:
        http = over_http(node, sites, spans)
        rows += [
            ("single allele, HTTP /g_variants", http["allele"], theirs["allele"]),
            ("1 Mb range, HTTP /g_variants", http["range"], theirs["range"]),
        ]
    for name, ours, reference in rows:
        p50, p95 = percentiles(ours)
        r50, r95 = percentiles(reference)
        print(f"  {name:<42} {p50:7.2f} / {p95:7.2f} {r50:7.1f} / {r95:7.1f}   {r50 / p50:8,.0f}x")
    allele_ms, range_ms = TARGETS["allele_ms"], TARGETS["range_ms"]
    print(f"  targets over HTTP: p95 < {allele_ms:.0f} ms (allele), < {range_ms:.0f} ms (1 Mb)")


def prepare_vcf(args: argparse.Namespace, work: Path) -> Path:
    """The generated VCF and its tabix index (``--vcf``: one kept from an earlier run)."""
    vcf = args.vcf or work / "bench.vcf.gz"
    if args.vcf is None or not vcf.exists():
        seconds = generate(vcf, args.samples, args.records)
        started = time.perf_counter()
        pysam.tabix_index(str(vcf), preset="vcf", force=True)
        print(f"generated in {seconds:.0f} s, tabix index in {time.perf_counter() - started:.0f} s")
    size = mib(vcf.stat().st_size)
    print(f"VCF: {args.records:,} records x {args.samples:,} samples, {size} bgzipped")
    return vcf


SCALE_HEADER = (
    f"{'samples':>7} {'records':>9} {'bgzipped':>9} {'load s':>8} {'records/s':>10} "
    f"{'index':>9} {'B/allele':>9} {'carriers/allele':>16} {'peak RSS':>9}"
)


def scale_bench(args: argparse.Namespace, work: Path) -> None:
    print(SCALE_HEADER)
    for samples, records in SCALE:
        folder = work / f"s{samples}"
        folder.mkdir()
        vcf = folder / "scale.vcf.gz"
        generate(vcf, samples, records)
        with postgres_database(args.postgres):  # a fresh database for each node
            loaded = load(node_with(folder, vcf))
        rate = loaded.records / loaded.seconds
        per_allele = loaded.db_bytes / loaded.alleles
        carriers = loaded.carrier_bytes / loaded.alleles
        print(
            f"{samples:>7,} {records:>9,} {mib(vcf.stat().st_size):>9} {loaded.seconds:8.1f} "
            f"{rate:10,.0f} {mib(loaded.db_bytes):>9} {per_allele:9,.0f} {carriers:16,.0f} "
            f"{mib(loaded.peak_rss):>9}"
        )
        shutil.rmtree(folder)


def warm_memory(gib: int) -> None:
    """Touch ``gib`` GiB in a short-lived process (see bench/ingest.py: this VM backs guest
    memory lazily, which slows the first writes of fresh pages)."""
    code = f"b = bytearray({gib} * 1024**3); b[::4096] = b'\\1' * len(b[::4096])"
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2504)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500, help="single-allele queries")
    parser.add_argument("--ranges", type=int, default=60, help="1 Mb range queries")
    parser.add_argument("--bcftools", type=int, default=100, help="single alleles for bcftools")
    parser.add_argument("--bcftools-ranges", type=int, default=10, help="windows for bcftools")
    parser.add_argument("--vcf", type=Path, help="keep the generated VCF here and reuse it")
    parser.add_argument("--no-http", dest="http", action="store_false")
    parser.add_argument("--scale", action="store_true", help="1k, 10k, 100k samples instead")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--warm-gib", type=int, default=4)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="index in a new database of this PostgreSQL server (dropped after), not SQLite",
    )
    args = parser.parse_args()
    if args.warm_gib:
        warm_memory(args.warm_gib)
    work = Path(tempfile.mkdtemp(prefix="genofed-beacon-bench-", dir=args.dir))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; work in {work}")
    try:
        if args.scale:
            scale_bench(args, work)
        else:
            with postgres_database(args.postgres):
                main_bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def postgres_database(server: str | None) -> Iterator[None]:
    """With ``server``, a fresh database on it for the nodes this run makes (through
    GENOFED_DATABASE_URL, which their child processes inherit), dropped at the end."""
    if server is None:
        yield
        return
    name = f"genofed_beacon_bench_{os.getpid()}"
    admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(server).set(database=name, drivername="postgresql+psycopg")
    os.environ["GENOFED_DATABASE_URL"] = url.render_as_string(hide_password=False)
    try:
        yield
    finally:
        del os.environ["GENOFED_DATABASE_URL"]
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()
