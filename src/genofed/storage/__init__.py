"""Object stores behind one small interface: a local folder (the default) or an S3 bucket.

``open_store(settings.archive)`` gives the store a node's settings describe; code above this
package only sees :class:`ObjectStore` and the errors below.
"""

from __future__ import annotations

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
        return S3Store(settings)
    return LocalStore(settings.path)
