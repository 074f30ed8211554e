"""A node for the beacon API tests: the metadata tests' epilepsy cohort, released, and the beacon
router mounted as the node app mounts it.

The cohort (tests/metadata/metadata_support.py): 20 samples of 20 people with HP and ICD-10
phenotypes, sexes cycling female, male, female (as NCIT:C16576), unknown, ages P18Y..P37Y, runs
and one joint-called VCF analysis, in one released dataset under a DS policy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "metadata"))

from metadata_support import (
    COUNTRY,
    SAMPLES,
    SUBMITTER,
    as_document,
    cohort,
    cohort_files,
    session_of,
)

from genofed import db
from genofed.access.tokens import ensure_signing_key, issue_token
from genofed.config import Settings
from genofed.metadata import service

__all__ = ["COUNTRY", "SAMPLES", "SUBMITTER"]
DATASET_ALIAS = "EPI-BE-WGS"


def node_settings(home: Path) -> Settings:
    settings = Settings(home=home, country=COUNTRY, node_name="Test node")
    ensure_signing_key(settings)
    return settings


def release_cohort(engine: Engine) -> str:
    """The cohort submitted and its dataset released; returns the dataset's accession."""
    with session_of(engine) as session:
        files = cohort_files(session)
        service.submit_metadata(session, COUNTRY, SUBMITTER, as_document(cohort(files)))
        return str(service.release_dataset(session, COUNTRY, DATASET_ALIAS).accession)


# -- the cohort's variants ------------------------------------------------------------------------

# (chrom, 1-based POS, REF, ALT, carriers by sample number 1..20 (EPI-01..), homozygous ones)
VARIANTS = [
    ("chr1", 1001, "A", "G", range(1, 13), {1, 2}),  # 12 carriers: common enough to disclose
    ("chr1", 2001, "C", "T", [1], set()),  # 1 carrier: never disclosed without access
    ("chr1", 3001, "AT", "A", range(5, 11), set()),  # a deletion, 6 carriers
    ("chr2", 5001, "G", "GA", [2, 3, 4], set()),  # an insertion, 3 carriers
    ("chrX", 100, "A", "C,T", range(11, 21), set()),  # multi-allelic: C for 11-15, T for 16-20
]
CONTIGS = {"chr1": 248956422, "chr2": 242193529, "chrX": 156040895}


def cohort_vcf() -> bytes:
    """A VCF of the cohort's 20 samples (columns EPI-01..EPI-20, the samples' aliases)."""
    names = [f"EPI-{n:02d}" for n in range(1, SAMPLES + 1)]
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in CONTIGS.items()]
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.append(
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *names])
    )
    for chrom, pos, ref, alt, carriers, hom in VARIANTS:
        genotypes = []
        for number in range(1, SAMPLES + 1):
            if "," in alt:
                allele = 0 if number not in carriers else (1 if number <= 15 else 2)
                genotypes.append(f"0/{allele}")
            elif number in hom:
                genotypes.append("1/1")
            else:
                genotypes.append("0/1" if number in carriers else "0/0")
        lines.append(
            "\t".join([chrom, str(pos), ".", ref, alt, ".", "PASS", ".", "GT", *genotypes])
        )
    return ("\n".join(lines) + "\n").encode()


def load_cohort_variants(engine: Engine, dataset: str) -> str:
    """The cohort's VCF loaded into the dataset's index as its analysis's VCF file; returns the
    file's accession."""
    import io

    from sqlalchemy import select

    from genofed.beacon.index import load_variants

    with session_of(engine) as session:
        analysis = session.scalars(
            select(db.MetadataObject).where(db.MetadataObject.kind == db.ObjectKind.ANALYSIS)
        ).one()
        vcf = session.scalars(
            select(db.ArchiveFile)
            .join(db.ObjectFile, db.ObjectFile.file_id == db.ArchiveFile.id)
            .where(db.ObjectFile.object_id == analysis.id)
            .order_by(db.ArchiveFile.accession)
        ).first()
        assert vcf is not None
        file_id, accession = vcf.id, str(vcf.accession)
        samples = {
            sample.alias: str(sample.accession)
            for sample in session.scalars(
                select(db.MetadataObject).where(db.MetadataObject.kind == db.ObjectKind.SAMPLE)
            )
        }

    def match(session: Any, names: Any) -> dict[str, str]:
        return {name: samples[name] for name in names if name in samples}

    load_variants(
        engine,
        dataset,
        file_id,
        io.BytesIO(cohort_vcf()),
        name="cohort.vcf",
        assembly="GRCh38",
        match_samples=match,
    )
    return accession


def set_security(engine: Engine, dataset: str, level: str, **knobs: Any) -> None:
    """The dataset's beacon security level (public, registered, controlled) and guard knobs."""
    with db.session_scope(engine) as session:
        row = session.get(db.BeaconDataset, dataset) or db.BeaconDataset(dataset_accession=dataset)
        row.security_level = level
        for name, value in knobs.items():
            setattr(row, name, value)
        session.add(row)


def grant(engine: Engine, subject: str, dataset: str) -> None:
    from datetime import UTC, datetime, timedelta

    with db.session_scope(engine) as session:
        session.add(
            db.Grant(
                subject=subject,
                dataset_accession=dataset,
                granted_by="dac-chair",
                expires_at=datetime.now(UTC) + timedelta(days=30),
            )
        )


def beacon_app(settings: Settings, engine: Engine) -> FastAPI:
    from genofed.beacon.api import router

    app = FastAPI()
    app.include_router(router)
    app.state.settings = settings
    app.state.node = SimpleNamespace(engine=engine)
    return app


def bearer(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    token = issue_token(settings, user, list(roles or ["requester"]))
    return {"Authorization": f"Bearer {token}"}


# -- the Beacon v2 schemas, offline -------------------------------------------------------------

FRAMEWORK_SCHEMAS = {
    "info": "beaconInfoResponse.json",
    "service-info": "ga4gh-service-info-1-0-0-schema.json",
    "configuration": "beaconConfigurationResponse.json",
    "map": "beaconMapResponse.json",
    "entry_types": "beaconEntryTypesResponse.json",
    "filtering_terms": "beaconFilteringTermsResponse.json",
    "collections": "beaconCollectionsResponse.json",
    "error": "beaconErrorResponse.json",
    "boolean": "beaconBooleanResponse.json",
    "count": "beaconCountResponse.json",
    "record": "beaconResultsetsResponse.json",
}


class BeaconSchemas:
    """The specification's schemas from ``../shared/specs/beacon-v2``: framework responses with
    their relative ``$ref``\\ s resolved over the local files, and the dereferenced default
    schemas of the records (``bin/deref_schemas/<folder>/defaultSchema.json``)."""

    def __init__(self, root: Path) -> None:
        import json

        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.root = root
        resources = []
        for path in sorted((root / "framework" / "json").rglob("*.json")):
            contents = json.loads(path.read_text())
            resource = Resource.from_contents(contents, default_specification=DRAFT202012)
            resources.append((path.resolve().as_uri(), resource))
        self.registry = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}

    def _validator(self, uri: str) -> Any:
        import jsonschema

        if uri not in self._validators:
            self._validators[uri] = jsonschema.Draft202012Validator(
                {"$ref": uri},
                registry=self.registry,
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )
        return self._validators[uri]

    def problems(self, body: Any, kind: str) -> list[str]:
        """Where ``body`` breaks the framework schema of ``kind`` (see FRAMEWORK_SCHEMAS)."""
        path = self.root / "framework" / "json" / "responses" / FRAMEWORK_SCHEMAS[kind]
        found = self._validator(path.resolve().as_uri()).iter_errors(body)
        return [f"{e.json_path}: {e.message[:300]}" for e in found]

    def record_problems(self, record: Any, folder: str) -> list[str]:
        """Where a record breaks its entry type's default schema."""
        import json

        import jsonschema

        key = f"record:{folder}"
        if key not in self._validators:
            path = self.root / "bin" / "deref_schemas" / folder / "defaultSchema.json"
            self._validators[key] = jsonschema.Draft202012Validator(
                json.loads(path.read_text()),
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )
        found = self._validators[key].iter_errors(record)
        return [f"{e.json_path}: {e.message[:300]}" for e in found]
