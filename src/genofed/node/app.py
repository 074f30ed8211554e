"""The national node's HTTP API: service-info, the node's public keys, the submission inbox,
and the metadata and dataset routes of :mod:`genofed.metadata.api`.

Routes are thin: they authenticate, call :mod:`genofed.archive.inbox` in a worker thread (the
database and storage are blocking), and turn its errors into statuses. Every error is JSON
``{"detail": "one line saying what is wrong and what to do"}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import ClientDisconnect

from genofed import __version__, crypt4gh, db
from genofed.access.api import router as identity_routes
from genofed.access.dac_api import router as dac_routes
from genofed.access.http import require_role
from genofed.access.tokens import Identity, InvalidToken, ensure_signing_key, jwks
from genofed.archive import inbox
from genofed.archive.queue import Queue, open_queue
from genofed.archive.worker import EmbeddedWorker, start_embedded
from genofed.beacon.api import router as beacon_routes
from genofed.beacon.stats import router as stats_routes
from genofed.config import Settings
from genofed.dataout.api import router as data_routes
from genofed.dataout.htsget import router as htsget_routes
from genofed.db import UploadSession
from genofed.errors import GenofedError
from genofed.federation import node_sync
from genofed.metadata.api import router as metadata_routes
from genofed.node.directory import NodeDirectoryError, node_key_passphrase, node_secret_key
from genofed.pathogen.api import router as pathogen_routes
from genofed.storage import ObjectStore, open_store
from genofed.web import router as portal_routes

log = logging.getLogger(__name__)
T = TypeVar("T")
SUBMITTER = "submitter"
OFFSET_HEADER = "Upload-Offset"


_STATUS: dict[type[Exception], int] = {
    inbox.InvalidRequest: 400,
    InvalidToken: 401,
    inbox.NotYours: 403,
    inbox.UploadNotFound: 404,
    inbox.FileNotFound: 404,
    inbox.UploadOffsetMismatch: 409,
    inbox.UploadClosed: 409,
    inbox.EmptyUpload: 409,
    inbox.DuplicateFile: 409,
    inbox.FileStateConflict: 409,
    inbox.ChunkTooLarge: 413,
    inbox.ChecksumMismatch: 422,
    inbox.RejectedFile: 422,
}


# -- what the node opens at start ---------------------------------------------------------------


@dataclass(frozen=True)
class NodeResources:
    """The database, the inbox store and the node's keys, checked once at start."""

    engine: Engine
    sessions: sessionmaker[Session]
    inbox: ObjectStore
    archive: ObjectStore
    node_key: bytes  # the Crypt4GH private key: uploads must open with it
    previous_keys: tuple[bytes, ...]  # retired by a rotation: stored headers may still need them
    public_key_text: str
    fingerprint: str

    def close(self) -> None:
        self.engine.dispose()


def open_node(settings: Settings) -> NodeResources:
    """Open what the API needs, refusing to start on an old schema or a locked or mismatched
    node key: better one clear line at start than a failure on the first upload."""
    engine = db.make_engine(settings.database_url)
    try:
        db.check_schema(engine)
        ensure_signing_key(settings)
        node_key = node_secret_key(settings)
        public_file = settings.crypt4gh.public_key
        public_text = public_file.read_text()
        public = crypt4gh.decode_public_key(public_text.encode(), source=str(public_file))
        if crypt4gh.public_key_of(node_key) != public:
            raise NodeDirectoryError(
                f"the node's public key {public_file} is not the pair of its private key "
                f"{settings.crypt4gh.secret_key}: submitters would encrypt for the wrong key; "
                "restore the matching public key file"
            )
        previous = tuple(
            crypt4gh.load_private_key(path, lambda: node_key_passphrase(settings))
            for path in settings.crypt4gh.previous_secret_keys
        )
        store = open_store(settings.inbox)
        archive = open_store(settings.archive)
    except BaseException:
        engine.dispose()
        raise
    return NodeResources(
        engine,
        db.session_factory(engine),
        store,
        archive,
        node_key,
        previous,
        public_text,
        crypt4gh.fingerprint(public),
    )


# -- the application ----------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    queue: Queue | None = None,
    max_chunk_bytes: int | None = None,
) -> FastAPI:
    """The node's API. ``queue`` replaces the one ``settings.queue_url`` names (tests, embedding).

    Resources open in the lifespan, so that importing or building the app touches nothing.
    """
    app = FastAPI(
        title=f"genofed node {settings.node_name}",
        version=__version__,
        lifespan=partial(_lifespan, settings=settings, injected_queue=queue),
    )
    app.state.settings = settings
    app.state.max_chunk_bytes = max_chunk_bytes or settings.inbox_max_chunk_mib * 1024 * 1024
    app.include_router(_public)
    app.include_router(_inbox_routes, prefix="/inbox", tags=["inbox"])
    app.include_router(metadata_routes)
    app.include_router(identity_routes)
    app.include_router(dac_routes)
    app.include_router(data_routes)
    app.include_router(htsget_routes)
    app.include_router(node_sync.router)
    app.add_middleware(node_sync.HubSignatureCheck)
    app.include_router(beacon_routes)
    app.include_router(stats_routes)
    app.include_router(pathogen_routes)
    app.include_router(portal_routes)
    app.add_exception_handler(GenofedError, _genofed_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


@asynccontextmanager
async def _lifespan(
    app: FastAPI, *, settings: Settings, injected_queue: Queue | None
) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:  # closes in reverse: workers, queue, database
        node = await anyio.to_thread.run_sync(open_node, settings)
        stack.callback(node.close)
        app.state.node = node
        app.state.queue = injected_queue
        if injected_queue is None:
            app.state.queue = open_queue(settings)
            stack.push_async_callback(app.state.queue.close)
        worker = _start_workers(app, settings)
        if worker is not None:
            stack.push_async_callback(worker.stop)
        federation = node_sync.start_federation(app, settings)  # None without a hub
        if federation is not None:
            stack.push_async_callback(federation.stop)
        yield


def _start_workers(app: FastAPI, settings: Settings) -> EmbeddedWorker | None:
    """Run the pipeline stages in this process when the node is configured to; None otherwise
    (separate ``genofed worker`` processes do the work)."""
    if not settings.embedded_workers:
        return None
    return start_embedded(app, settings)


# -- errors -------------------------------------------------------------------------------------


async def _genofed_error(request: Request, error: Exception) -> JSONResponse:
    status = next((_STATUS[kind] for kind in type(error).__mro__ if kind in _STATUS), None)
    if status is None:  # storage, database or queue trouble: the operator's to fix
        log.error("%s %s failed: %s", request.method, request.url.path, error)
        return JSONResponse(
            {
                "detail": f"the node cannot serve this request now ({type(error).__name__}): "
                "try again later; the node's operator finds the cause in its log"
            },
            status_code=503,
        )
    headers = {}
    if isinstance(error, InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(error, inbox.UploadOffsetMismatch):
        headers[OFFSET_HEADER] = str(error.offset)
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors()
    ]
    return JSONResponse({"detail": "invalid request: " + "; ".join(problems)}, status_code=422)


# -- authentication -----------------------------------------------------------------------------


submitter = require_role(SUBMITTER, doing="submitting files")


# -- public routes ------------------------------------------------------------------------------

_public = APIRouter()


@_public.get("/service-info")
def service_info(request: Request) -> dict[str, Any]:
    """GA4GH service-info: what this service is, for registries and the federation hub."""
    return node_sync.node_service_info(request.app.state.settings)


@_public.get("/crypt4gh/public-key")
def public_key(request: Request) -> dict[str, str]:
    """The node's Crypt4GH public key: submitters encrypt their files for it."""
    node: NodeResources = request.app.state.node
    return {"public_key": node.public_key_text, "fingerprint": node.fingerprint}


@_public.get("/.well-known/jwks.json")
def json_web_keys(request: Request) -> dict[str, list[dict[str, str]]]:
    """The key that checks this node's bearer tokens."""
    return jwks(request.app.state.settings)


# -- the inbox ----------------------------------------------------------------------------------

_inbox_routes = APIRouter()


class NewUpload(BaseModel):
    filename: str = Field(description="Your name for the file, e.g. 'sample1.bam.c4gh'.")


class Completion(BaseModel):
    sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$", description="sha256 of all the bytes you uploaded."
    )
    ingest: bool = Field(True, description="Submit the file for ingestion at once.")


@_inbox_routes.post("/uploads", status_code=201, response_model=None)
def create_upload(
    body: NewUpload, request: Request, who: Identity = Depends(submitter)
) -> JSONResponse:
    """Start a resumable upload; send its bytes with PUT, then complete it."""
    with _session(request) as session:
        upload = inbox.create_upload(session, who.subject, body.filename)
        return _upload_response(upload, status=201)


@_inbox_routes.api_route("/uploads/{upload_id}", methods=["GET", "HEAD"], response_model=None)
def upload_status(
    upload_id: str, request: Request, who: Identity = Depends(submitter)
) -> JSONResponse:
    """Where an upload stands; ``offset`` (also the Upload-Offset header) is where to resume."""
    with _session(request) as session:
        return _upload_response(inbox.get_upload(session, upload_id, who.subject))


@_inbox_routes.put("/uploads/{upload_id}", response_model=None)
async def put_chunk(
    upload_id: str,
    request: Request,
    offset: int = Query(ge=0, description="Where the chunk starts: the upload's offset."),
    who: Identity = Depends(submitter),
) -> Response:
    """Append the request body, streamed, as the upload's next chunk."""
    limit: int = request.app.state.max_chunk_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise inbox.ChunkTooLarge(limit)  # before a byte of it is read
    node: NodeResources = request.app.state.node
    body = _blocking_body(request)

    def store() -> int:
        with node.sessions() as session:
            return inbox.put_chunk(
                session,
                node.inbox,
                upload_id,
                who.subject,
                offset,
                body,
                max_bytes=limit,
                node_key=node.node_key,
            )

    try:
        received = await anyio.to_thread.run_sync(store)
    except ClientDisconnect:  # nobody is listening; the chunk was not recorded
        return Response(status_code=400)
    return JSONResponse(
        {"id": upload_id, "offset": received}, headers={OFFSET_HEADER: str(received)}
    )


def _blocking_body(request: Request) -> Iterator[bytes]:
    """The request body as a plain iterator for a worker thread, awaiting each piece on the
    event loop: memory holds one piece at a time, whatever the chunk's size."""
    pieces = request.stream()

    async def next_piece() -> bytes | None:
        try:
            return await pieces.__anext__()
        except StopAsyncIteration:
            return None

    while (piece := anyio.from_thread.run(next_piece)) is not None:
        if piece:
            yield piece


@_inbox_routes.post("/uploads/{upload_id}/complete", status_code=201, response_model=None)
async def complete_upload(
    upload_id: str, body: Completion, request: Request, who: Identity = Depends(submitter)
) -> JSONResponse:
    """Check the upload (checksum, Crypt4GH header for this node) and make it an archive file;
    with ``ingest`` (the default) submit it for ingestion too."""
    node: NodeResources = request.app.state.node

    def complete() -> str:
        with node.sessions() as session:
            file = inbox.complete_upload(
                session, node.inbox, upload_id, who.subject, body.sha256, node_key=node.node_key
            )
            return file.id

    file_id = await anyio.to_thread.run_sync(complete)
    if body.ingest:
        return await _submit(request, file_id, who, status=201)
    return await _file_response(request, file_id, who, status=201)


@_inbox_routes.delete("/uploads/{upload_id}", response_model=None)
def cancel_upload(
    upload_id: str, request: Request, who: Identity = Depends(submitter)
) -> JSONResponse:
    """Cancel an open upload and delete what it received."""
    node: NodeResources = request.app.state.node
    with node.sessions() as session:
        return _upload_response(inbox.cancel_upload(session, node.inbox, upload_id, who.subject))


@_inbox_routes.get("/files", response_model=None)
def list_files(request: Request, who: Identity = Depends(submitter)) -> JSONResponse:
    """Your files: where each is in the pipeline, and why it stopped if it did."""
    with _session(request) as session:
        views = [asdict(view) for view in inbox.list_files(session, who.subject)]
    return JSONResponse(jsonable_encoder({"files": views}))


@_inbox_routes.post("/files/{file_id}/ingest", status_code=202, response_model=None)
async def ingest_file(
    file_id: str, request: Request, who: Identity = Depends(submitter)
) -> JSONResponse:
    """Submit an uploaded file for ingestion (again, if its first request was lost)."""
    return await _submit(request, file_id, who, status=202)


async def _submit(request: Request, file_id: str, who: Identity, *, status: int) -> JSONResponse:
    """Mark the file submitted, then ask the ingest stage for it.

    Publishing comes after the commit, so the stage never sees a file that is not submitted
    yet; if publishing fails, the file stays submitted and this route can be called again (the
    queue drops the duplicate by its key).
    """
    node: NodeResources = request.app.state.node
    file = await _in_thread(node, inbox.submit_file, file_id, who.subject)
    queue: Queue = request.app.state.queue
    try:
        await inbox.request_ingestion(queue, file)
    except Exception as error:
        log.error("publishing the ingestion of file %s failed: %s", file.id, error)
        return JSONResponse(
            {
                "detail": f"file {file.id} is uploaded, but the node could not queue its "
                f"ingestion ({type(error).__name__}); ask again later with "
                f"POST /inbox/files/{file.id}/ingest"
            },
            status_code=503,
        )
    return await _file_response(request, file.id, who, status=status)


async def _file_response(
    request: Request, file_id: str, who: Identity, *, status: int = 200
) -> JSONResponse:
    node: NodeResources = request.app.state.node
    view = await _in_thread(node, inbox.describe_file, file_id, who.subject)
    return JSONResponse(jsonable_encoder(asdict(view)), status_code=status)


async def _in_thread(node: NodeResources, action: Callable[..., T], *args: Any) -> T:
    """``action(session, *args)`` in a worker thread, with a session of its own."""

    def run() -> T:
        with node.sessions() as session:
            return action(session, *args)

    return await anyio.to_thread.run_sync(run)


@contextmanager
def _session(request: Request) -> Iterator[Session]:
    node: NodeResources = request.app.state.node
    with node.sessions() as session:
        yield session


def _upload_response(upload: UploadSession, status: int = 200) -> JSONResponse:
    body = {
        "id": upload.id,
        "filename": upload.filename,
        "state": upload.state.value,
        "error": upload.error,
        "offset": upload.received,
        "file_id": upload.file_id,
    }
    headers = {OFFSET_HEADER: str(upload.received), "Cache-Control": "no-store"}
    if status == 201:
        headers["Location"] = f"/inbox/uploads/{upload.id}"
    return JSONResponse(body, status_code=status, headers=headers)
