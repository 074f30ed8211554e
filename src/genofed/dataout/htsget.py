"""htsget v1.3 on the archive: ``/htsget/reads/{id}`` (BAM, CRAM) and ``/htsget/variants/{id}``
(bgzipped VCF, BCF), GET and POST.

A ticket request is authorized like a download (bearer token, visas) and audited; the ticket holds
one URL whose bytes are the file's header, the records of the requested regions and the format's
EOF marker (or only the header for ``class=header``). That URL carries a short-lived ticket token
in its ``headers`` (never in the URL, which ends up in logs), bound to the caller, the file and the
request, so the data route needs no second visa check.

htsget clients read the bytes as they are, so this route serves the *plaintext* of the region
over the connection (which must be TLS beyond loopback); whole files leave only as Crypt4GH for
the requester's key, through ``/data/files``. The index is the archived file of the same dataset
named like the data file plus ``.bai``/``.csi``/``.tbi``/``.crai``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import anyio
import jwt
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from genofed.access import audit
from genofed.access.http import bearer_identity
from genofed.access.tokens import ALGORITHM, LEEWAY, public_jwk, signing_key
from genofed.archive.inbox import submitted_name
from genofed.config import Settings
from genofed.dataout import service
from genofed.dataout.api import caller, in_session
from genofed.dataout.plaintext import NotRandomAccess, plain_reader
from genofed.db import ArchiveFile, FileState, ObjectFile
from genofed.htsget.errors import HtsgetError
from genofed.htsget.plan import (
    Format,
    InvalidRange,
    Piece,
    Reader,
    Region,
    UnknownReference,
    plan,
    render,
)
from genofed.storage import ObjectStore

router = APIRouter(tags=["htsget"])
T = TypeVar("T")
TICKET_SECONDS = 300
MAX_REGIONS = 64
Endpoint = Literal["reads", "variants"]
FORMATS: dict[Endpoint, dict[str, Format]] = {
    "reads": {".bam": Format.BAM, ".cram": Format.CRAM},
    "variants": {
        ".vcf.gz": Format.VCF,
        ".vcf.bgz": Format.VCF,
        ".bcf": Format.BCF,
    },
}
INDEX_SUFFIXES = {
    Format.BAM: (".bai", ".csi"),
    Format.CRAM: (".crai",),
    Format.VCF: (".tbi", ".csi"),
    Format.BCF: (".csi",),
}


class HtsgetProblem(HtsgetError):
    """An htsget error: its ``kind`` is the protocol's error name."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"htsget": {"error": kind, "message": message}}, status_code=status)


# -- the request --------------------------------------------------------------------------------


class RegionBody(BaseModel):
    referenceName: str = Field(min_length=1, max_length=255)  # the protocol's name
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)


class TicketBody(BaseModel):
    format: str | None = None
    # class: header or absent; a Python keyword, hence the alias
    data_class: str | None = Field(None, alias="class")
    regions: list[RegionBody] | None = Field(None, max_length=MAX_REGIONS)


@dataclass(frozen=True)
class Wanted:
    format: str | None
    header_only: bool
    regions: tuple[Region, ...]

    def claims(self) -> dict[str, Any]:
        return {
            "fmt": self.format,
            "hdr": self.header_only,
            "reg": [[r.reference_name, r.start, r.end] for r in self.regions],
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Wanted:
        regions = tuple(Region(n, s, e) for n, s, e in claims["reg"])
        return cls(claims["fmt"], bool(claims["hdr"]), regions)


def _wanted_from_query(request: Request) -> Wanted:
    query = request.query_params
    for unsupported in ("fields", "tags", "notags"):
        if unsupported in query:
            raise HtsgetProblem(
                400, "InvalidInput", f"'{unsupported}' is not supported: all fields are served"
            )
    name = query.get("referenceName")
    start, end = _int(query.get("start"), "start"), _int(query.get("end"), "end")
    if name is None and (start is not None or end is not None):
        raise HtsgetProblem(400, "InvalidInput", "start and end need a referenceName")
    regions = () if name is None else (Region(name, start, end),)
    return Wanted(query.get("format"), _header_class(query.get("class")), regions)


def _wanted_from_body(body: TicketBody) -> Wanted:
    regions = tuple(Region(r.referenceName, r.start, r.end) for r in (body.regions or []))
    return Wanted(body.format, _header_class(body.data_class), regions)


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise HtsgetProblem(400, "InvalidInput", f"{name}={value!r} is not a non-negative integer")
    return int(value)


def _header_class(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() != "header":
        raise HtsgetProblem(400, "InvalidInput", f"class={value!r}: only 'header' is defined")
    return True


# -- the file and its index ---------------------------------------------------------------------


def file_format(endpoint: Endpoint, name: str, asked: str | None) -> Format:
    lowered = name.lower()
    for suffix, fmt in FORMATS[endpoint].items():
        if lowered.endswith(suffix):
            if asked is not None and asked.upper() != fmt:
                raise HtsgetProblem(
                    400, "UnsupportedFormat", f"{name} is {fmt}, not {asked.upper()}"
                )
            return fmt
    known = ", ".join(FORMATS[endpoint])
    raise HtsgetProblem(
        400, "UnsupportedFormat", f"{name} is not served by /{endpoint} (files ending {known})"
    )


def find_index(session: Session, file: ArchiveFile, fmt: Format) -> ArchiveFile:
    """The index archived beside ``file``: in one of its datasets or runs and analyses, named
    ``<data file><suffix>`` (or with the data suffix replaced, e.g. ``sample.bai``)."""
    name = submitted_name(session, file)
    stem = name.rsplit(".", 1)[0]
    wanted = {f"{base}{suffix}" for suffix in INDEX_SUFFIXES[fmt] for base in (name, stem)}
    siblings = select(ObjectFile.object_id).where(ObjectFile.file_id == file.id)
    candidates = session.scalars(
        select(ArchiveFile)
        .join(ObjectFile, ObjectFile.file_id == ArchiveFile.id)
        .where(ObjectFile.object_id.in_(siblings), ArchiveFile.state == FileState.READY)
    )
    for candidate in candidates:
        if submitted_name(session, candidate) in wanted:
            return candidate
    raise HtsgetProblem(
        404,
        "NotFound",
        f"{file.accession} has no index: submit {' or '.join(sorted(wanted))} in the same "
        "run, analysis or dataset",
    )


# -- routes -------------------------------------------------------------------------------------


@router.get("/htsget/reads/{reference}")
async def reads_ticket(request: Request, reference: str) -> JSONResponse:
    """An htsget ticket for a BAM or CRAM: a region (``referenceName``, ``start``, ``end``) or
    the header (``class=header``)."""
    return await _ticket_from_query(request, "reads", reference)


@router.get("/htsget/variants/{reference}")
async def variants_ticket(request: Request, reference: str) -> JSONResponse:
    """An htsget ticket for a bgzipped VCF or a BCF: a region or the header."""
    return await _ticket_from_query(request, "variants", reference)


@router.post("/htsget/reads/{reference}")
async def reads_ticket_post(request: Request, reference: str) -> JSONResponse:
    """An htsget ticket for several regions of a BAM or CRAM (htsget 1.3 POST)."""
    return await _ticket_from_body(request, "reads", reference)


@router.post("/htsget/variants/{reference}")
async def variants_ticket_post(request: Request, reference: str) -> JSONResponse:
    """An htsget ticket for several regions of a VCF or BCF (htsget 1.3 POST)."""
    return await _ticket_from_body(request, "variants", reference)


async def _ticket_from_query(request: Request, endpoint: Endpoint, reference: str) -> JSONResponse:
    try:
        wanted = _wanted_from_query(request)
    except HtsgetProblem as problem:
        return _error(problem.status, problem.kind, str(problem))
    return await _ticket(request, endpoint, reference, wanted)


async def _ticket_from_body(request: Request, endpoint: Endpoint, reference: str) -> JSONResponse:
    try:
        body = TicketBody.model_validate(await request.json())
    except (ValueError, ValidationError) as error:
        return _error(400, "InvalidInput", f"the request body is not an htsget query: {error}")
    return await _ticket(request, endpoint, reference, _wanted_from_body(body))


async def _ticket(
    request: Request, endpoint: Endpoint, reference: str, wanted: Wanted
) -> JSONResponse:
    try:
        identity = await bearer_identity(request)
        who = await caller(request, identity)
    except HTTPException as refused:
        return _error(refused.status_code, "InvalidAuthentication", str(refused.detail))
    settings: Settings = request.app.state.settings
    engine = request.app.state.node.engine

    keys = (request.app.state.node.node_key, *request.app.state.node.previous_keys)
    archive = request.app.state.node.archive

    def authorize(session: Session) -> tuple[str, str, Format]:
        file, dataset = service.readable_file(session, who.permissions, reference)
        fmt = file_format(endpoint, submitted_name(session, file), wanted.format)
        _plan(session, file, fmt, wanted, keys, archive)  # a region it cannot serve fails now
        return file.id, dataset, fmt

    detail = {"endpoint": endpoint, **wanted.claims()}
    try:
        file_id, dataset, fmt = await in_session(engine, authorize)
    except (service.NotHere, service.NoAccess, HtsgetError, NotRandomAccess) as error:
        status, kind = _status(error)
        await _audit(engine, identity.subject, "htsget.ticket", "denied", None, reference, detail)
        return _error(status, kind, str(error))
    await _audit(engine, identity.subject, "htsget.ticket", "allowed", dataset, reference, detail)
    token = _ticket_token(settings, identity.subject, file_id, dataset, reference, fmt, wanted)
    url = f"{settings.http.public_url}/htsget/data/{file_id}"
    part = {"url": url, "headers": {"Authorization": f"Bearer {token}"}}
    if wanted.header_only:
        part["class"] = "header"
    return JSONResponse({"htsget": {"format": str(fmt), "urls": [part]}})


@router.get("/htsget/data/{file_id}", response_model=None)
async def ticket_data(request: Request, file_id: str) -> StreamingResponse | JSONResponse:
    """The bytes a ticket names: header, region records and EOF, plaintext."""
    settings: Settings = request.app.state.settings
    node = request.app.state.node
    try:
        claims = _verify_ticket(settings, request.headers.get("authorization", ""), file_id)
    except HtsgetProblem as problem:
        return _error(problem.status, problem.kind, str(problem))
    wanted = Wanted.from_claims(claims)
    keys = (node.node_key, *node.previous_keys)

    def prepare(session: Session) -> Iterator[bytes]:
        file = session.get(ArchiveFile, file_id)
        if file is None or file.state != FileState.READY:
            raise HtsgetProblem(404, "NotFound", "the file is no longer in the archive")
        fmt = Format(claims["served"])
        pieces, read = _plan(session, file, fmt, wanted, keys, node.archive)
        return _render_all(pieces, read)

    try:
        chunks = await in_session(node.engine, prepare)
    except (HtsgetError, NotRandomAccess) as error:
        status, kind = _status(error)
        return _error(status, kind, str(error))
    await _audit(
        node.engine,
        claims["sub"],
        "htsget.data",
        "allowed",
        claims["dataset"],
        claims["ref"],
        wanted.claims(),
    )
    return StreamingResponse(chunks, media_type="application/octet-stream")


def _plan(
    session: Session,
    file: ArchiveFile,
    fmt: Format,
    wanted: Wanted,
    keys: tuple[bytes, ...],
    archive: ObjectStore,
) -> tuple[list[Piece], Reader]:
    """The pieces that answer ``wanted`` on ``file``, and the reader of its plaintext."""
    index = find_index(session, file, fmt)
    read = plain_reader(file, keys, archive)
    index_bytes = plain_reader(index, keys, archive)(0, index.decrypted_size or 0)
    pieces = plan(
        fmt,
        index_bytes,
        submitted_name(session, index).rsplit(".", 1)[-1],
        file.decrypted_size or 0,
        read,
        regions=list(wanted.regions) or None,
        header_only=wanted.header_only,
    )
    return pieces, read


def _render_all(pieces: list[Piece], read: Reader) -> Iterator[bytes]:
    for piece in pieces:
        yield from render(piece, read)


# -- ticket tokens ------------------------------------------------------------------------------


def _ticket_token(
    settings: Settings,
    subject: str,
    file_id: str,
    dataset: str,
    reference: str,
    fmt: Format,
    wanted: Wanted,
) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": settings.tokens.issuer,
        "aud": f"{settings.http.public_url}/htsget/data",
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=TICKET_SECONDS)).timestamp()),
        "jti": uuid.uuid4().hex,
        "file": file_id,
        "dataset": dataset,
        "ref": reference,
        "served": str(fmt),
        **wanted.claims(),
    }
    return jwt.encode(
        claims,
        signing_key(settings),
        algorithm=ALGORITHM,
        headers={"kid": public_jwk(settings)["kid"]},
    )


def _verify_ticket(settings: Settings, authorization: str, file_id: str) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HtsgetProblem(
            401, "InvalidAuthentication", "send the ticket's headers with the data request"
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(),
            signing_key(settings).public_key(),
            algorithms=[ALGORITHM],
            audience=f"{settings.http.public_url}/htsget/data",
            issuer=settings.tokens.issuer,
            leeway=LEEWAY,
            options={"require": ["sub", "exp", "file"]},
        )
    except jwt.ExpiredSignatureError:
        raise HtsgetProblem(
            401, "InvalidAuthentication", "the ticket has expired: ask for a new one"
        ) from None
    except jwt.PyJWTError:
        raise HtsgetProblem(
            401, "InvalidAuthentication", "the ticket token is not valid for this node"
        ) from None
    if claims["file"] != file_id:
        raise HtsgetProblem(403, "PermissionDenied", "the ticket is for another file")
    return claims


# -- helpers ------------------------------------------------------------------------------------


async def _audit(
    engine: Engine,
    actor: str,
    action: str,
    outcome: Literal["allowed", "denied"],
    dataset: str | None,
    file: str,
    detail: dict[str, Any],
) -> None:
    await anyio.to_thread.run_sync(
        lambda: audit.append(
            engine,
            actor=actor,
            action=action,
            outcome=outcome,
            dataset=dataset,
            file=file,
            detail=detail,
        )
    )


def _status(error: Exception) -> tuple[int, str]:
    if isinstance(error, HtsgetProblem):
        return error.status, error.kind
    if isinstance(error, service.NoAccess):
        return 403, "PermissionDenied"
    if isinstance(error, service.NotHere):
        return 404, "NotFound"
    if isinstance(error, UnknownReference):
        return 404, "NotFound"
    if isinstance(error, InvalidRange):
        return 400, "InvalidRange"
    return 500, "InternalError"
