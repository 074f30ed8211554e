"""Variant files for the index tests: genotype matrices written as VCF (plain, gzip, BGZF) or
BCF, the counts they should give computed here in plain Python, and the same counts from
bcftools (pysam's bundled copy) for the answers that must equal bcftools'."""

from __future__ import annotations

import gzip
import io
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysam
from pysam import bcftools
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from genofed import crypt4gh, db
from genofed.beacon.index import FileReport, load_variants
from genofed.config import Settings, load_settings
from genofed.metadata.accessions import allocate
from genofed.node.directory import init_node
from genofed.storage import open_store

GRCH38_CONTIGS = {"1": 248956422, "2": 242193529, "X": 156040895, "Y": 57227415, "MT": 16569}
GRCH37_CONTIGS = {"1": 249250621, "2": 243199373, "X": 155270560}

Genotype = tuple[int | None, ...]  # allele indexes, None for '.'; one (haploid) or two


@dataclass
class Record:
    chrom: str
    pos: int  # 1-based, as in the VCF
    ref: str
    alts: list[str]
    genotypes: list[Genotype] = field(default_factory=list)
    phased: bool = True
    info: str = "."
    extra_format: bool = False  # FORMAT GT:DP with a DP value per sample

    def line(self) -> str:
        fields = [self.chrom, str(self.pos), ".", self.ref, ",".join(self.alts) or ".", "50",
                  "PASS", self.info]  # fmt: skip
        if self.genotypes:
            fields.append("GT:DP" if self.extra_format else "GT")
            sep = "|" if self.phased else "/"
            for number, genotype in enumerate(self.genotypes):
                text = sep.join("." if a is None else str(a) for a in genotype)
                fields.append(f"{text}:{10 + number % 7}" if self.extra_format else text)
        return "\t".join(fields)


def vcf_text(
    records: Sequence[Record],
    samples: Sequence[str],
    contigs: dict[str, int] | None = None,
    *,
    prefix: str = "",
) -> str:
    contigs = GRCH38_CONTIGS if contigs is None else contigs
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={prefix}{name},length={length}>" for name, length in contigs.items()]
    lines += [
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End">',
        '##INFO=<ID=SVLEN,Number=A,Type=Integer,Description="SV length">',
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="AC">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="AN">',
        '##ALT=<ID=DEL,Description="Deletion">',
        '##ALT=<ID=DUP,Description="Duplication">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    ]
    header = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    if samples:
        header += "\tFORMAT\t" + "\t".join(samples)
    lines.append(header)
    lines += [record.line() for record in records]
    return "\n".join(lines) + "\n"


def write_vcf(path: Path, text: str, kind: str = "bgzf", *, index: bool = True) -> Path:
    """``text`` as a plain, gzipped or bgzipped (and tabix-indexed) VCF, or as BCF."""
    if kind == "plain":
        path.write_text(text)
        return path
    if kind == "gzip":
        path.write_bytes(gzip.compress(text.encode()))
        return path
    plain = path.with_name(path.name + ".txt")
    plain.write_text(text)
    if kind == "bcf":
        bcftools.view("-Ob", "-o", str(path), str(plain), catch_stdout=False)
        return path
    pysam.tabix_compress(str(plain), str(path), force=True)
    if index:
        pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


def random_records(
    rng: random.Random,
    n_samples: int,
    n_records: int,
    *,
    chroms: Sequence[str] = ("1", "2", "X"),
    prefix: str = "",
    missing: float = 0.05,
) -> list[Record]:
    """A mix: SNPs, MNPs, insertions, deletions, multi-allelic records (up to 3 ALTs), missing
    calls, haploid calls on X (every odd sample), phased and unphased lines, some with GT:DP."""
    records: list[Record] = []
    pos = {chrom: 1000 for chrom in chroms}
    for _ in range(n_records):
        chrom = rng.choice(chroms)
        pos[chrom] += rng.randint(1, 400)
        ref, alts = _alleles(rng)
        frequency = rng.choice([0.01, 0.05, 0.2, 0.5, 0.9])
        genotypes = []
        for sample in range(n_samples):
            ploidy = 1 if chrom == "X" and sample % 2 else 2
            genotype = tuple(
                None
                if rng.random() < missing
                else (rng.randint(1, len(alts)) if rng.random() < frequency else 0)
                for _ in range(ploidy)
            )
            genotypes.append(genotype)
        records.append(
            Record(
                f"{prefix}{chrom}",
                pos[chrom],
                ref,
                alts,
                genotypes,
                phased=rng.random() < 0.5,
                extra_format=rng.random() < 0.2,
            )
        )
    order = {f"{prefix}{chrom}": number for number, chrom in enumerate(chroms)}
    return sorted(records, key=lambda record: (order[record.chrom], record.pos))


def _alleles(rng: random.Random) -> tuple[str, list[str]]:
    bases = "ACGT"
    ref = rng.choice(bases)
    kind = rng.random()
    if kind < 0.6:
        return ref, [rng.choice([b for b in bases if b != ref])]
    if kind < 0.7:
        return ref, [ref + "".join(rng.choices(bases, k=rng.randint(1, 5)))]
    if kind < 0.8:
        return ref + "".join(rng.choices(bases, k=rng.randint(1, 8))), [ref]
    if kind < 0.85:
        return ref + "C", ["G" + rng.choice(bases)]
    others = [b for b in bases if b != ref]
    return ref, rng.sample(others, rng.randint(2, 3))


# -- expected counts ---------------------------------------------------------------------------

AlleleKey = tuple[str, int, str, str]  # chrom (normalized), 0-based start, ref, alt


@dataclass(frozen=True)
class Counts:
    ac: int
    an: int
    hom: int
    carriers: frozenset[int]  # sample columns


def expected_counts(records: Iterable[Record]) -> dict[AlleleKey, Counts]:
    """What the index should hold, computed the slow, obvious way (alleles nobody carries are
    left out)."""
    found: dict[AlleleKey, Counts] = {}
    for record in records:
        called = [a for genotype in record.genotypes for a in genotype if a is not None]
        for index, alt in enumerate(record.alts, start=1):
            ac = called.count(index)
            if not ac:
                continue
            carriers = frozenset(
                column for column, genotype in enumerate(record.genotypes) if index in genotype
            )
            hom = sum(1 for g in record.genotypes if len(g) == 2 and g[0] == g[1] == index)
            chrom = record.chrom.removeprefix("chr")
            found[(chrom, record.pos - 1, record.ref, alt)] = Counts(ac, len(called), hom, carriers)
    return found


def bcftools_counts(path: Path, samples: Sequence[str]) -> dict[AlleleKey, Counts]:
    """AC and AN as bcftools computes them (``view -s`` recalculates INFO/AC and AN), with
    multi-allelic records split by ``norm -m-any``; carriers are the samples bcftools selects
    with ``GT~"1"`` (any called copy of the allele: bcftools' ``GT="alt"`` would leave out
    half-missing calls such as ``./1``, whose copy AC counts), homozygotes those with
    ``GT="AA"``."""
    split = path.with_name(path.name + ".split.vcf")
    bcftools.norm("-m-any", "-Ov", "-o", str(split), str(path), catch_stdout=False)
    subset = path.with_name(path.name + ".ac.vcf")
    bcftools.view(
        "-s",
        ",".join(samples),
        "--force-samples",
        "-Ov",
        "-o",
        str(subset),
        str(split),
        catch_stdout=False,
    )
    column = {name: number for number, name in enumerate(samples)}
    site = "%CHROM\t%POS\t%REF\t%ALT"
    counts = {}
    for line in _lines(bcftools.query("-f", f"{site}\t%AC\t%AN\n", str(subset))):
        chrom, pos, ref, alt, ac, an = line.split("\t")
        counts[(chrom.removeprefix("chr"), int(pos) - 1, ref, alt)] = (int(ac), int(an))
    carriers = _selected(split, 'GT~"1"', column)
    homs = _selected(split, 'GT="AA"', column)
    return {
        key: Counts(ac, an, len(homs.get(key, ())), frozenset(carriers.get(key, ())))
        for key, (ac, an) in counts.items()
        if ac > 0
    }


def _selected(path: Path, expression: str, column: dict[str, int]) -> dict[AlleleKey, set[int]]:
    chosen: dict[AlleleKey, set[int]] = defaultdict(set)
    text = bcftools.query("-i", expression, "-f", "%CHROM\t%POS\t%REF\t%ALT[\t%SAMPLE]\n",
                          str(path))  # fmt: skip
    for line in _lines(text):
        chrom, pos, ref, alt, *names = line.split("\t")
        key = (chrom.removeprefix("chr"), int(pos) - 1, ref, alt)
        chosen[key].update(column[name] for name in names if name)
    return chosen


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def load(
    engine: Engine,
    path: Path,
    *,
    dataset: str = "EGAD00000000001",
    file_id: str | None = None,
    assembly: str | None = "GRCh38",
    threads: int = 2,
    matched: dict[str, str] | None = None,
) -> FileReport:
    """Load ``path`` into ``dataset``'s index as ``file_id`` (its name by default)."""
    with open(path, "rb") as source:
        return load_variants(
            engine,
            dataset,
            file_id or path.name,
            source,
            name=path.name,
            assembly=assembly,
            threads=threads,
            match_samples=(lambda _s, _n: matched) if matched else None,
        )


def indexed(engine: Engine, dataset: str = "EGAD00000000001") -> dict[AlleleKey, Counts]:
    """Every allele of ``dataset``'s index, through :func:`find_alleles` chromosome by
    chromosome."""
    from sqlalchemy import select

    from genofed.beacon.index import VariantQuery, find_alleles
    from genofed.db import BeaconAllele, session_scope

    found = {}
    with session_scope(engine) as session:
        chroms = session.scalars(
            select(BeaconAllele.chrom).where(BeaconAllele.dataset_accession == dataset).distinct()
        ).all()
        for chrom in chroms:
            for allele in find_alleles(session, [dataset], VariantQuery(chrom=chrom)):
                key = (allele.chrom, allele.start, allele.ref, allele.alt)
                found[key] = Counts(allele.ac, allele.an, allele.hom, frozenset(allele.carriers))
    return found


# -- a node with variant files in its archive, under analyses of a released dataset ------------

SUBMITTER = "alice@uzleuven.be"


def make_node(folder: Path) -> Settings:
    made = init_node(folder, name="Beacon node", country="BE")
    return load_settings(made.config_file, embedded_workers=False)


def archive_file(session: Session, settings: Settings, plain: bytes, name: str) -> db.ArchiveFile:
    """``plain`` archived and ready, as the pipeline leaves it: header in the database, body in
    the archive store."""
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    encrypted = io.BytesIO()
    crypt4gh.encrypt(io.BytesIO(plain), encrypted, [public])
    encrypted.seek(0)
    header = crypt4gh.split(encrypted)
    body = encrypted.read()
    file = db.ArchiveFile(
        submitter=SUBMITTER,
        inbox_path=f"{SUBMITTER}/{name}.c4gh",
        state=db.FileState.READY,
        accession=str(allocate(session, settings.country, "file")),
        header=header,
        archive_size=len(body),
        decrypted_size=len(plain),
    )
    session.add(file)
    session.flush()
    file.archive_path = f"archive/{file.id}"
    open_store(settings.archive).put(file.archive_path, io.BytesIO(body))
    return file


def metadata_object(
    session: Session, settings: Settings, kind: db.ObjectKind, alias: str, **body: object
) -> db.MetadataObject:
    made = db.MetadataObject(
        kind=kind,
        accession=str(allocate(session, settings.country, kind.value)),
        alias=alias,
        submitter=SUBMITTER,
        status=db.ObjectStatus.SUBMITTED,
        body=dict(body),
    )
    session.add(made)
    session.flush()
    return made


def link(session: Session, source: db.MetadataObject, target: db.MetadataObject, rel: str) -> None:
    session.add(db.MetadataLink(source_id=source.id, target_id=target.id, relation=rel))


def attach(session: Session, owner: db.MetadataObject, file: db.ArchiveFile) -> None:
    session.add(db.ObjectFile(object_id=owner.id, file_id=file.id))


def released_dataset(
    session: Session, settings: Settings, alias: str = "cohort"
) -> db.MetadataObject:
    dataset = metadata_object(session, settings, db.ObjectKind.DATASET, alias, title="Cohort")
    dataset.status = db.ObjectStatus.RELEASED
    return dataset
