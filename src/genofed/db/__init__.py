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
    AccessionCounter,
    ArchiveFile,
    Base,
    FileEvent,
    FileState,
    Job,
    JobState,
    MetadataLink,
    MetadataObject,
    ObjectFile,
    ObjectKind,
    ObjectStatus,
    UploadPart,
    UploadSession,
    UploadState,
)

__all__ = [
    "AccessionCounter",
    "ArchiveFile",
    "Base",
    "DatabaseError",
    "FileEvent",
    "FileState",
    "Job",
    "JobState",
    "MetadataLink",
    "MetadataObject",
    "ObjectFile",
    "ObjectKind",
    "ObjectStatus",
    "SchemaOutOfDate",
    "SchemaStatus",
    "SchemaTooNew",
    "UploadPart",
    "UploadSession",
    "UploadState",
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
