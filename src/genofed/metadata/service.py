"""The metadata service: what the node's API and CLI call, in the caller's session.

- submissions: :func:`submit_metadata` (validate every row, then store all or nothing);
- datasets: :func:`create_dataset`, :func:`add_files`, :func:`release_dataset`,
  :func:`deprecate_dataset`, and the queries :func:`released_datasets_query`,
  :func:`dataset_files_query` (see :mod:`genofed.metadata.datasets`);
- FEGA: :func:`dataset_message` and :func:`apply_dataset_message`, the broker's dataset-mapping,
  -release and -deprecate forms (see :mod:`genofed.metadata.fega`).
"""

from __future__ import annotations

from genofed.metadata.datasets import (
    add_files,
    create_dataset,
    dataset_files,
    dataset_files_query,
    deprecate_dataset,
    describe,
    find_dataset,
    find_object,
    list_datasets,
    release_dataset,
    released_datasets,
    released_datasets_query,
)
from genofed.metadata.fega import apply_dataset_message, dataset_message
from genofed.metadata.sheets import Submission, read_document, read_paths, validate_submission
from genofed.metadata.store import SubmissionResult, submit_metadata

__all__ = [
    "Submission",
    "SubmissionResult",
    "add_files",
    "apply_dataset_message",
    "create_dataset",
    "dataset_files",
    "dataset_files_query",
    "dataset_message",
    "deprecate_dataset",
    "describe",
    "find_dataset",
    "find_object",
    "list_datasets",
    "read_document",
    "read_paths",
    "release_dataset",
    "released_datasets",
    "released_datasets_query",
    "submit_metadata",
    "validate_submission",
]
