"""The FEGA broker's dataset messages: dataset-mapping, dataset-release and dataset-deprecate.

FEGA messages carry accessions in the EGA form (``EGAD`` + 11 digits for the dataset, ``EGAF`` +
11 for its files); ours are the same numbers with the node's prefix and a check character, so
each maps back to exactly one of this node's objects (:func:`accessions.parse` with the node's
country). Applying a message is idempotent, as every broker consumer must be: a message
delivered twice changes nothing the second time.

- ``mapping`` adds the listed files to a draft dataset (the rules of :func:`add_files` apply);
  for a released dataset it is accepted only if it adds nothing.
- ``release`` releases the dataset (the rules of :func:`release_dataset` apply).
- ``deprecate`` deprecates it.

Bodies are checked against the FEGA message forms (:func:`genofed.archive.messages.validate`)
both when emitted and when applied.

A message naming a dataset this node does not have is refused: datasets are created here and
their EGA ids given out from here, so an unknown id is an error to look into, not one to paper
over by inventing a dataset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast

from sqlalchemy.orm import Session

from genofed.archive import messages
from genofed.db import MetadataObject, ObjectStatus
from genofed.metadata import accessions
from genofed.metadata.datasets import (
    add_files,
    dataset_files,
    deprecate_dataset,
    find_dataset,
    release_dataset,
)
from genofed.metadata.errors import DatasetError, MetadataError

MessageType = Literal["mapping", "release", "deprecate"]
SCHEMAS: Mapping[str, str] = {
    "mapping": "dataset-mapping",
    "release": "dataset-release",
    "deprecate": "dataset-deprecate",
}
_DATASET_ID = re.compile(r"^EGAD[0-9]{11}$")
_FILE_ID = re.compile(r"^EGAF[0-9]{11}$")


def dataset_message(session: Session, dataset: MetadataObject, kind: str) -> dict[str, Any]:
    """The FEGA message of ``kind`` (mapping, release or deprecate) for ``dataset``."""
    if kind not in SCHEMAS:
        raise MetadataError(f"no FEGA dataset message {kind!r}: use one of {', '.join(SCHEMAS)}")
    body: dict[str, Any] = {"type": kind, "dataset_id": ega_id(dataset.accession)}
    if kind == "mapping":
        files = dataset_files(session, dataset)
        unaccessioned = [file.id for file in files if file.accession is None]
        if unaccessioned:
            raise DatasetError(
                f"dataset {dataset.accession} has files without an accession "
                f"({', '.join(unaccessioned[:3])}): map it once their ingestion has completed"
            )
        body["accession_ids"] = sorted(ega_id(file.accession) for file in files)
    _validate(kind, body)
    return body


def ega_id(accession: str | None) -> str:
    """The EGA form of one of our accessions."""
    if accession is None:
        raise MetadataError("an object without an accession has no EGA id")
    return accessions.parse(accession).ega


def apply_dataset_message(
    session: Session, country: str, body: Mapping[str, Any]
) -> MetadataObject:
    """Apply a FEGA dataset message to this node's dataset; returns the dataset."""
    kind = _checked(body)
    _validate(kind, body)  # the schema too: what this node accepts, the broker would
    dataset = find_dataset(session, country, str(body["dataset_id"]))
    if kind == "mapping":
        _apply_mapping(session, country, dataset, list(body["accession_ids"]))
    elif kind == "release" and dataset.status is not ObjectStatus.RELEASED:
        release_dataset(session, country, str(dataset.accession))
    elif kind == "deprecate" and dataset.status is not ObjectStatus.DEPRECATED:
        deprecate_dataset(session, country, str(dataset.accession))
    return dataset


def _apply_mapping(
    session: Session, country: str, dataset: MetadataObject, file_ids: list[str]
) -> None:
    ours = {str(accessions.parse(ega, country=country)) for ega in file_ids}
    present = {file.accession for file in dataset_files(session, dataset)}
    missing = sorted(ours - present)
    if not missing:
        return
    if dataset.status is not ObjectStatus.DRAFT:
        raise DatasetError(
            f"the mapping adds {len(missing)} file(s) to {dataset.status.value} dataset "
            f"{dataset.accession}, whose files are fixed: map them to a new dataset"
        )
    add_files(session, country, str(dataset.accession), missing)


def _checked(body: Mapping[str, Any]) -> MessageType:
    """The message's type, once its fields have the forms the FEGA schemas require."""
    kind = body.get("type")
    if kind not in SCHEMAS:
        raise MetadataError(
            f"not a FEGA dataset message: type is {kind!r}, expected one of {', '.join(SCHEMAS)}"
        )
    dataset_id = body.get("dataset_id")
    if not isinstance(dataset_id, str) or not _DATASET_ID.match(dataset_id):
        raise MetadataError(
            f"FEGA {kind} message: dataset_id {dataset_id!r} is not EGAD + 11 digits"
        )
    if kind == "mapping":
        files = body.get("accession_ids")
        if not isinstance(files, list) or not all(
            isinstance(item, str) and _FILE_ID.match(item) for item in files
        ):
            raise MetadataError(
                "FEGA mapping message: accession_ids must be a list of EGAF + 11 digits"
            )
    return cast(MessageType, kind)


def _validate(kind: str, body: Mapping[str, Any]) -> None:
    """Check ``body`` against its FEGA message form (the one the archive's queues use)."""
    try:
        messages.validate(SCHEMAS[kind], dict(body))
    except messages.InvalidMessage as error:
        raise MetadataError(str(error)) from None
