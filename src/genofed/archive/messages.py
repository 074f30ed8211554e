"""FEGA broker messages: the pipeline's queue names, schema validation, and builders.

Every body that crosses a queue is a FEGA message, in the forms the federated EGA nodes exchange
(those of the NeIC Sensitive Data Archive). The queues validate bodies when they are published
and again when they are received, so a stage never sees a malformed message and a producer bug
is caught at its source.

The forms are defined here, in :data:`_FORMS`: our own JSON-schema rules, written from what each
message means (the required fields, their types, the ``type``/``operation`` constants, checksum
and accession forms). The official FEGA schemas are not part of genofed (their licence is not
ours); ``tests/archive/test_messages_interop.py`` checks that our rules and theirs give the same
verdicts, and says where ours are deliberately stricter.

Which schema a queue carries (:func:`schema_for`):

============  =====================================================================
queue         schema
============  =====================================================================
inbox         inbox-upload / inbox-remove / inbox-rename, by ``operation``
ingest        ingestion-trigger
verify        ingestion-verification
accession     ingestion-accession when the body has a ``type``, else
              ingestion-accession-request (a request for the node to assign one)
backup        ingestion-accession when the body has a ``type``, else
              ingestion-completion (SDA's backup accepts either)
completion    ingestion-completion
mapping       dataset-mapping / dataset-release / dataset-deprecate, by ``type``
rotate        rotate-key
============  =====================================================================
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, relevance
from jsonschema.validators import extend

from genofed.errors import GenofedError

INBOX = "inbox"
INGEST = "ingest"
VERIFY = "verify"
ACCESSION = "accession"
BACKUP = "backup"
COMPLETION = "completion"
MAPPING = "mapping"
ROTATE = "rotate"
QUEUES = (INBOX, INGEST, VERIFY, ACCESSION, BACKUP, COMPLETION, MAPPING, ROTATE)

SCHEMAS = (
    "dataset-deprecate",
    "dataset-mapping",
    "dataset-release",
    "inbox-remove",
    "inbox-rename",
    "inbox-upload",
    "info-error",
    "ingestion-accession",
    "ingestion-accession-request",
    "ingestion-completion",
    "ingestion-trigger",
    "ingestion-user-error",
    "ingestion-verification",
    "rotate-key",
)

_SINGLE_SCHEMA = {
    INGEST: "ingestion-trigger",
    VERIFY: "ingestion-verification",
    COMPLETION: "ingestion-completion",
    ROTATE: "rotate-key",
}
# Queues whose messages say what they are in one field: queue -> (field, {value: schema}).
_BY_FIELD = {
    INBOX: (
        "operation",
        {"upload": "inbox-upload", "remove": "inbox-remove", "rename": "inbox-rename"},
    ),
    MAPPING: (
        "type",
        {
            "mapping": "dataset-mapping",
            "release": "dataset-release",
            "deprecate": "dataset-deprecate",
        },
    ),
}
# Queues carrying ingestion-accession (which has a ``type``) or another schema (which has none).
_TYPED_OR_NOT = {
    ACCESSION: ("ingestion-accession", "ingestion-accession-request"),
    BACKUP: ("ingestion-accession", "ingestion-completion"),
}
_MAX_MESSAGE = 300  # characters of a validation problem kept in an error message
_MAX_DEPTH = 64  # nesting of a body; deeper is not a FEGA message and would exhaust the stack


# -- the message forms ----------------------------------------------------------------------------
# One JSON-schema rule per message, in the terms of the FEGA message semantics. Fields not named
# are allowed (a node may add its own); a checksum, though, is exactly {"type", "value"}.


def _text(min_length: int = 0, pattern: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"type": "string"}
    if min_length:
        rule["minLength"] = min_length
    if pattern is not None:
        rule["pattern"] = pattern
    return rule


def _one_of_texts(*values: str) -> dict[str, Any]:
    return {"enum": list(values)} if len(values) > 1 else {"const": values[0]}


def _checksum(algorithm: str, hex_digits: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "value"],
        "properties": {
            "type": {"const": algorithm},
            "value": _text(pattern=f"^[a-fA-F0-9]{{{hex_digits}}}$"),
        },
        "additionalProperties": False,
    }


def _checksums(*, with_sha256: bool = False) -> dict[str, Any]:
    """A list of sha256 and md5 checksums; ``with_sha256``: at least one of them a sha256."""
    rule: dict[str, Any] = {
        "type": "array",
        "items": {"anyOf": [_checksum("sha256", 64), _checksum("md5", 32)]},
    }
    if with_sha256:
        rule["contains"] = {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"const": "sha256"}},
        }
    return rule


def _form(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


_EGA_FILE = _text(pattern="^EGAF[0-9]{11}$")
_EGA_DATASET = _text(pattern="^EGAD[0-9]{11}$")
_UUID = _text(pattern="^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")
_NAME = _text()  # a user or path that SDA takes as it comes
_NAMED = _text(min_length=2)  # one that must say something

_FORMS: dict[str, dict[str, Any]] = {
    "inbox-upload": _form(
        {"operation": _one_of_texts("upload"), "user": _NAME, "filepath": _NAMED},
        {
            "filesize": {"type": "integer"},
            "file_last_modified": {"type": "integer"},
            "encrypted_checksums": _checksums(),
        },
    ),
    "inbox-remove": _form(
        {"operation": _one_of_texts("remove"), "user": _NAME, "filepath": _NAMED}
    ),
    "inbox-rename": _form(
        {
            "operation": _one_of_texts("rename"),
            "user": _NAME,
            "filepath": _NAMED,
            "oldpath": _NAMED,
        }
    ),
    "ingestion-trigger": _form(
        {"type": _one_of_texts("ingest", "cancel"), "user": _NAMED, "filepath": _NAMED},
        {"encrypted_checksums": _checksums()},
    ),
    "ingestion-user-error": _form(
        {"user": _NAME, "filepath": _NAMED, "reason": _text()},
        {"encrypted_checksums": _checksums()},
    ),
    "ingestion-verification": _form(
        {
            "user": _NAME,
            "filepath": _NAME,
            "file_id": _text(),
            "archive_path": _text(),
            "encrypted_checksums": _checksums(),
            "re_verify": {"type": "boolean"},
        }
    ),
    "ingestion-accession-request": _form(
        {"user": _NAME, "filepath": _NAME, "decrypted_checksums": _checksums(with_sha256=True)}
    ),
    # Unlike the request and the completion, an accession need not carry a sha256.
    "ingestion-accession": _form(
        {
            "type": _one_of_texts("accession"),
            "user": _NAME,
            "filepath": _NAME,
            "accession_id": _EGA_FILE,
            "decrypted_checksums": _checksums(),
        }
    ),
    "ingestion-completion": _form(
        {
            "user": _NAME,
            "filepath": _NAME,
            "accession_id": _EGA_FILE,
            "decrypted_checksums": _checksums(with_sha256=True),
        }
    ),
    "dataset-mapping": _form(
        {
            "type": _one_of_texts("mapping"),
            "dataset_id": _EGA_DATASET,
            "accession_ids": {"type": "array", "items": _EGA_FILE},
        }
    ),
    "dataset-release": _form({"type": _one_of_texts("release"), "dataset_id": _EGA_DATASET}),
    "dataset-deprecate": _form({"type": _one_of_texts("deprecate"), "dataset_id": _EGA_DATASET}),
    "rotate-key": _form({"type": _one_of_texts("key_rotation"), "file_id": _UUID}),
    "info-error": _form(
        {"error": _text(), "reason": _text(min_length=1), "original-message": _text()}
    ),
}
assert sorted(_FORMS) == sorted(SCHEMAS)


class InvalidMessage(GenofedError):
    """A body that does not match its FEGA schema; says which schema, where, and what is wrong."""


class UnknownQueue(GenofedError):
    """A queue name that is not one of the pipeline's (a typo would otherwise lose messages)."""


def check_queue(queue: str) -> str:
    """``queue`` itself if it is one of :data:`QUEUES`, else :class:`UnknownQueue`."""
    if queue not in QUEUES:
        raise UnknownQueue(
            f"unknown queue {queue!r}: the pipeline's queues are {', '.join(QUEUES)}; "
            "use the constants in genofed.archive.messages"
        )
    return queue


def check_queues(queues: Sequence[str]) -> tuple[str, ...]:
    """The names for a ``get``: a non-empty sequence of pipeline queues (not a bare string)."""
    if isinstance(queues, str) or not queues:
        raise ValueError(f"expected a non-empty list of queue names, not {queues!r}")
    return tuple(check_queue(queue) for queue in queues)


def schema_for(queue: str, body: Mapping[str, Any]) -> str:
    """The name of the schema a ``body`` on ``queue`` must match (see the module's table).

    Raises :class:`UnknownQueue` for a queue outside :data:`QUEUES`, and :class:`InvalidMessage`
    when the body does not say which of its queue's schemas it follows.
    """
    check_queue(queue)
    if not isinstance(body, Mapping):
        raise InvalidMessage(f"{queue} message: {_kind(body)} is not a JSON object (at $)")
    if queue in _SINGLE_SCHEMA:
        return _SINGLE_SCHEMA[queue]
    if queue in _TYPED_OR_NOT:
        typed, untyped = _TYPED_OR_NOT[queue]
        return typed if "type" in body else untyped
    field, choices = _BY_FIELD[queue]
    value = body.get(field)
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(choice) for choice in choices)
        raise InvalidMessage(
            f"{queue} message: {field!r} must be one of {expected}, not {_short(repr(value))} "
            f"(at $.{field})"
        )
    return choices[value]


def validate(schema_name: str, body: Any) -> dict[str, Any]:
    """Check ``body`` against the FEGA schema ``schema_name`` and return it unchanged.

    Besides the schema, a body must be plain JSON (string keys, finite numbers, lists not
    tuples), so that whatever validates can also be sent. Raises :class:`InvalidMessage` naming
    the schema, the JSON path and the problem, e.g.
    ``ingestion-verification message: 'file_id' is a required property (at $)``.
    """
    validator = _validator(schema_name)
    if not isinstance(body, dict):
        raise InvalidMessage(f"{schema_name} message: {_kind(body)} is not a JSON object (at $)")
    problem = _not_json(body, "$", 0)
    if problem is not None:
        raise InvalidMessage(f"{schema_name} message: {problem}")
    error = _most_relevant(validator.iter_errors(body))
    if error is not None:
        raise InvalidMessage(
            f"{schema_name} message: {_short(_describe(error))} (at {_short(error.json_path)})"
        )
    return body


def validate_for(queue: str, body: Any) -> dict[str, Any]:
    """Check ``body`` against the schema of ``queue``: what the queues do on publish and get."""
    return validate(schema_for(queue, body), body)


@cache
def _validator(schema_name: str) -> Any:
    """The compiled validator of one message form, made once per process."""
    if schema_name not in SCHEMAS:
        raise ValueError(f"no FEGA schema named {schema_name!r}; known: {', '.join(SCHEMAS)}")
    schema = _FORMS[schema_name]
    _Validator.check_schema(schema)
    return _Validator(schema)


def _pattern(validator: Any, pattern: str, instance: object, schema: object) -> Iterator[Any]:
    """JSON Schema's ``pattern``, with the regex meaning JSON Schema gives it (ECMA-262): a
    final ``$`` ends the text. Python's ``$`` also matches before a final newline, which would
    let ``"EGAF00000000042\\n"`` through."""
    if validator.is_type(instance, "string") and not _regex(pattern).search(str(instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


_Validator = extend(Draft7Validator, {"pattern": _pattern})


def _most_relevant(errors: Iterable[ValidationError]) -> ValidationError | None:
    """The error a person should fix first.

    Like jsonschema's ``best_match``, except that in an ``anyOf`` it follows the alternative
    the body came closest to (:func:`_distance`): a sha256 checksum one digit short is reported
    as a bad sha256 value, not as "'md5' was expected".
    """
    best = max(errors, key=relevance, default=None)
    while best is not None and best.validator in ("anyOf", "oneOf") and best.context:
        alternatives: dict[object, list[ValidationError]] = {}
        for error in best.context:
            alternatives.setdefault(error.relative_schema_path[0], []).append(error)
        closest = min(alternatives.values(), key=_distance)
        best = max(closest, key=relevance)
    return best


def _distance(errors: list[ValidationError]) -> tuple[int, int]:
    """How far a body is from one alternative: first the fixed values it contradicts (a
    checksum whose ``type`` is "md5" meant the md5 alternative), then the number of errors."""
    mismatches = sum(error.validator in ("const", "enum", "type") for error in errors)
    return mismatches, len(errors)


def _describe(error: ValidationError) -> str:
    """jsonschema's message, except for ``contains``, whose own message does not say what is
    missing."""
    if error.validator != "contains" or not isinstance(error.validator_value, dict):
        return str(error.message)
    properties = error.validator_value.get("properties", {})
    wanted = [
        f"{name} {rule['const']!r}"
        for name, rule in properties.items()
        if isinstance(rule, dict) and "const" in rule
    ]
    return f"has no item with {' and '.join(wanted)}" if wanted else "has no item it must contain"


def _not_json(value: object, path: str, depth: int) -> str | None:
    """Why ``value`` is not plain JSON, or None when it is."""
    if depth > _MAX_DEPTH:
        return f"nested deeper than {_MAX_DEPTH} levels (at {_short(path)})"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {_short(repr(key))} is not a string (at {_short(path)})"
            problem = _not_json(item, f"{path}[{key!r}]", depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _not_json(item, f"{path}[{index}]", depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a JSON number (at {_short(path)})"
    if value is None or isinstance(value, str | int | float | bool):
        return None
    return f"{_kind(value)} is not a JSON value (at {_short(path)})"


def _kind(value: object) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def _short(text: str) -> str:
    """One line of at most ``_MAX_MESSAGE`` characters: error messages quote the bad values."""
    line = " ".join(text.split())
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


# -- builders: one per message the pipeline emits, each validated before it is returned ---------


def _sha256(value: str) -> dict[str, str]:
    return {"type": "sha256", "value": value}


def _md5(value: str) -> dict[str, str]:
    return {"type": "md5", "value": value}


def ingestion_trigger(user: str, filepath: str, sha256: str | None = None) -> dict[str, Any]:
    """Ask the ingest stage to archive an uploaded file (``sha256`` of the encrypted upload)."""
    body: dict[str, Any] = {"type": "ingest", "user": user, "filepath": filepath}
    if sha256 is not None:
        body["encrypted_checksums"] = [_sha256(sha256)]
    return validate("ingestion-trigger", body)


def ingestion_verification(
    user: str,
    filepath: str,
    file_id: str,
    archive_path: str,
    sha256: str,
    re_verify: bool = False,
) -> dict[str, Any]:
    """Ask the verify stage to decrypt and check an archived file (``sha256`` as archived)."""
    return validate(
        "ingestion-verification",
        {
            "user": user,
            "filepath": filepath,
            "file_id": file_id,
            "archive_path": archive_path,
            "encrypted_checksums": [_sha256(sha256)],
            "re_verify": re_verify,
        },
    )


def accession_request(user: str, filepath: str, sha256: str, md5: str) -> dict[str, Any]:
    """A verified file asks for its accession (checksums of the decrypted content)."""
    return validate(
        "ingestion-accession-request",
        {"user": user, "filepath": filepath, "decrypted_checksums": [_sha256(sha256), _md5(md5)]},
    )


def ingestion_accession(
    user: str, filepath: str, accession_id: str, sha256: str, md5: str
) -> dict[str, Any]:
    """A file's accession (EGA form, ``EGAF`` + 11 digits), with its decrypted checksums."""
    return validate(
        "ingestion-accession",
        {
            "type": "accession",
            "user": user,
            "filepath": filepath,
            "accession_id": accession_id,
            "decrypted_checksums": [_sha256(sha256), _md5(md5)],
        },
    )


def ingestion_completion(
    user: str, filepath: str, accession_id: str, sha256: str, md5: str
) -> dict[str, Any]:
    """A file is archived, backed up and accessioned: ready to be put in datasets."""
    return validate(
        "ingestion-completion",
        {
            "user": user,
            "filepath": filepath,
            "accession_id": accession_id,
            "decrypted_checksums": [_sha256(sha256), _md5(md5)],
        },
    )


def dataset_mapping(dataset_id: str, accession_ids: Sequence[str]) -> dict[str, Any]:
    """Files (``EGAF...``) that make up a dataset (``EGAD...``)."""
    return validate(
        "dataset-mapping",
        {"type": "mapping", "dataset_id": dataset_id, "accession_ids": list(accession_ids)},
    )


def dataset_release(dataset_id: str) -> dict[str, Any]:
    """A dataset becomes visible beyond the node."""
    return validate("dataset-release", {"type": "release", "dataset_id": dataset_id})


def dataset_deprecate(dataset_id: str) -> dict[str, Any]:
    """A dataset is withdrawn."""
    return validate("dataset-deprecate", {"type": "deprecate", "dataset_id": dataset_id})


def rotate_key(file_id: str) -> dict[str, Any]:
    """Re-seal a file's header for the node's new key (``file_id`` is the file's UUID)."""
    return validate("rotate-key", {"type": "key_rotation", "file_id": file_id})


def inbox_upload(user: str, filepath: str, filesize: int, sha256: str) -> dict[str, Any]:
    """A submitter finished uploading a file to the inbox (``sha256`` of the encrypted file)."""
    return validate(
        "inbox-upload",
        {
            "operation": "upload",
            "user": user,
            "filepath": filepath,
            "filesize": filesize,
            "encrypted_checksums": [_sha256(sha256)],
        },
    )


def info_error(error: str, reason: str, original: Mapping[str, Any] | str) -> dict[str, Any]:
    """Tell Central EGA a message failed; ``original`` is that message (serialized if a dict)."""
    text = original if isinstance(original, str) else json.dumps(original, sort_keys=True)
    return validate("info-error", {"error": error, "reason": reason, "original-message": text})
