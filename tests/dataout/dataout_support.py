"""A node with archived files in released datasets, as the pipeline leaves them, and grants.

Files are put straight into the archive (Crypt4GH body in the store, header in the database):
the pipeline has its own tests, and data out starts where it ends.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from genofed import crypt4gh, db
from genofed.access.tokens import issue_token
from genofed.archive.stages import archive_key
from genofed.config import Settings, load_settings
from genofed.metadata.accessions import allocate
from genofed.node.directory import init_node
from genofed.storage import open_store

SUBMITTER = "alice@uzleuven.be"


def make_node(folder: Path, **overrides: object) -> Settings:
    made = init_node(folder, name="Test node", country="BE")
    return load_settings(made.config_file, embedded_workers=False, **overrides)


def auth(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, user, list(roles or ['requester']))}"}


def archive_file(
    session: Session,
    settings: Settings,
    plain: bytes,
    *,
    name: str = "upload",
    edit_list: Sequence[int] | None = None,
) -> db.ArchiveFile:
    """``plain`` archived and ready: the header sealed for the node, the body in the store."""
    public = crypt4gh.load_public_key(settings.crypt4gh.public_key)
    encrypted = io.BytesIO()
    crypt4gh.encrypt(io.BytesIO(plain), encrypted, [public])
    encrypted.seek(0)
    header = crypt4gh.split(encrypted)
    if edit_list is not None:
        secret = _node_secret(settings)
        header = crypt4gh.reencrypt_header(header, secret, [public], edit_list=edit_list)
    body = encrypted.read()
    file = db.ArchiveFile(
        submitter=SUBMITTER,
        inbox_path=f"{SUBMITTER}/{name}.c4gh",
        state=db.FileState.READY,
        accession=str(allocate(session, settings.country, "file")),
        header=header,
        archive_size=len(body),
        archive_sha256=hashlib.sha256(body).hexdigest(),
        decrypted_size=len(plain),
        decrypted_sha256=hashlib.sha256(plain).hexdigest(),
        decrypted_md5=hashlib.md5(plain).hexdigest(),
    )
    session.add(file)
    session.flush()
    file.archive_path = archive_key(file.id)
    open_store(settings.archive).put(file.archive_path, io.BytesIO(body))
    return file


def _node_secret(settings: Settings) -> bytes:
    from genofed.node.directory import node_secret_key

    return node_secret_key(settings)


def release_dataset(
    session: Session, settings: Settings, files: Sequence[db.ArchiveFile], title: str = "Cohort"
) -> str:
    """A released dataset of ``files``; returns its accession."""
    dataset = db.MetadataObject(
        kind=db.ObjectKind.DATASET,
        accession=str(allocate(session, settings.country, "dataset")),
        alias=f"dataset-{title}",
        submitter=SUBMITTER,
        status=db.ObjectStatus.RELEASED,
        body={"title": title},
    )
    session.add(dataset)
    session.flush()
    for file in files:
        session.add(db.ObjectFile(object_id=dataset.id, file_id=file.id))
    return str(dataset.accession)


def grant(
    session: Session, subject: str, dataset: str, *, days: float = 30, revoked: bool = False
) -> db.Grant:
    now = datetime.now(UTC)
    made = db.Grant(
        subject=subject,
        dataset_accession=dataset,
        granted_by="dac-chair",
        expires_at=now + timedelta(days=days),
        revoked_at=now if revoked else None,
        revoked_by="dac-chair" if revoked else None,
    )
    session.add(made)
    session.flush()
    return made
