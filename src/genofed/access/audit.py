"""The node's tamper-evident audit log: every access decision, appended to a hash chain.

Every listing, download, htsget ticket, visa issued and permission decision of the node becomes
one :class:`~genofed.db.AuditEntry`, allowed or denied. Entries are numbered 1, 2, 3, ... without
gaps, and each one's ``hash`` covers its own fields and the ``hash`` of the entry before it
(``prev_hash``; the first entry follows :data:`GENESIS_HASH`). Altering, removing, inserting or
reordering any entry therefore breaks the chain at that entry, and :func:`verify` names it.

The chain is not keyed: someone who can write to the database can also rewrite every entry after
the one they changed, and recompute all the hashes. What catches that is a hash kept outside the
database: an operator records the head (``genofed audit verify`` prints it) and later passes it as
``expect_head``; the log may have grown since, but the recorded head must still be in it.

The hash, so that an auditor can re-derive it with any tool
----------------------------------------------------------

``hash = sha256(utf8(canonical JSON of the list below))`` as 64 lower-case hex digits::

    ["genofed-audit/1", seq, at, actor, action, outcome, dataset, file, detail, prev_hash]

- ``"genofed-audit/1"``: the version of this encoding, a fixed string;
- ``seq``: the entry's number, a JSON integer;
- ``at``: when it was recorded, in UTC, as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six digits
  of microseconds, always ``Z``);
- ``actor``, ``action``, ``outcome``: strings (``outcome`` is ``"allowed"`` or ``"denied"``);
- ``dataset``, ``file``: strings, or ``null`` when the access concerns no dataset or file;
- ``detail``: a JSON object;
- ``prev_hash``: the previous entry's hash (64 zeros for entry 1), a string.

Canonical JSON here is Python's ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``: no whitespace, object keys sorted, non-ASCII characters written as UTF-8
(only ``"``, ``\\`` and control characters are escaped). ``detail`` holds only strings,
integers, booleans, null, lists and objects -- floats are refused because their text form differs
between JSON implementations -- so for detail keys in ASCII this is also the RFC 8785 (JCS)
encoding. In Python::

    hashlib.sha256(json.dumps(["genofed-audit/1", seq, at, actor, action, outcome, dataset,
        file, detail, prev_hash], sort_keys=True, separators=(",", ":"),
        ensure_ascii=False).encode()).hexdigest()

``genofed audit show --json`` prints every one of these fields in exactly this form.

No secrets in the log
---------------------

Callers pass identifiers only: a token's ``jti``, a grant's id, a ticket's id -- never a token,
a password, a visa or a key. Two rules enforce it:

- a ``detail`` key named like a credential (token, password, secret, authorization, cookie,
  credential, API/private/access/signing key, ...; see :data:`SECRET_KEY_WORDS`) makes
  :func:`record` refuse the entry with :class:`SecretInAuditEntry`. Keys are chosen by the
  caller's code, so the mistake fails in its first test instead of hiding part of an entry;
- any string, in a field or in ``detail``, that looks like a credential (a JWT such as a token
  or a visa, an ``Authorization`` header value, a PEM private key) is stored as
  :data:`REDACTED`. Values often come from the request, so they are stripped, never refused: a
  denied access is recorded whatever it carried.

For the same reason the other content rules make values storable rather than refuse them:
strings longer than their column (``actor`` 255 characters, ``dataset`` and ``file`` 64) or
than :data:`MAX_DETAIL_STRING` in ``detail`` are cut and end in "…", and NUL characters or lone
surrogates become U+FFFD. What only the caller's code can get wrong -- an unknown outcome, an
empty action, a float or an object in ``detail`` -- raises :class:`AuditEntryError`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, Row, Text, cast, select, text, type_coerce
from sqlalchemy.orm import Session

from genofed.db.engine import WRITE_INTENT, for_writing, session_scope
from genofed.db.models import AuditEntry, utcnow

ENCODING_VERSION = "genofed-audit/1"
GENESIS_HASH = "0" * 64  # the prev_hash of entry 1
Outcome = Literal["allowed", "denied"]
OUTCOMES: tuple[Outcome, ...] = ("allowed", "denied")
# PostgreSQL: one appender at a time, per database ("gfaudit"; migrations use another id).
AUDIT_LOCK_ID = 0x67666175646974
DEFAULT_BATCH = 1000
MAX_DETAIL_BYTES = 8192  # the log keeps millions of entries: detail is a few identifiers
MAX_DETAIL_DEPTH = 8
MAX_DETAIL_STRING = 1024
REDACTED = "[redacted: looked like a credential]"
_LENGTHS = {"actor": 255, "action": 64, "dataset": 64, "file": 64}  # the columns' sizes
_HASH_FORM = re.compile(r"[0-9a-f]{64}")

# A detail key is refused when, lower-cased and stripped of everything but letters and digits,
# it contains one of these.
SECRET_KEY_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "cookie",
    "credential",
    "privatekey",
    "apikey",
    "accesskey",
    "signingkey",
)
# Any string (field or detail value) containing one of these shapes is stored as REDACTED.
_SECRET_VALUES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\."),  # a JWT / JWS / JWE (a visa, a token)
    re.compile(r"\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),  # a header value
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),  # PEM, Crypt4GH keys included
)


class AuditEntryError(ValueError):
    """An entry the log refuses: a caller's mistake (bad field), not something a user can fix."""


class SecretInAuditEntry(AuditEntryError):
    """An entry that would put a credential into the log; the message never repeats the value."""


# -- the hash -------------------------------------------------------------------------------


def format_at(at: datetime) -> str:
    """``at`` as it enters the hash: UTC, microseconds, ``Z`` (``2026-11-24T10:00:00.000000Z``)."""
    if at.tzinfo is None:
        raise AuditEntryError(f"naive datetime {at.isoformat()}: give it a time zone")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_json(value: Any) -> str:
    """The one text form of a JSON value that the hash covers (see the module docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    outcome: str,
    dataset: str | None,
    file: str | None,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The hash of an entry with these fields, as documented in the module docstring."""
    encoded = [
        ENCODING_VERSION,
        seq,
        format_at(at),
        actor,
        action,
        outcome,
        dataset,
        file,
        detail,
        prev_hash,
    ]
    return hashlib.sha256(canonical_json(encoded).encode("utf-8")).hexdigest()


# -- appending ------------------------------------------------------------------------------


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: Outcome = "allowed",
    dataset: str | None = None,
    file: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry inside the caller's transaction: it is kept only if that commits.

    Use it when the access and its record must stand or fall together (a grant and its
    decision). The session must be a writing one -- ``session_scope(db.for_writing(engine))``
    -- so that on SQLite concurrent appenders queue for the write lock instead of numbering two
    entries alike; on PostgreSQL an advisory lock held until the transaction ends serializes
    them (at the default READ COMMITTED isolation). Append soon before committing: the lock
    makes every other appender wait for this transaction.

    Raises :class:`AuditEntryError` for a caller's mistake (see the module docstring) and
    :class:`SecretInAuditEntry` for a detail key named like a credential; nothing is written
    then. Credential-shaped values are redacted, not refused.
    """
    fields = _checked_fields(actor, action, outcome, dataset, file)
    clean_detail = _checked_detail(detail)
    _lock_the_tail(session)
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (1, GENESIS_HASH) if last is None else (last.seq + 1, last.hash)
    entry = AuditEntry(
        seq=seq, at=utcnow(), **fields, detail=clean_detail, prev_hash=prev_hash, hash=""
    )
    entry.hash = _hash_of(entry)
    session.add(entry)
    session.flush()
    return entry


def append(
    engine: Engine,
    *,
    actor: str,
    action: str,
    outcome: Outcome = "allowed",
    dataset: str | None = None,
    file: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in a short transaction of its own, committed on return.

    For accesses whose record must outlive the request: a *denied* access is logged although
    the request then fails and its own transaction rolls back. On SQLite do not call it while
    this thread holds a writing transaction on the same database: it would wait for itself.
    """
    with session_scope(for_writing(engine)) as session:
        return record(
            session,
            actor=actor,
            action=action,
            outcome=outcome,
            dataset=dataset,
            file=file,
            detail=detail,
        )


def _lock_the_tail(session: Session) -> None:
    """Make this transaction the only appender until it ends (see :func:`record`)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": AUDIT_LOCK_ID})
    elif not connection.get_execution_options().get(WRITE_INTENT, False):
        # A deferred SQLite transaction would read the tail unlocked, then fail to write it.
        raise AuditEntryError(
            "audit.record needs a writing session on SQLite: "
            "session_scope(db.for_writing(engine)), or use audit.append(engine, ...)"
        )


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        outcome=entry.outcome,
        dataset=entry.dataset,
        file=entry.file,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
    )


def _checked_fields(
    actor: str, action: str, outcome: str, dataset: str | None, file: str | None
) -> dict[str, Any]:
    """The column fields: the caller's constants checked, request-borne values made storable."""
    if outcome not in OUTCOMES:
        raise AuditEntryError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if not isinstance(action, str) or not action:
        raise AuditEntryError("audit action must be a non-empty string, e.g. 'file.download'")
    fields: dict[str, Any] = {"actor": actor, "action": action, "dataset": dataset, "file": file}
    for name, value in fields.items():
        if value is None and name in ("dataset", "file"):
            continue
        if not isinstance(value, str):
            raise AuditEntryError(f"audit {name} must be a string, not {type(value).__name__}")
        fields[name] = _storable(value, _LENGTHS[name])
    fields["outcome"] = outcome
    return fields


def _checked_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` as plain JSON (tuples become lists, datetimes strings), with its strings made
    storable; refuses types, keys and sizes that only a caller's code can get wrong."""
    if detail is None:
        return {}
    if not isinstance(detail, Mapping):
        raise AuditEntryError(f"audit detail must be a mapping, not {type(detail).__name__}")
    clean = _plain_json(detail, "detail", 0)
    if len(canonical_json(clean).encode("utf-8")) > MAX_DETAIL_BYTES:
        raise AuditEntryError(
            f"audit detail is larger than {MAX_DETAIL_BYTES} bytes: log identifiers, not content"
        )
    assert isinstance(clean, dict)
    return clean


def _plain_json(value: Any, path: str, depth: int) -> Any:
    """A copy of ``value`` in JSON's types; refuses floats, odd types and credential keys."""
    if depth > MAX_DETAIL_DEPTH:
        raise AuditEntryError(f"audit {path} is nested deeper than {MAX_DETAIL_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum's value, say
    if isinstance(value, str):
        return _storable(value, MAX_DETAIL_STRING)
    if isinstance(value, datetime):
        return format_at(value)
    if isinstance(value, Mapping):
        return {
            _checked_key(key, path): _plain_json(item, f"{path}.{key}", depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain_json(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise AuditEntryError(
        f"audit {path} is a {type(value).__name__}: use strings, integers, booleans, None, "
        "datetimes, lists and mappings (floats are refused: their JSON text is not canonical)"
    )


def _checked_key(key: object, path: str) -> str:
    if not isinstance(key, str) or _storable(key, MAX_DETAIL_STRING) != key:
        raise AuditEntryError(f"audit {path} has a key that is not a plain string: {key!r}")
    squeezed = re.sub(r"[^a-z0-9]", "", key.lower())
    if any(word in squeezed for word in SECRET_KEY_WORDS):
        raise SecretInAuditEntry(
            f"audit {path}.{key} is named like a credential: log identifiers (a token's jti, a "
            "grant's id), never secrets"
        )
    return str(key)


def _storable(value: str, limit: int) -> str:
    """``value`` as the log keeps it: the same on every backend, never a credential.

    Such strings often come from the request (a user name that failed to log in), so they are
    made storable rather than refused: a denied access must be recorded whatever it carried.
    Credential-shaped text becomes :data:`REDACTED`, characters no database stores alike (NUL,
    lone surrogates) become U+FFFD, and text longer than ``limit`` is cut, ending in "…".
    """
    if any(shape.search(value) for shape in _SECRET_VALUES):
        return REDACTED
    value = value.replace("\x00", "\ufffd")
    value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- verifying ------------------------------------------------------------------------------

_StoredRow = Row[*tuple[Any, ...]]


class ProblemKind(enum.StrEnum):
    """How the chain is broken at the first entry that is wrong."""

    ALTERED = "altered"  # an entry's hash does not match its fields
    MISSING = "missing"  # a gap in seq: an entry was deleted
    BROKEN_LINK = "broken link"  # prev_hash is not the previous hash: replaced or reordered
    TRUNCATED = "truncated"  # the head recorded earlier is gone: tail deleted or rewritten


@dataclass(frozen=True)
class ChainProblem:
    """The first thing wrong with the chain; ``message`` is one line for the operator."""

    kind: ProblemKind
    seq: int | None  # the entry it is at; None for a truncated tail
    message: str


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found. On a problem, ``entries`` and ``head`` describe the intact
    prefix before it."""

    entries: int
    head: str  # hash of the last intact entry; GENESIS_HASH for an empty log
    problem: ChainProblem | None = None
    expected_head_seq: int | None = None  # where expect_head was found, when given

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_head(value: str) -> str:
    """A recorded head hash, lower-cased; :class:`AuditEntryError` unless 64 hex digits."""
    head = value.strip().lower()
    if not _HASH_FORM.fullmatch(head):
        raise AuditEntryError(f"a head hash is 64 hexadecimal digits, not {value!r}")
    return head


def verify(
    session: Session, *, expect_head: str | None = None, batch_size: int = DEFAULT_BATCH
) -> ChainReport:
    """Check the whole chain in seq order and report the first problem, if any.

    Entries are read ``batch_size`` at a time by seq (keyset pagination, no ORM identity map),
    so memory stays constant however long the log is. ``expect_head`` is a head hash the
    operator recorded earlier: it must still be in the chain, else its tail was removed or
    rewritten.
    """
    wanted = None if expect_head is None else check_head(expect_head)
    found_at = 0 if wanted == GENESIS_HASH else None
    count, head = 0, GENESIS_HASH
    for row in _stored_rows(session, batch_size):
        problem = _first_problem(row, count, head)
        if problem is not None:
            return ChainReport(count, head, problem)
        count, head = row.seq, row.hash
        if row.hash == wanted:
            found_at = row.seq
    if wanted is not None and found_at is None:
        return ChainReport(count, head, _truncated(wanted, count, head))
    return ChainReport(count, head, None, found_at)


def _stored_rows(session: Session, batch_size: int) -> Iterator[_StoredRow]:
    """Every entry by seq, ``at`` and ``detail`` as stored (parsed by :func:`_stored_hash`)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    sqlite = session.get_bind().dialect.name == "sqlite"
    # Raw text, so that a tampered value is reported as altered rather than failing to load.
    at = type_coerce(AuditEntry.at, Text) if sqlite else AuditEntry.at
    columns = (
        AuditEntry.seq,
        at.label("at"),
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.outcome,
        AuditEntry.dataset,
        AuditEntry.file,
        cast(AuditEntry.detail, Text).label("detail"),
        AuditEntry.prev_hash,
        AuditEntry.hash,
    )
    after: int | None = None
    while True:
        query = select(*columns).order_by(AuditEntry.seq).limit(batch_size)
        if after is not None:
            query = query.where(AuditEntry.seq > after)
        rows = session.execute(query).all()
        yield from rows
        if len(rows) < batch_size:
            return
        after = rows[-1].seq


def _first_problem(row: _StoredRow, prev_seq: int, prev_hash: str) -> ChainProblem | None:
    """What is wrong with ``row`` as the successor of entry ``prev_seq``, if anything."""
    expected = prev_seq + 1
    if row.seq > expected:
        jump = (
            f"the log starts at entry {row.seq}"
            if prev_seq == 0
            else f"seq jumps from {prev_seq} to {row.seq}"
        )
        return ChainProblem(ProblemKind.MISSING, expected, f"entry {expected} is missing: {jump}")
    if row.seq < expected:  # only seq < 1 sorts before entry 1
        return ChainProblem(
            ProblemKind.ALTERED,
            row.seq,
            f"entry {row.seq} was altered or inserted: entries are numbered from 1",
        )
    if _stored_hash(row) != row.hash:
        return ChainProblem(
            ProblemKind.ALTERED,
            row.seq,
            f"entry {row.seq} was altered: its hash does not match its contents",
        )
    if row.prev_hash != prev_hash:
        follows = "the start of the log" if prev_seq == 0 else f"entry {prev_seq}"
        return ChainProblem(
            ProblemKind.BROKEN_LINK,
            row.seq,
            f"entry {row.seq} does not follow {follows}: prev_hash differs "
            "(an entry was replaced, or entries reordered)",
        )
    return None


def _stored_hash(row: _StoredRow) -> str | None:
    """The hash of a stored row's fields; None when they cannot even be read as an entry."""
    try:
        at = row.at
        if isinstance(at, str):  # SQLite's text, always written in UTC
            at = datetime.fromisoformat(at).replace(tzinfo=UTC)
        if not isinstance(at, datetime):
            return None
        detail = json.loads(row.detail)
        if not isinstance(detail, dict):
            return None
        return entry_hash(
            seq=row.seq,
            at=at,
            actor=row.actor,
            action=row.action,
            outcome=row.outcome,
            dataset=row.dataset,
            file=row.file,
            detail=detail,
            prev_hash=row.prev_hash,
        )
    except (TypeError, ValueError):  # garbage written around the application (ValueError
        return None  # covers bad JSON, bad dates and undecodable text)


def _truncated(wanted: str, count: int, head: str) -> ChainProblem:
    return ChainProblem(
        ProblemKind.TRUNCATED,
        None,
        f"the recorded head {wanted} is no longer in the log: its tail was deleted or rewritten "
        f"(the log now ends at entry {count}, head {head})",
    )


# -- reading --------------------------------------------------------------------------------


def query(
    session: Session,
    *,
    actor: str | None = None,
    dataset: str | None = None,
    action: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    """Entries matching every given filter, newest (highest seq) first.

    ``since`` is inclusive and ``until`` exclusive, both timezone-aware; ``offset`` skips that
    many matches, for paging.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset cannot be negative")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise AuditEntryError(f"{name} is a naive datetime: give it a time zone")
    statement = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)
    for column, value in (
        (AuditEntry.actor, actor),
        (AuditEntry.dataset, dataset),
        (AuditEntry.action, action),
        (AuditEntry.outcome, outcome),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if since is not None:
        statement = statement.where(AuditEntry.at >= since)
    if until is not None:
        statement = statement.where(AuditEntry.at < until)
    return list(session.scalars(statement))


def as_json(entry: AuditEntry) -> dict[str, Any]:
    """Every field of ``entry``, ``at`` in the form the hash covers: an auditor can re-derive
    ``hash`` from this alone."""
    return {
        "seq": entry.seq,
        "at": format_at(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "outcome": entry.outcome,
        "dataset": entry.dataset,
        "file": entry.file,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
