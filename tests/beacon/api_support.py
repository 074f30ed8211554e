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
