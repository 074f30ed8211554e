"""The data-out routes: what a caller's visas allow, and the files themselves.

- ``GET /data/datasets``: the datasets the caller may read.
- ``GET /data/datasets/{accession}/files``: their files, with plaintext sizes and checksums.
- ``GET|HEAD /data/files/{accession}``: the file as Crypt4GH for the key in ``X-C4GH-Public-Key``;
  one HTTP range per request (``Range``, ``If-Range``, ``ETag``, ``Accept-Ranges``).

Visas come from the node's own grants and from ``X-GA4GH-Passport`` (visa JWTs of allow-listed
issuers). Every answer, allowed or denied, is written to the audit log before a byte is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from genofed.access import audit, visas
from genofed.access.http import bearer_identity
from genofed.access.tokens import Identity
from genofed.config import Settings
from genofed.dataout import service
from genofed.db import session_scope
from genofed.errors import GenofedError

router = APIRouter(tags=["data out"])
T = TypeVar("T")
PASSPORT_HEADER = "X-GA4GH-Passport"
KEY_HEADER = "X-C4GH-Public-Key"
_STATUS: dict[type[Exception], int] = {
    service.NotHere: 404,
    service.NoAccess: 403,
    service.BadRecipientKey: 400,
}


@dataclass(frozen=True)
class Caller:
    """Who asks, and the datasets they may read."""

    identity: Identity
    permissions: visas.Permissions


async def caller(request: Request, identity: Identity = Depends(bearer_identity)) -> Caller:
    settings: Settings = request.app.state.settings
    presented = visas.presented_visas(request.headers.getlist(PASSPORT_HEADER))

    def resolve(session: Session) -> visas.Permissions:
        return visas.permissions(session, settings, identity.subject, presented)

    return Caller(identity, await in_session(request.app.state.node.engine, resolve))


async def in_session(engine: Engine, action: Callable[[Session], T]) -> T:
    """``action(session)`` in a worker thread, in one transaction (the database blocks)."""

    def run() -> T:
        with session_scope(engine) as session:
            return action(session)

    return await anyio.to_thread.run_sync(run)


async def _audited(
    request: Request,
    who: Caller,
    action: str,
    work: Callable[[Session], T],
    *,
    dataset: str | None = None,
    file: str | None = None,
    detail: dict[str, Any] | None = None,
) -> T:
    """Run ``work``; record the outcome (allowed, or denied with the reason) before answering."""
    engine = request.app.state.node.engine
    try:
        result = await in_session(engine, work)
    except GenofedError as error:
        status = _STATUS.get(type(error))
        if status is None:
            raise
        reason = str(error)[:500]
        await anyio.to_thread.run_sync(
            lambda: audit.append(
                engine,
                actor=who.identity.subject,
                action=action,
                outcome="denied",
                dataset=dataset,
                file=file,
                detail={**(detail or {}), "reason": reason},
            )
        )
        raise HTTPException(status, str(error)) from None
    found_dataset = getattr(result, "dataset", None) or dataset
    await anyio.to_thread.run_sync(
        lambda: audit.append(
            engine,
            actor=who.identity.subject,
            action=action,
            dataset=found_dataset,
            file=file,
            detail=detail,
        )
    )
    return result


@router.get("/data/datasets")
async def list_datasets(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    """The datasets your visas allow, with their files' count."""

    def work(session: Session) -> list[dict[str, Any]]:
        return [
            {
                "accession": dataset.accession,
                "title": dataset.body.get("title"),
                "files": len(service.dataset_file_list(session, dataset)),
                "expires_at": who.permissions.datasets[str(dataset.accession)].expires_at,
            }
            for dataset in service.allowed_datasets(session, who.permissions)
        ]

    listed = await _audited(request, who, "data.list", work)
    return {"datasets": listed, "refused_visas": who.permissions.refused}


@router.get("/data/datasets/{accession}/files")
async def list_files(
    request: Request, accession: str, who: Caller = Depends(caller)
) -> dict[str, Any]:
    """A dataset's files: ids, plaintext sizes and checksums (to verify what you decrypt)."""

    def work(session: Session) -> list[dict[str, Any]]:
        dataset = service.readable_dataset(session, who.permissions, accession)
        return service.dataset_file_list(session, dataset)

    files = await _audited(request, who, "data.files", work, dataset=accession)
    return {"dataset": accession, "files": files}


@dataclass(frozen=True)
class _Prepared:
    dataset: str
    representation: service.Representation


@router.api_route("/data/files/{reference}", methods=["GET", "HEAD"])
async def download(request: Request, reference: str, who: Caller = Depends(caller)) -> Response:
    """The file as Crypt4GH for your key; one byte range per request."""
    node = request.app.state.node
    keys = (node.node_key, *node.previous_keys)
    wanted = request.headers.get("range")

    def work(session: Session) -> _Prepared:
        file, dataset = service.readable_file(session, who.permissions, reference)
        recipient = service.recipient_key(request.headers.get(KEY_HEADER))
        return _Prepared(dataset, service.representation(file, keys, recipient))

    detail = {"method": request.method, "range": wanted}
    prepared = await _audited(request, who, "data.download", work, file=reference, detail=detail)
    rep = prepared.representation
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != rep.etag:
        wanted = None  # the client's earlier bytes belong to another representation
    try:
        chosen = service.byte_range(wanted, rep.size)
    except service.UnsatisfiableRange as error:
        raise HTTPException(
            416, str(error), headers={"Content-Range": f"bytes */{error.size}"}
        ) from None
    start, end = chosen if chosen is not None else (0, rep.size)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": rep.etag,
        "Content-Length": str(end - start),
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{reference}.c4gh"',
        "Cache-Control": "no-store",
    }
    status = 200
    if chosen is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{rep.size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        rep.iter_bytes(node.archive, start, end), status_code=status, headers=headers
    )
