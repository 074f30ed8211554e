"""genofed's database: SQLite (WAL) by default, PostgreSQL at scale, Alembic migrations.

Start-up of any process that uses the database::

    engine = make_engine(settings.database_url)
    check_schema(engine)  # refuses an old or newer schema
    with session_scope(engine) as session:
        ...
"""

from genofed.db.engine import (
    for_writing,
    make_engine,
    make_migration_engine,
    render_url,
    session_factory,
    session_scope,
)
from genofed.db.errors import DatabaseError, SchemaOutOfDate, SchemaTooNew
from genofed.db.migrate import (
    SchemaStatus,
    check_schema,
    current_revision,
    head_revision,
    schema_status,
    upgrade,
)
from genofed.db.models import (
    AccessEvent,
    AccessionCounter,
    AccessRequest,
    AccessRequestItem,
    ArchiveFile,
    AuditEntry,
    Base,
    DacMember,
    FileEvent,
    FileState,
    Grant,
    Job,
    JobState,
    MetadataLink,
    MetadataObject,
    ObjectFile,
    ObjectKind,
    ObjectStatus,
    RequestStatus,
    UploadPart,
    UploadSession,
    UploadState,
    User,
)

__all__ = [
    "AccessEvent",
    "AccessRequest",
    "AccessRequestItem",
    "AccessionCounter",
    "ArchiveFile",
    "AuditEntry",
    "Base",
    "DacMember",
    "DatabaseError",
    "FileEvent",
    "FileState",
    "Grant",
    "Job",
    "JobState",
    "MetadataLink",
    "MetadataObject",
    "ObjectFile",
    "ObjectKind",
    "ObjectStatus",
    "RequestStatus",
    "SchemaOutOfDate",
    "SchemaStatus",
    "SchemaTooNew",
    "UploadPart",
    "UploadSession",
    "UploadState",
    "User",
    "check_schema",
    "current_revision",
    "for_writing",
    "head_revision",
    "make_engine",
    "make_migration_engine",
    "render_url",
    "schema_status",
    "session_factory",
    "session_scope",
    "upgrade",
]
