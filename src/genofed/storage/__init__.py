"""Object stores behind one small interface: a local folder (the default) or an S3 bucket.

``open_store(settings.archive)`` gives the store a node's settings describe; code above this
package only sees :class:`ObjectStore` and the errors below. The S3 backend (and boto3, about
70 ms of imports) loads only when it is used, to keep CLI start-up fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genofed.config import StorageSettings
from genofed.storage.base import (
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    validate_key,
)
from genofed.storage.local import LocalStore

if TYPE_CHECKING:
    from genofed.storage.s3 import S3Store

__all__ = [
    "InvalidKey",
    "InvalidRange",
    "LocalStore",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "open_store",
    "validate_key",
]


def open_store(settings: StorageSettings) -> ObjectStore:
    """The store ``settings`` describe (``backend`` is 'local' or 's3')."""
    if settings.backend == "s3":
        from genofed.storage.s3 import S3Store

        return S3Store(settings)
    return LocalStore(settings.path)


def __getattr__(name: str) -> object:
    if name == "S3Store":
        from genofed.storage.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
