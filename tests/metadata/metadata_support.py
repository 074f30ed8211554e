"""A realistic small cohort as submission sheets, and archive files to reference.

The cohort: an epilepsy whole-genome study with 20 samples (HP and ICD-10 phenotypes), one
experiment and one run (paired FASTQ files) per sample, a joint-called VCF analysis, a DAC, a
disease-specific policy with DUO modifiers, and a dataset of the runs and the analysis.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from genofed import db
from genofed.metadata.accessions import allocate

COUNTRY = "BE"
SUBMITTER = "alice@uzleuven.be"
SAMPLES = 20
PHENOTYPES = [
    "HP:0001250",  # seizure
    "HP:0002069;HP:0001250",  # bilateral tonic-clonic seizure
    "HP:0001263;ICD10:G40.3",  # global developmental delay; generalized idiopathic epilepsy
    "ICD10:G40.9",
    "HP:0011097;HP:0002133",  # epileptic spasm; status epilepticus
]

Sheets = dict[str, list[dict[str, str]]]


@contextmanager
def session_of(engine: Engine) -> Iterator[Session]:
    with db.session_scope(engine) as session:
        yield session


def add_files(
    session: Session,
    count: int,
    *,
    submitter: str = SUBMITTER,
    state: db.FileState = db.FileState.READY,
    accessioned: bool = True,
) -> list[db.ArchiveFile]:
    """Archive files as ingestion leaves them: in ``state``, with an accession."""
    files = []
    for number in range(count):
        accession = str(allocate(session, COUNTRY, "file")) if accessioned else None
        file = db.ArchiveFile(
            submitter=submitter,
            inbox_path=f"{submitter}/upload-{number}.c4gh",
            state=state,
            accession=accession,
        )
        session.add(file)
        files.append(file)
    session.flush()
    return files


@dataclass(frozen=True)
class CohortFiles:
    reads: list[str]  # two per sample: R1 and R2
    vcf: list[str]  # the VCF and its index


def cohort_files(session: Session, *, submitter: str = SUBMITTER) -> CohortFiles:
    reads = add_files(session, 2 * SAMPLES, submitter=submitter)
    vcf = add_files(session, 2, submitter=submitter)
    return CohortFiles([str(f.accession) for f in reads], [str(f.accession) for f in vcf])


def cohort(files: CohortFiles) -> Sheets:
    """The cohort's sheets, as a spreadsheet holds them: text cells, ';' between values."""
    samples = [f"EPI-{n:02d}" for n in range(1, SAMPLES + 1)]
    return {
        "studies": [
            {
                "alias": "EPI-BE",
                "title": "Whole genomes of a Belgian epilepsy cohort",
                "description": "Trio-free WGS of 20 patients with early-onset epilepsy.",
                "study_type": "Whole Genome Sequencing",
            }
        ],
        "samples": [
            {
                "alias": alias,
                "subject_id": f"patient-{n + 1:02d}",
                "sex": ["female", "male", "NCIT:C16576", "unknown"][n % 4],
                "age": f"P{18 + n % 60}Y",
                "phenotypes": PHENOTYPES[n % len(PHENOTYPES)],
                "diseases": "MONDO:0005027",
                "population": "European",
                "study": "EPI-BE",
            }
            for n, alias in enumerate(samples)
        ],
        "experiments": [
            {
                "alias": f"{alias}-WGS",
                "sample": alias,
                "study": "EPI-BE",
                "platform": "ILLUMINA",
                "instrument": "Illumina NovaSeq 6000",
                "library_strategy": "WGS",
                "library_source": "GENOMIC",
                "library_selection": "RANDOM",
                "library_layout": "PAIRED",
            }
            for alias in samples
        ],
        "runs": [
            {
                "alias": f"{alias}-RUN",
                "experiment": f"{alias}-WGS",
                "files": f"{files.reads[2 * n]};{files.reads[2 * n + 1]}",
                "file_type": "fastq",
            }
            for n, alias in enumerate(samples)
        ],
        "analyses": [
            {
                "alias": "EPI-BE-joint-calls",
                "title": "Joint-called small variants",
                "study": "EPI-BE",
                "samples": ";".join(samples),
                "analysis_type": "SEQUENCE_VARIATION",
                "assembly": "GRCh38",
                "files": ";".join(files.vcf),
            }
        ],
        "dacs": [
            {
                "alias": "UZL-DAC",
                "title": "UZ Leuven genomics data access committee",
                "contacts": "Jane Peeters <dac@uzleuven.be>; genomics-office@uzleuven.be",
            }
        ],
        "policies": [
            {
                "alias": "EPI-POLICY",
                "title": "Epilepsy research only",
                "dac": "UZL-DAC",
                "permission": "DS",
                "diseases": "MONDO:0005027",
                "modifiers": "IRB;PUB;GS=EU;TS=P2Y;NPU",
            }
        ],
        "datasets": [
            {
                "alias": "EPI-BE-WGS",
                "title": "Epilepsy cohort genomes and variant calls",
                "policy": "EPI-POLICY",
                "runs": ";".join(f"{alias}-RUN" for alias in samples),
                "analyses": "EPI-BE-joint-calls",
            }
        ],
    }


def sheet_text(rows: Sequence[Mapping[str, str]], delimiter: str = "\t") -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(column for column in row if column not in columns)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return out.getvalue()


def write_sheets(folder: Path, sheets: Sheets, suffix: str = ".tsv") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    delimiter = "\t" if suffix == ".tsv" else ","
    paths = []
    for name, rows in sheets.items():
        path = folder / f"{name}{suffix}"
        path.write_text(sheet_text(rows, delimiter), encoding="utf-8")
        paths.append(path)
    return paths


def as_document(sheets: Sheets) -> dict[str, list[dict[str, object]]]:
    """The same cohort as one JSON document, with lists where the sheets have ';'."""
    multi = {"phenotypes", "diseases", "files", "samples", "runs", "analyses", "modifiers"}
    multi |= {"contacts"}
    return {
        name: [{k: (v.split(";") if k in multi else v) for k, v in row.items()} for row in rows]
        for name, rows in sheets.items()
    }


def count_objects(session: Session) -> dict[str, int]:
    """How many rows the metadata tables and the accession counters hold."""
    counted = {
        "objects": session.scalar(select(func.count()).select_from(db.MetadataObject)),
        "links": session.scalar(select(func.count()).select_from(db.MetadataLink)),
        "object_files": session.scalar(select(func.count()).select_from(db.ObjectFile)),
    }
    counters = session.execute(select(db.AccessionCounter.kind, db.AccessionCounter.next_value))
    counted.update({f"next {kind}": value for kind, value in counters})
    return {key: int(value or 0) for key, value in counted.items()}
