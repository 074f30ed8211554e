"""What can stop genofed from using its database, each with the fix in the message."""

from __future__ import annotations

from genofed.errors import GenofedError


class DatabaseError(GenofedError):
    """The database in ``database_url`` cannot be used: bad URL, unreachable, failed migration."""


class SchemaOutOfDate(DatabaseError):
    """The schema is older than this genofed, or absent: ``genofed db upgrade`` fixes it."""


class SchemaTooNew(DatabaseError):
    """A newer genofed migrated the database; this one must not write to an unknown schema."""
