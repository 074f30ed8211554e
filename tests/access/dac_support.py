"""A node with released datasets under three policies and two DACs, for the DAC workflow tests.

- ``EPI``: disease-specific (DS MONDO:0005027, epilepsy) with IRB, PUB, GS=EU, TS=P2Y and NPU,
  decided by ``UZL-DAC`` (member: JANE);
- ``HMB``: health/medical/biomedical with NCU, also decided by ``UZL-DAC``;
- ``OPEN``: general research use, decided by ``ULB-DAC`` (member: MARC);
- ``DRAFT``: a dataset never released.

Users are token subjects: BOB requests, JANE and MARC decide, OPS is the operator.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import requests
from genofed.access.dac_api import router
from genofed.access.tokens import ensure_signing_key, issue_token
from genofed.config import Settings
from genofed.metadata import service

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "metadata"))
from metadata_support import COUNTRY, SUBMITTER, add_files

BOB, JANE, MARC, OPS = "bob@ulb.be", "jane@uzleuven.be", "marc@ulb.be", "ops@node.be"
EPILEPSY = "MONDO:0005027"
# A purpose that meets every condition of EPI.
FITS_EPI: dict[str, Any] = {
    "permission": "DS",
    "diseases": [EPILEPSY],
    "modifiers": ["IRB", "PUB", "NPU", "GS=BE"],
    "description": "Genotype-phenotype study of early-onset epilepsy.",
}


@dataclass(frozen=True)
class Catalogue:
    """Accessions of the node's datasets and DACs, by alias."""

    datasets: dict[str, str]
    dacs: dict[str, str]

    @property
    def epi(self) -> str:
        return self.datasets["EPI"]

    @property
    def open(self) -> str:
        return self.datasets["OPEN"]

    @property
    def hmb(self) -> str:
        return self.datasets["HMB"]

    @property
    def draft(self) -> str:
        return self.datasets["DRAFT"]

    @property
    def uzl(self) -> str:
        return self.dacs["UZL-DAC"]

    @property
    def ulb(self) -> str:
        return self.dacs["ULB-DAC"]


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    """A transaction that may write (the audit log needs one on SQLite)."""
    with db.session_scope(db.for_writing(engine)) as session:
        yield session


def metadata(files: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {
        "dacs": [
            {"alias": "UZL-DAC", "title": "UZ Leuven DAC", "contacts": ["dac@uzleuven.be"]},
            {"alias": "ULB-DAC", "title": "ULB DAC", "contacts": ["dac@ulb.be"]},
        ],
        "policies": [
            {
                "alias": "EPI-POLICY",
                "title": "Epilepsy research only",
                "dac": "UZL-DAC",
                "permission": "DS",
                "diseases": [EPILEPSY],
                "modifiers": ["IRB", "PUB", "GS=EU", "TS=P2Y", "NPU"],
            },
            {
                "alias": "HMB-POLICY",
                "title": "Medical research, not commercial",
                "dac": "UZL-DAC",
                "permission": "HMB",
                "modifiers": ["NCU"],
            },
            {
                "alias": "OPEN-POLICY",
                "title": "Any research",
                "dac": "ULB-DAC",
                "permission": "GRU",
            },
        ],
        "datasets": [
            {
                "alias": "EPI",
                "title": "Epilepsy genomes",
                "policy": "EPI-POLICY",
                "files": files[:2],
            },
            {
                "alias": "HMB",
                "title": "Cardiac exomes",
                "policy": "HMB-POLICY",
                "files": [files[2]],
            },
            {
                "alias": "OPEN",
                "title": "Reference panel",
                "policy": "OPEN-POLICY",
                "files": [files[3]],
            },
            {"alias": "DRAFT", "title": "Not yet", "policy": "OPEN-POLICY", "files": [files[4]]},
        ],
    }


def build_catalogue(engine: Engine) -> Catalogue:
    """Submit and release the datasets, and seat JANE on UZL-DAC and MARC on ULB-DAC."""
    with writing(engine) as session:
        files = [str(file.accession) for file in add_files(session, 5)]
        result = service.submit_metadata(session, COUNTRY, SUBMITTER, metadata(files))
        accessions = result.accessions()
        for alias in ("EPI", "HMB", "OPEN"):
            service.release_dataset(session, COUNTRY, alias)
        catalogue = Catalogue(datasets=accessions["dataset"], dacs=accessions["dac"])
        requests.add_member(session, COUNTRY, OPS, catalogue.uzl, JANE)
        requests.add_member(session, COUNTRY, OPS, catalogue.ulb, MARC)
    return catalogue


def node_settings(home: Path) -> Settings:
    settings = Settings(home=home, country=COUNTRY)
    ensure_signing_key(settings)
    return settings


def dac_app(settings: Settings, engine: Engine) -> FastAPI:
    """The routes as the node app mounts them: settings and the node's engine in app.state."""
    app = FastAPI()
    app.include_router(router)
    app.state.settings = settings
    app.state.node = SimpleNamespace(engine=engine)
    return app


def token(settings: Settings, user: str, *roles: str) -> str:
    return issue_token(settings, user, list(roles))


def bearer(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, user, *roles)}"}


def audit_actions(engine: Engine) -> list[tuple[str, str, str]]:
    """(actor, action, outcome) of every audit entry, oldest first."""
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(db.AuditEntry.actor, db.AuditEntry.action, db.AuditEntry.outcome).order_by(
                db.AuditEntry.seq
            )
        )
        return [(actor, action, outcome) for actor, action, outcome in rows]
