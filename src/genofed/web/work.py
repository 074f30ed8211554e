"""Transactions for page handlers, with the same bookkeeping as the API routes.

Page handlers call the service functions directly (no HTTP round trip to the node's own API), so
what the API routes do around them is done here too: one transaction per step, committed
before the page is built; a step the service refuses as not allowed is written to the audit log
as denied once the transaction has rolled back, as :mod:`genofed.access.dac_api` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from genofed import db
from genofed.access import audit
from genofed.access import requests as access
from genofed.access.purpose import InvalidPurpose
from genofed.archive.inbox import InboxError
from genofed.metadata.accessions import InvalidAccession
from genofed.metadata.errors import MetadataError
from genofed.web.session import Visitor, engine_of

T = TypeVar("T")

# What a step may refuse with a message for the user (the messages say the fix).
REFUSALS: tuple[type[Exception], ...] = (
    access.AccessError,
    InvalidPurpose,
    MetadataError,
    InvalidAccession,
    InboxError,
)


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """A read-only transaction on the node's database."""
    with db.session_scope(engine_of(request)) as session:
        yield session


def writing(request: Request, visitor: Visitor, step: Callable[[Session], T]) -> T:
    """``step(session)`` in a writing transaction; a :class:`~genofed.access.requests.NotAllowed`
    is audited as denied after the rollback, then raised again."""
    engine = engine_of(request)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            return step(session)
    except access.NotAllowed as error:
        audit.append(
            engine,
            actor=visitor.subject,
            action=error.action,
            outcome="denied",
            dataset=error.dataset,
            detail=error.detail,
        )
        raise


def status_of(error: Exception) -> int:
    """The HTTP status the API answers for ``error``, so pages and API agree."""
    if isinstance(error, access.NotAllowed):
        return 403
    if isinstance(error, access.NotFoundError):
        return 404
    if isinstance(error, access.Conflict):
        return 409
    if isinstance(error, access.InvalidInput | InvalidPurpose):
        return 422
    return 400
