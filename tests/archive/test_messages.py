"""FEGA messages: validation errors, queue-to-schema choice, builders.

Agreement with the official FEGA schemas is tested in test_messages_interop.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genofed.archive import messages as m
from genofed.archive.messages import InvalidMessage, UnknownQueue

SHA = "82e4e60e7beb3db2e06a00a079788f7d71f75b61a4b75f28c4c942703dabb6d6"
MD5 = "7ac236b1a8dce2dac89e7cf45d2b48bd"
USER = "submitter@example.org"
PATH = "inbox/sample-1.bam.c4gh"
FILE_ID = "0e1a7c5e-3b0f-4d7a-9a51-8f3e4b2c9d10"

# One valid body per schema, and the queue it travels on: the builders' output, plus hand-made
# bodies for the schemas the pipeline only receives.
BUILT: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "ingestion-trigger": (m.INGEST, lambda: m.ingestion_trigger(USER, PATH, SHA)),
    "ingestion-verification": (
        m.VERIFY,
        lambda: m.ingestion_verification(USER, PATH, FILE_ID, "files/0e/x.c4gh", SHA),
    ),
    "ingestion-accession-request": (m.ACCESSION, lambda: m.accession_request(USER, PATH, SHA, MD5)),
    "ingestion-accession": (
        m.BACKUP,
        lambda: m.ingestion_accession(USER, PATH, "EGAF00000000042", SHA, MD5),
    ),
    "ingestion-completion": (
        m.COMPLETION,
        lambda: m.ingestion_completion(USER, PATH, "EGAF00000000042", SHA, MD5),
    ),
    "dataset-mapping": (
        m.MAPPING,
        lambda: m.dataset_mapping("EGAD00000000007", ["EGAF00000000042", "EGAF00000000043"]),
    ),
    "dataset-release": (m.MAPPING, lambda: m.dataset_release("EGAD00000000007")),
    "dataset-deprecate": (m.MAPPING, lambda: m.dataset_deprecate("EGAD00000000007")),
    "rotate-key": (m.ROTATE, lambda: m.rotate_key(FILE_ID)),
    "inbox-upload": (m.INBOX, lambda: m.inbox_upload(USER, PATH, 1234, SHA)),
    "info-error": (m.INGEST, lambda: m.info_error("ingest failed", "wrong key", {"a": 1})),
    "inbox-remove": (m.INBOX, lambda: {"operation": "remove", "user": USER, "filepath": PATH}),
    "inbox-rename": (
        m.INBOX,
        lambda: {"operation": "rename", "user": USER, "filepath": PATH, "oldpath": "inbox/old"},
    ),
    "ingestion-user-error": (
        m.INGEST,
        lambda: {"user": USER, "filepath": PATH, "reason": "File not found in the inbox"},
    ),
}
NOT_ON_A_QUEUE = {"info-error", "ingestion-user-error"}  # sent to Central EGA, not to a stage


def test_every_schema_has_a_body_and_no_schema_files_are_shipped() -> None:
    assert set(BUILT) == set(m.SCHEMAS)
    # The official schemas are AGPL: genofed defines the forms in code and ships no copies.
    package = files("genofed.archive")
    assert not (package / "schemas").is_dir()
    assert [p.name for p in package.iterdir() if p.name.endswith(".json")] == []


@pytest.mark.parametrize("schema", sorted(BUILT))
def test_each_body_validates_and_its_queue_picks_its_schema(schema: str) -> None:
    queue, build = BUILT[schema]
    body = build()
    assert m.validate(schema, body) is body
    if schema not in NOT_ON_A_QUEUE:
        assert m.schema_for(queue, body) == schema
        assert m.validate_for(queue, body) is body


@pytest.mark.parametrize("schema", sorted(BUILT))
def test_each_schema_names_a_missing_property(schema: str) -> None:
    body = BUILT[schema][1]()
    required = m._validator(schema).schema["required"][-1]
    del body[required]
    with pytest.raises(InvalidMessage) as raised:
        m.validate(schema, body)
    assert str(raised.value) == f"{schema} message: {required!r} is a required property (at $)"


@pytest.mark.parametrize(
    ("schema", "change", "expected"),
    [
        (
            "ingestion-trigger",
            {"encrypted_checksums": [{"type": "sha256", "value": SHA[:-1]}]},
            f"'{SHA[:-1]}' does not match '^[a-fA-F0-9]{{64}}$' "
            "(at $.encrypted_checksums[0].value)",
        ),
        (
            "ingestion-trigger",
            {"encrypted_checksums": [{"type": "sha1", "value": SHA}]},
            "'sha256' was expected (at $.encrypted_checksums[0].type)",
        ),
        (
            "ingestion-completion",
            {"decrypted_checksums": [{"type": "md5", "value": MD5}]},
            "has no item with type 'sha256' (at $.decrypted_checksums)",
        ),
        (
            "ingestion-trigger",
            {"type": "stop"},
            "'stop' is not one of ['ingest', 'cancel'] (at $.type)",
        ),
        (
            "ingestion-verification",
            {"re_verify": "yes"},
            "'yes' is not of type 'boolean' (at $.re_verify)",
        ),
        (
            "dataset-mapping",
            {"accession_ids": ["EGAF1"]},
            "'EGAF1' does not match '^EGAF[0-9]{11}$' (at $.accession_ids[0])",
        ),
        ("rotate-key", {"file_id": "x" * 1000}, None),
        ("inbox-upload", {"filesize": 1.5}, "1.5 is not of type 'integer' (at $.filesize)"),
        ("inbox-upload", {"note": math.nan}, "nan is not a JSON number (at $['note'])"),
        ("inbox-upload", {"note": (1, 2)}, "a tuple is not a JSON value (at $['note'])"),
        ("inbox-upload", {"note": {1: "a"}}, "key 1 is not a string (at $['note'])"),
    ],
)
def test_a_wrong_body_gets_a_clear_one_line_message(
    schema: str, change: dict[str, Any], expected: str | None
) -> None:
    body = {**BUILT[schema][1](), **change}
    with pytest.raises(InvalidMessage) as raised:
        m.validate(schema, body)
    text = str(raised.value)
    assert text.startswith(f"{schema} message: ")
    assert "\n" not in text and len(text) < 400
    if expected is not None:
        assert text == f"{schema} message: {expected}"


def test_a_body_must_be_a_json_object_of_bounded_depth() -> None:
    with pytest.raises(InvalidMessage, match=r"^rotate-key message: a list is not a JSON object"):
        m.validate("rotate-key", [])
    deep: dict[str, Any] = {}
    for _ in range(100):
        deep = {"d": deep}
    with pytest.raises(InvalidMessage, match="nested deeper than 64 levels"):
        m.validate("rotate-key", {**m.rotate_key(FILE_ID), "extra": deep})


def test_an_unknown_schema_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no FEGA schema named 'ingestion'"):
        m.validate("ingestion", {})


def test_validators_are_compiled_once() -> None:
    assert m._validator("rotate-key") is m._validator("rotate-key")


@pytest.mark.parametrize(
    ("queue", "body", "schema"),
    [
        (m.ACCESSION, {"type": "accession"}, "ingestion-accession"),
        (m.ACCESSION, {}, "ingestion-accession-request"),
        (m.BACKUP, {}, "ingestion-completion"),
        (m.MAPPING, {"type": "release"}, "dataset-release"),
        (m.INBOX, {"operation": "rename"}, "inbox-rename"),
    ],
)
def test_schema_for_reads_what_a_message_says_it_is(
    queue: str, body: dict[str, Any], schema: str
) -> None:
    assert m.schema_for(queue, body) == schema


def test_schema_for_refuses_unknown_queues_and_kinds() -> None:
    with pytest.raises(UnknownQueue, match=r"^unknown queue 'verfy': the pipeline's queues are"):
        m.schema_for("verfy", {})
    with pytest.raises(InvalidMessage) as raised:
        m.schema_for(m.MAPPING, {"type": "delete"})
    assert str(raised.value) == (
        "mapping message: 'type' must be one of 'mapping', 'release', 'deprecate', "
        "not 'delete' (at $.type)"
    )
    with pytest.raises(InvalidMessage, match=r"'operation' must be one of .* not None"):
        m.schema_for(m.INBOX, {})
    with pytest.raises(InvalidMessage, match=r"^ingest message: a str is not a JSON object"):
        m.schema_for(m.INGEST, "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty list"):
        m.check_queues(m.INGEST)


def test_builders_refuse_what_the_schemas_refuse() -> None:
    with pytest.raises(InvalidMessage, match=r"at \$.accession_id"):
        m.ingestion_accession(USER, PATH, "GFBEF00000000042X", SHA, MD5)  # our form, not EGA's
    with pytest.raises(InvalidMessage) as raised:
        m.accession_request(USER, PATH, SHA, SHA)  # a sha256 given as the md5
    assert str(raised.value).endswith(
        "does not match '^[a-fA-F0-9]{32}$' (at $.decrypted_checksums[1].value)"
    )
    with pytest.raises(InvalidMessage, match=r"at \$.file_id"):
        m.rotate_key("42")
    with pytest.raises(InvalidMessage, match=r"at \$.user"):
        m.ingestion_trigger("u", PATH)


def test_info_error_carries_the_original_message_as_text() -> None:
    original = m.ingestion_trigger(USER, PATH)
    body = m.info_error("ingestion failed", "the file is not Crypt4GH", original)
    assert json.loads(body["original-message"]) == original
    assert m.info_error("e", "r", "raw text")["original-message"] == "raw text"


# -- property: validate raises InvalidMessage and nothing else ---------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: not JSON
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "type",
        "user",
        "filepath",
        "operation",
        "file_id",
        "archive_path",
        "re_verify",
        "accession_id",
        "dataset_id",
        "accession_ids",
        "encrypted_checksums",
        "decrypted_checksums",
        "filesize",
        "reason",
        "error",
        "original-message",
        "value",
    ]
)
bodies = st.dictionaries(keys | st.text(max_size=8), json_values, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=st.sampled_from(m.SCHEMAS), body=bodies)
def test_random_bodies_raise_nothing_but_invalid_message(schema: str, body: Any) -> None:
    try:
        assert m.validate(schema, body) is body
    except InvalidMessage as error:
        assert str(error).startswith(f"{schema} message: ") and "\n" not in str(error)


@settings(max_examples=300, deadline=None)
@given(
    schema=st.sampled_from(sorted(BUILT)),
    key=keys,
    value=json_values,
)
def test_random_changes_to_valid_bodies_raise_nothing_but_invalid_message(
    schema: str, key: str, value: Any
) -> None:
    body = copy.deepcopy(BUILT[schema][1]())
    body[key] = value
    try:
        m.validate(schema, body)
    except InvalidMessage as error:
        assert str(error).startswith(f"{schema} message: ") and "\n" not in str(error)


@settings(max_examples=200, deadline=None)
@given(queue=st.sampled_from(m.QUEUES), body=bodies)
def test_random_bodies_on_a_queue_raise_nothing_but_invalid_message(queue: str, body: Any) -> None:
    with contextlib.suppress(InvalidMessage):
        m.validate_for(queue, body)
