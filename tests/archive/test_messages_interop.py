"""Our FEGA message forms against the official FEGA schemas.

genofed does not ship the official schemas (NeIC SDA's, under the AGPL): it defines the message
forms itself (``genofed.archive.messages._FORMS``). These tests read the official schemas from
the team's ``../shared/specs/fega-messages`` (skipped without it) and check that

* every builder's output is valid by the official schema of its kind, and
* for each kind, our validator and the official schema give the same verdict on valid and
  invalid bodies: hand-written edge cases and hypothesis-generated variations.

Where ours deliberately differs, the tests say so and encode it (``_agree``): ours is stricter in
exactly two ways, and never looser.

1. A pattern's final ``$`` ends the text, as in the ECMA-262 regexes JSON Schema specifies (and
   as SDA's Go validator reads it); Python's ``re``, which ``jsonschema`` uses, also matches
   before a final newline, so the official schema run by ``jsonschema`` lets
   ``"EGAD00000000007\\n"`` through.
2. A body must be plain JSON that can be sent: no NaN or infinities, no tuples or non-string
   keys, at most 64 levels deep, even in fields the schema does not look at.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend

from genofed.archive import messages as m
from genofed.archive.messages import InvalidMessage

SHA = "82e4e60e7beb3db2e06a00a079788f7d71f75b61a4b75f28c4c942703dabb6d6"
MD5 = "7ac236b1a8dce2dac89e7cf45d2b48bd"
USER = "submitter@example.org"
PATH = "inbox/sample-1.bam.c4gh"
FILE_ID = "0e1a7c5e-3b0f-4d7a-9a51-8f3e4b2c9d10"
EGAF = "EGAF00000000042"
EGAD = "EGAD00000000007"
SHA_ITEM = {"type": "sha256", "value": SHA}
MD5_ITEM = {"type": "md5", "value": MD5}

# One valid body per kind, written by hand (the builders are checked separately).
VALID: dict[str, dict[str, Any]] = {
    "inbox-upload": {
        "operation": "upload",
        "user": USER,
        "filepath": PATH,
        "filesize": 1234,
        "file_last_modified": 1700000000,
        "encrypted_checksums": [SHA_ITEM],
    },
    "inbox-remove": {"operation": "remove", "user": USER, "filepath": PATH},
    "inbox-rename": {"operation": "rename", "user": USER, "filepath": PATH, "oldpath": "old/p"},
    "ingestion-trigger": {
        "type": "ingest",
        "user": USER,
        "filepath": PATH,
        "encrypted_checksums": [SHA_ITEM, MD5_ITEM],
    },
    "ingestion-user-error": {"user": USER, "filepath": PATH, "reason": "not Crypt4GH"},
    "ingestion-verification": {
        "user": USER,
        "filepath": PATH,
        "file_id": FILE_ID,
        "archive_path": "0e/1a/x.c4gh",
        "encrypted_checksums": [SHA_ITEM],
        "re_verify": False,
    },
    "ingestion-accession-request": {
        "user": USER,
        "filepath": PATH,
        "decrypted_checksums": [SHA_ITEM, MD5_ITEM],
    },
    "ingestion-accession": {
        "type": "accession",
        "user": USER,
        "filepath": PATH,
        "accession_id": EGAF,
        "decrypted_checksums": [SHA_ITEM, MD5_ITEM],
    },
    "ingestion-completion": {
        "user": USER,
        "filepath": PATH,
        "accession_id": EGAF,
        "decrypted_checksums": [SHA_ITEM, MD5_ITEM],
    },
    "dataset-mapping": {"type": "mapping", "dataset_id": EGAD, "accession_ids": [EGAF]},
    "dataset-release": {"type": "release", "dataset_id": EGAD},
    "dataset-deprecate": {"type": "deprecate", "dataset_id": EGAD},
    "rotate-key": {"type": "key_rotation", "file_id": FILE_ID},
    "info-error": {"error": "ingest failed", "reason": "wrong key", "original-message": "{}"},
}


# -- the official schemas, read two ways ---------------------------------------------------------


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """``pattern`` as JSON Schema means it (ECMA-262): a final ``$`` ends the text."""
    regex = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    if validator.is_type(instance, "string") and not re.search(regex, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_EcmaValidator = extend(Draft7Validator, {"pattern": _ecma_pattern})


class Official:
    """The official schemas, run by ``jsonschema`` as is and with ECMA-262 patterns."""

    def __init__(self, folder: Path) -> None:
        self.schemas = {
            name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
            for name in m.SCHEMAS
        }
        self._python = {name: Draft7Validator(s) for name, s in self.schemas.items()}
        self._ecma = {name: _EcmaValidator(s) for name, s in self.schemas.items()}

    def accepts(self, schema: str, body: Any) -> bool:
        return bool(self._python[schema].is_valid(body))

    def accepts_with_ecma_patterns(self, schema: str, body: Any) -> bool:
        return bool(self._ecma[schema].is_valid(body))


@pytest.fixture(scope="module")
def official(shared_dir: Path) -> Official:
    return Official(shared_dir / "specs" / "fega-messages")


def _ours(schema: str, body: Any) -> bool:
    try:
        m.validate(schema, body)
    except InvalidMessage:
        return False
    return True


def _agree(official: Official, schema: str, body: Any) -> bool:
    """Assert our verdict on a JSON ``body`` is the official one, but for difference 1 (see the
    module's docstring); return the verdict."""
    ours = _ours(schema, body)
    theirs = official.accepts(schema, body)
    if ours != theirs:
        # Only ever stricter, and only where JSON Schema's own regex semantics agree with us.
        assert theirs and not ours, (schema, body)
        assert not official.accepts_with_ecma_patterns(schema, body), (schema, body)
    assert ours == official.accepts_with_ecma_patterns(schema, body), (schema, body)
    return ours


# -- the same fields, the same requirements ------------------------------------------------------


@pytest.mark.parametrize("schema", m.SCHEMAS)
def test_each_form_names_the_official_fields_and_requires_the_same(
    official: Official, schema: str
) -> None:
    ours = m._validator(schema).schema
    theirs = official.schemas[schema]
    assert set(ours["required"]) == set(theirs["required"])
    assert set(ours["properties"]) == set(theirs["properties"])
    # Both let a message carry fields of its own; neither is closed.
    assert ours.get("additionalProperties", True) is True
    assert theirs.get("additionalProperties", True) is True


@pytest.mark.parametrize("schema", m.SCHEMAS)
def test_the_valid_bodies_are_valid_for_both(official: Official, schema: str) -> None:
    assert _agree(official, schema, VALID[schema])


@pytest.mark.parametrize(
    ("schema", "field"),
    [(schema, field) for schema in m.SCHEMAS for field in VALID[schema]],
)
def test_without_a_field_both_give_the_same_verdict(
    official: Official, schema: str, field: str
) -> None:
    body = {k: v for k, v in VALID[schema].items() if k != field}
    required = field in official.schemas[schema]["required"]
    assert _agree(official, schema, body) is not required


# (kind, fields changed, accepted by both)
EDGE_CASES: list[tuple[str, dict[str, Any], bool]] = [
    # type / operation constants
    ("ingestion-trigger", {"type": "cancel"}, True),
    ("ingestion-trigger", {"type": "stop"}, False),
    ("ingestion-trigger", {"type": None}, False),
    ("ingestion-accession", {"type": "accessions"}, False),
    ("dataset-release", {"type": "mapping"}, False),
    ("dataset-deprecate", {"type": "Deprecate"}, False),
    ("rotate-key", {"type": "rotate"}, False),
    ("inbox-upload", {"operation": "remove"}, False),
    ("inbox-remove", {"operation": "rename"}, False),
    # minimum lengths
    ("ingestion-trigger", {"user": "u"}, False),
    ("ingestion-trigger", {"filepath": "p"}, False),
    ("inbox-upload", {"user": ""}, True),
    ("inbox-rename", {"oldpath": "x"}, False),
    ("inbox-remove", {"filepath": "x"}, False),
    ("ingestion-user-error", {"filepath": "x"}, False),
    ("ingestion-user-error", {"reason": ""}, True),
    ("info-error", {"reason": ""}, False),
    ("info-error", {"error": ""}, True),
    ("ingestion-verification", {"filepath": ""}, True),
    # checksums
    ("ingestion-trigger", {"encrypted_checksums": []}, True),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "sha256", "value": SHA[:-1]}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "sha256", "value": SHA + "0"}]}, False),
    (
        "ingestion-trigger",
        {"encrypted_checksums": [{"type": "sha256", "value": SHA.upper()}]},
        True,
    ),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "sha256", "value": "g" * 64}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "md5", "value": SHA}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "sha256", "value": MD5}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "sha1", "value": SHA[:40]}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": [{"type": "sha256"}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": [{**SHA_ITEM, "note": 1}]}, False),
    ("ingestion-trigger", {"encrypted_checksums": SHA_ITEM}, False),
    ("inbox-upload", {"encrypted_checksums": [MD5_ITEM]}, True),
    ("ingestion-user-error", {"encrypted_checksums": [MD5_ITEM, SHA_ITEM]}, True),
    ("ingestion-verification", {"encrypted_checksums": []}, True),
    ("ingestion-accession-request", {"decrypted_checksums": [MD5_ITEM]}, False),
    ("ingestion-accession-request", {"decrypted_checksums": []}, False),
    ("ingestion-accession-request", {"decrypted_checksums": [MD5_ITEM, SHA_ITEM]}, True),
    ("ingestion-completion", {"decrypted_checksums": [MD5_ITEM]}, False),
    ("ingestion-completion", {"decrypted_checksums": [SHA_ITEM]}, True),
    # The official accession message does not insist on a sha256; nor do we.
    ("ingestion-accession", {"decrypted_checksums": [MD5_ITEM]}, True),
    ("ingestion-accession", {"decrypted_checksums": []}, True),
    # accessions and UUIDs
    ("ingestion-accession", {"accession_id": "EGAF0000000042"}, False),
    ("ingestion-accession", {"accession_id": "EGAF000000000420"}, False),
    ("ingestion-accession", {"accession_id": "EGAD00000000042"}, False),
    ("ingestion-completion", {"accession_id": "egaf00000000042"}, False),
    ("ingestion-completion", {"accession_id": "GFBEF00000000042"}, False),
    ("dataset-mapping", {"accession_ids": []}, True),
    ("dataset-mapping", {"accession_ids": [EGAF, EGAF]}, True),
    ("dataset-mapping", {"accession_ids": [EGAF, "EGAF1"]}, False),
    ("dataset-mapping", {"accession_ids": EGAF}, False),
    ("dataset-mapping", {"dataset_id": EGAF}, False),
    ("dataset-release", {"dataset_id": "EGAD0000000000\uff17"}, False),  # a non-ASCII digit
    ("dataset-deprecate", {"dataset_id": " " + EGAD}, False),
    ("rotate-key", {"file_id": FILE_ID.upper()}, False),
    ("rotate-key", {"file_id": FILE_ID.replace("3b0f", "3B0f")}, False),
    ("rotate-key", {"file_id": FILE_ID.replace("-", "")}, False),
    ("rotate-key", {"file_id": "{" + FILE_ID + "}"}, False),
    # other types
    ("inbox-upload", {"filesize": 1.0}, True),  # JSON Schema: 1.0 is an integer
    ("inbox-upload", {"filesize": 1.5}, False),
    ("inbox-upload", {"filesize": "1234"}, False),
    ("inbox-upload", {"filesize": True}, False),
    ("inbox-upload", {"file_last_modified": "2024-01-01"}, False),
    ("ingestion-verification", {"re_verify": "true"}, False),
    ("ingestion-verification", {"re_verify": 0}, False),
    ("ingestion-verification", {"file_id": 42}, False),
    ("info-error", {"original-message": {"type": "ingest"}}, False),
    # fields the official schema does not know are allowed
    ("ingestion-trigger", {"note": {"any": ["thing", 1, None]}}, True),
    ("dataset-mapping", {"correlation_id": FILE_ID}, True),
    ("rotate-key", {"user": 7}, True),
]


@pytest.mark.parametrize(("schema", "change", "accepted"), EDGE_CASES)
def test_edge_cases_get_the_same_verdict(
    official: Official, schema: str, change: dict[str, Any], accepted: bool
) -> None:
    assert _agree(official, schema, {**VALID[schema], **change}) is accepted


# -- deliberately stricter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "field", "value"),
    [
        ("dataset-release", "dataset_id", EGAD + "\n"),
        ("dataset-mapping", "accession_ids", [EGAF + "\n"]),
        ("ingestion-accession", "accession_id", EGAF + "\n"),
        ("rotate-key", "file_id", FILE_ID + "\n"),
        ("ingestion-trigger", "encrypted_checksums", [{"type": "sha256", "value": SHA + "\n"}]),
    ],
)
def test_stricter_a_pattern_does_not_match_before_a_final_newline(
    official: Official, schema: str, field: str, value: Any
) -> None:
    body = {**VALID[schema], field: value}
    assert official.accepts(schema, body)  # Python's re: "$" matches before the "\n"
    assert not official.accepts_with_ecma_patterns(schema, body)  # JSON Schema's meaning
    assert not _ours(schema, body)


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"d": value}
    return value


@pytest.mark.parametrize("extra", [math.nan, -math.inf, (1, 2), {1: "a"}, b"x", _deep(100)])
def test_stricter_a_body_must_be_plain_json(official: Official, extra: Any) -> None:
    body = {**VALID["rotate-key"], "note": extra}
    assert official.accepts("rotate-key", body)  # the schema does not look at "note"
    assert not _ours("rotate-key", body)


# -- the builders --------------------------------------------------------------------------------

BUILT: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("ingestion-trigger", lambda: m.ingestion_trigger(USER, PATH)),
    ("ingestion-trigger", lambda: m.ingestion_trigger(USER, PATH, SHA)),
    ("ingestion-verification", lambda: m.ingestion_verification(USER, PATH, FILE_ID, "a", SHA)),
    ("ingestion-verification", lambda: m.ingestion_verification(USER, PATH, "7", "a", SHA, True)),
    ("ingestion-accession-request", lambda: m.accession_request(USER, PATH, SHA, MD5)),
    ("ingestion-accession", lambda: m.ingestion_accession(USER, PATH, EGAF, SHA, MD5)),
    ("ingestion-completion", lambda: m.ingestion_completion(USER, PATH, EGAF, SHA, MD5)),
    ("dataset-mapping", lambda: m.dataset_mapping(EGAD, [EGAF, "EGAF00000000043"])),
    ("dataset-mapping", lambda: m.dataset_mapping(EGAD, ())),
    ("dataset-release", lambda: m.dataset_release(EGAD)),
    ("dataset-deprecate", lambda: m.dataset_deprecate(EGAD)),
    ("rotate-key", lambda: m.rotate_key(FILE_ID)),
    ("inbox-upload", lambda: m.inbox_upload(USER, PATH, 0, SHA.upper())),
    ("info-error", lambda: m.info_error("e", "r", {"type": "ingest", "n": [1, None]})),
    ("info-error", lambda: m.info_error("", "r", "not JSON at all")),
]


@pytest.mark.parametrize(("schema", "build"), BUILT)
def test_each_builder_output_is_valid_by_the_official_schema(
    official: Official, schema: str, build: Callable[[], dict[str, Any]]
) -> None:
    assert official.accepts(schema, build())


HEX = "0123456789abcdefABCDEF"
hexes = st.sampled_from([0, 31, 32, 33, 63, 64, 65]).flatmap(
    lambda n: st.text(alphabet=HEX, min_size=n, max_size=n)
) | st.sampled_from(["g" * 64, "z" * 32, SHA + "\n", MD5 + "\n"])
sha256s = st.text(alphabet=HEX, min_size=64, max_size=64) | hexes
md5s = st.text(alphabet=HEX, min_size=32, max_size=32) | hexes
accessions = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["EGAF", "EGAD", "EGAC", "egaf", "GFBEF", ""]),
        st.text(alphabet="0123456789", min_size=10, max_size=12),
        st.sampled_from(["", "", "", "\n", " ", "x"]),
    ),
)
file_accessions = st.text(alphabet="0123456789", min_size=11, max_size=11).map(lambda d: f"EGAF{d}")
uuids = (
    st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex)
    | st.uuids().map(lambda u: f"{u}\n")
    | st.tuples(st.uuids().map(str), st.integers(0, 35)).map(
        lambda t: t[0][: t[1]] + t[0][t[1]].upper() + t[0][t[1] + 1 :]
    )
)
texts = st.text(max_size=3) | st.text(max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)

BUILDER_ARGS: dict[
    str, tuple[Callable[..., dict[str, Any]], st.SearchStrategy[tuple[Any, ...]]]
] = {
    "ingestion-trigger": (m.ingestion_trigger, st.tuples(texts, texts, st.none() | sha256s)),
    "ingestion-verification": (
        m.ingestion_verification,
        st.tuples(texts, texts, uuids | texts, texts, sha256s, st.booleans()),
    ),
    "ingestion-accession-request": (m.accession_request, st.tuples(texts, texts, sha256s, md5s)),
    "ingestion-accession": (
        m.ingestion_accession,
        st.tuples(texts, texts, accessions | file_accessions, sha256s, md5s),
    ),
    "ingestion-completion": (
        m.ingestion_completion,
        st.tuples(texts, texts, accessions | file_accessions, sha256s, md5s),
    ),
    "dataset-mapping": (
        m.dataset_mapping,
        st.tuples(accessions, st.lists(file_accessions | accessions, max_size=4)),
    ),
    "dataset-release": (m.dataset_release, st.tuples(accessions)),
    "dataset-deprecate": (m.dataset_deprecate, st.tuples(accessions)),
    "rotate-key": (m.rotate_key, st.tuples(uuids | texts)),
    "inbox-upload": (m.inbox_upload, st.tuples(texts, texts, st.integers(), sha256s)),
    "info-error": (
        m.info_error,
        st.tuples(texts, texts, st.dictionaries(st.text(max_size=8), json_values) | texts),
    ),
}


@pytest.mark.parametrize("schema", sorted(BUILDER_ARGS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_builders_build_what_the_official_schema_accepts(
    official: Official, schema: str, data: st.DataObject
) -> None:
    """Whatever the arguments: a body a builder returns is officially valid, and one it refuses
    is officially invalid too (up to the documented strictness)."""
    build, arguments = BUILDER_ARGS[schema]
    args = data.draw(arguments)
    seen: list[dict[str, Any]] = []
    real_validate = m.validate

    def spy(name: str, body: Any) -> dict[str, Any]:
        assert name == schema
        seen.append(body)
        return real_validate(name, body)

    with mock.patch.object(m, "validate", spy):
        try:
            body = build(*args)
        except InvalidMessage:
            (refused,) = seen
            assert not _agree(official, schema, refused)
        else:
            assert seen == [body]
            assert official.accepts(schema, body)


# -- generated variations of valid bodies ----------------------------------------------------------

CONSTANTS = st.sampled_from(
    [
        "ingest",
        "cancel",
        "accession",
        "mapping",
        "release",
        "deprecate",
        "key_rotation",
        "upload",
        "remove",
        "rename",
        "stop",
        "",
    ]
)
checksum_items = st.fixed_dictionaries(
    {"type": st.sampled_from(["sha256", "md5", "sha1", "SHA256"]), "value": hexes},
    optional={"extra": st.integers()},
) | st.dictionaries(st.sampled_from(["type", "value"]), json_values, max_size=2)
valid_checksum_items = st.sampled_from([SHA_ITEM, MD5_ITEM])
valid_checksum_items |= valid_checksum_items.map(lambda item: {**item, "extra": 1})
checksum_lists = st.lists(valid_checksum_items | checksum_items, max_size=3)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "type": CONSTANTS,
    "operation": CONSTANTS,
    "accession_id": file_accessions | accessions,
    "dataset_id": accessions,
    "accession_ids": st.lists(file_accessions | accessions, max_size=3),
    "encrypted_checksums": checksum_lists,
    "decrypted_checksums": checksum_lists,
    "file_id": uuids | texts,
    "filesize": scalars,
    "file_last_modified": scalars,
    "re_verify": scalars,
}
DELETE = object()


def _changes(schema: str) -> st.SearchStrategy[list[tuple[str, Any]]]:
    fields = sorted({*VALID[schema], *FIELD_VALUES, "note"})

    def value_for(field: str) -> st.SearchStrategy[Any]:
        specific = FIELD_VALUES.get(field, texts)
        return st.just(DELETE) | specific | specific | json_values

    change = st.sampled_from(fields).flatmap(lambda f: st.tuples(st.just(f), value_for(f)))
    return st.lists(change, min_size=1, max_size=3)


@pytest.mark.parametrize("schema", m.SCHEMAS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_varied_bodies_get_the_same_verdict(
    official: Official, schema: str, data: st.DataObject
) -> None:
    body = json.loads(json.dumps(VALID[schema]))
    for field, value in data.draw(_changes(schema)):
        if value is DELETE:
            body.pop(field, None)
        else:
            body[field] = value
    _agree(official, schema, body)


@pytest.mark.parametrize("schema", m.SCHEMAS)
@settings(max_examples=100, deadline=None)
@given(
    body=st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)) | st.text(max_size=6), json_values)
)
def test_arbitrary_bodies_get_the_same_verdict(official: Official, schema: str, body: Any) -> None:
    _agree(official, schema, body)
