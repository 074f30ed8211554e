"""The audit log: a gap-free hash chain whose first broken entry `verify` names, on SQLite and
PostgreSQL (GENOFED_TEST_POSTGRES_URL); tampering is done with SQL, around the application."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select, text, update
from typer.testing import CliRunner, Result

from genofed.access import audit
from genofed.access.audit import GENESIS_HASH, ProblemKind
from genofed.cli.audit import TAMPERED_EXIT, USAGE_EXIT, app
from genofed.db import AuditEntry, for_writing, session_scope

ACTIONS = ("dataset.list", "file.download", "htsget.ticket", "visa.issued")
JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


# -- helpers --------------------------------------------------------------------------------


def _fill(engine: Engine, count: int) -> list[AuditEntry]:
    """``count`` entries in one transaction: actors user0-2, datasets EGAD0/EGAD1, 4 actions."""
    with session_scope(for_writing(engine)) as session:
        return [
            audit.record(
                session,
                actor=f"user{i % 3}",
                action=ACTIONS[i % 4],
                outcome="denied" if i % 5 == 4 else "allowed",
                dataset=f"EGAD{i % 2}",
                file=f"EGAF{i}" if i % 4 == 1 else None,
                detail={"i": i, "ids": ["a", i]},
            )
            for i in range(count)
        ]


def _verify(engine: Engine, **options: Any) -> audit.ChainReport:
    with session_scope(engine) as session:
        return audit.verify(session, **options)


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    """Tamper the way someone with database access would: plain SQL, no genofed code."""
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def _set_detail(engine: Engine, seq: int, detail: str) -> None:
    json_value = "CAST(:detail AS json)" if engine.dialect.name == "postgresql" else ":detail"
    _sql(
        engine,
        f"UPDATE audit_entries SET detail = {json_value} WHERE seq = :seq",
        detail=detail,
        seq=seq,
    )


def _assert_problem(
    report: audit.ChainReport, kind: ProblemKind, seq: int | None, message: str
) -> None:
    assert not report.ok
    assert report.problem == audit.ChainProblem(kind, seq, message)


# -- a valid chain --------------------------------------------------------------------------


def test_a_long_chain_verifies_in_batches(db_engine: Engine) -> None:
    entries = _fill(db_engine, 250)
    entries += [audit.append(db_engine, actor="operator", action="dataset.list") for _ in range(5)]

    assert [entry.seq for entry in entries] == list(range(1, 256))
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(entry.prev_hash == before.hash for before, entry in itertools.pairwise(entries))
    for batch_size in (1, 16, 255, 1000):
        report = _verify(db_engine, batch_size=batch_size)
        assert report == audit.ChainReport(entries=255, head=entries[-1].hash)
        assert report.ok


def test_an_empty_log_is_intact_and_starts_at_the_genesis_hash(db_engine: Engine) -> None:
    assert _verify(db_engine) == audit.ChainReport(entries=0, head=GENESIS_HASH)
    assert _verify(db_engine, expect_head=GENESIS_HASH).ok
    _assert_problem(
        _verify(db_engine, expect_head="ab" * 32),
        ProblemKind.TRUNCATED,
        None,
        f"the recorded head {'ab' * 32} is no longer in the log: its tail was deleted or "
        f"rewritten (the log now ends at entry 0, head {GENESIS_HASH})",
    )


def test_an_auditor_rederives_every_hash_from_the_json_lines(db_engine: Engine) -> None:
    """The encoding in the module docstring, written out again here without genofed's code."""
    with session_scope(for_writing(db_engine)) as session:
        audit.record(session, actor="åsa@example.org", action="visa.issued", dataset="EGAD1")
        audit.record(
            session,
            actor="bob",
            action="file.download",
            outcome="denied",
            file="EGAF7",
            detail={
                "z": [1, None, True],
                "a": {"ü": '\t"x"'},
                "until": datetime(2030, 1, 2, tzinfo=UTC),
            },
        )
    with session_scope(db_engine) as session:
        lines = [audit.as_json(entry) for entry in reversed(audit.query(session))]

    prev = "0" * 64
    for line in json.loads(json.dumps(lines)):  # what an auditor reads from --json
        encoded = (
            ["genofed-audit/1"]
            + [
                line[name]
                for name in ("seq", "at", "actor", "action", "outcome", "dataset", "file", "detail")
            ]
            + [prev]
        )
        canonical = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == line["hash"]
        assert line["prev_hash"] == prev
        assert line["at"].endswith("Z") and len(line["at"]) == len("2026-11-24T10:00:00.000000Z")
        prev = line["hash"]
    assert lines[1]["detail"]["until"] == "2030-01-02T00:00:00.000000Z"


# -- tampering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "'someone-else'"),
        ("outcome", "'denied'"),
        ("action", "'visa.issued'"),
        ("dataset", "NULL"),
        ("file", "'EGAF999'"),
        ("prev_hash", "'" + "1" * 64 + "'"),
        ("hash", "'" + "2" * 64 + "'"),
    ],
)
def test_an_altered_column_is_found_at_its_entry(
    db_engine: Engine, column: str, value: str
) -> None:
    entries = _fill(db_engine, 80)
    assert (entries[56].outcome, entries[56].action) == ("allowed", "dataset.list")

    _sql(db_engine, f"UPDATE audit_entries SET {column} = {value} WHERE seq = 57")

    report = _verify(db_engine, batch_size=10)
    _assert_problem(
        report,
        ProblemKind.ALTERED,
        57,
        "entry 57 was altered: its hash does not match its contents",
    )
    assert (report.entries, report.head) == (56, entries[55].hash)


def test_an_altered_detail_or_time_is_found_at_its_entry(db_engine: Engine) -> None:
    _fill(db_engine, 20)
    _set_detail(db_engine, 7, '{"i": 6, "ids": ["a", 6], "extra": 1}')
    assert _verify(db_engine).problem == audit.ChainProblem(
        ProblemKind.ALTERED, 7, "entry 7 was altered: its hash does not match its contents"
    )
    _set_detail(db_engine, 7, '{"i": 6, "ids": ["a", 6]}')  # put back: intact again
    assert _verify(db_engine).ok

    with session_scope(db_engine) as session:
        at = session.get_one(AuditEntry, 12).at
    with db_engine.begin() as connection:  # a typed UPDATE, still around the application
        connection.execute(
            update(AuditEntry).where(AuditEntry.seq == 12).values(at=at - timedelta(microseconds=1))
        )
    report = _verify(db_engine)
    assert report.problem is not None and (report.problem.kind, report.problem.seq) == (
        ProblemKind.ALTERED,
        12,
    )


def test_garbage_written_around_the_application_is_reported_not_raised(db_engine: Engine) -> None:
    _fill(db_engine, 5)
    tampering = [(2, "UPDATE audit_entries SET detail = {json} WHERE seq = 2")]  # not an object
    if db_engine.dialect.name == "sqlite":  # SQLite stores anything in any column
        tampering += [
            (3, "UPDATE audit_entries SET detail = 'not json' WHERE seq = 3"),
            (4, "UPDATE audit_entries SET at = 'yesterday' WHERE seq = 4"),
            (5, "UPDATE audit_entries SET actor = x'00ff' WHERE seq = 5"),
        ]
    json_list = "CAST('[1, 2]' AS json)" if db_engine.dialect.name == "postgresql" else "'[1, 2]'"
    for seq, statement in reversed(tampering):  # from the tail: each becomes the first problem
        _sql(db_engine, statement.format(json=json_list))
        assert _verify(db_engine).problem == audit.ChainProblem(
            ProblemKind.ALTERED,
            seq,
            f"entry {seq} was altered: its hash does not match its contents",
        )


def test_a_deleted_entry_is_missing_at_its_seq(db_engine: Engine) -> None:
    entries = _fill(db_engine, 80)
    _sql(db_engine, "DELETE FROM audit_entries WHERE seq = 58")
    report = _verify(db_engine, batch_size=7)
    _assert_problem(report, ProblemKind.MISSING, 58, "entry 58 is missing: seq jumps from 57 to 59")
    assert (report.entries, report.head) == (57, entries[56].hash)

    _sql(db_engine, "DELETE FROM audit_entries WHERE seq = 1")
    _assert_problem(
        _verify(db_engine), ProblemKind.MISSING, 1, "entry 1 is missing: the log starts at entry 2"
    )


def test_swapped_entries_are_found_at_the_first_of_them(db_engine: Engine) -> None:
    entries = _fill(db_engine, 30)
    columns = ("at", "actor", "action", "outcome", "dataset", "file", "detail", "prev_hash", "hash")
    first, second = ({name: getattr(e, name) for name in columns} for e in entries[19:21])
    with db_engine.begin() as connection:  # every column but seq changes place

        def put(seq: int, values: dict[str, Any]) -> None:
            connection.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(values))

        put(21, {"hash": "swapping"})  # hash is unique
        put(20, second)
        put(21, first)
    _assert_problem(
        _verify(db_engine),
        ProblemKind.ALTERED,
        20,
        "entry 20 was altered: its hash does not match its contents",
    )


def test_renumbered_entries_are_found(db_engine: Engine) -> None:
    _fill(db_engine, 30)
    _sql(db_engine, "UPDATE audit_entries SET seq = -1 WHERE seq = 20")
    _sql(db_engine, "UPDATE audit_entries SET seq = 20 WHERE seq = 21")
    _sql(db_engine, "UPDATE audit_entries SET seq = 21 WHERE seq = -1")
    _assert_problem(
        _verify(db_engine),
        ProblemKind.ALTERED,
        20,
        "entry 20 was altered: its hash does not match its contents",
    )


def test_a_forged_replacement_with_a_valid_hash_breaks_the_link(db_engine: Engine) -> None:
    entries = _fill(db_engine, 40)
    forged = entries[29]
    forged_hash = audit.entry_hash(
        seq=30,
        at=forged.at,
        actor="nobody",  # who really downloaded the file, hidden
        action=forged.action,
        outcome=forged.outcome,
        dataset=forged.dataset,
        file=forged.file,
        detail=forged.detail,
        prev_hash=forged.prev_hash,
    )
    _sql(
        db_engine,
        "UPDATE audit_entries SET actor = 'nobody', hash = :hash WHERE seq = 30",
        hash=forged_hash,
    )
    _assert_problem(
        _verify(db_engine),
        ProblemKind.BROKEN_LINK,
        31,
        "entry 31 does not follow entry 30: prev_hash differs (an entry was replaced, or entries "
        "reordered)",
    )


def test_a_deleted_tail_is_found_with_the_recorded_head(db_engine: Engine) -> None:
    entries = _fill(db_engine, 40)
    recorded = _verify(db_engine).head
    assert recorded == entries[-1].hash
    _fill(db_engine, 3)  # the log grows: the recorded head is still in it
    grown = _verify(db_engine, expect_head=recorded.upper())
    assert grown.ok and grown.entries == 43 and grown.expected_head_seq == 40

    _sql(db_engine, "DELETE FROM audit_entries WHERE seq > 35")
    assert _verify(db_engine).ok  # a clean prefix: only the recorded head can tell
    message = (
        f"the recorded head {recorded} is no longer in the log: its tail was deleted or "
        f"rewritten (the log now ends at entry 35, head {entries[34].hash})"
    )
    _assert_problem(_verify(db_engine, expect_head=recorded), ProblemKind.TRUNCATED, None, message)
    assert _verify(db_engine, expect_head=entries[29].hash).expected_head_seq == 30

    _fill(db_engine, 8)  # a rewritten tail, longer than before, does not bring it back
    report = _verify(db_engine, expect_head=recorded)
    assert report.problem is not None and report.problem.kind is ProblemKind.TRUNCATED


def test_a_malformed_recorded_head_is_refused(db_engine: Engine) -> None:
    with pytest.raises(audit.AuditEntryError, match="64 hexadecimal digits"):
        _verify(db_engine, expect_head="abc")


# -- appending ------------------------------------------------------------------------------


def test_a_denied_access_is_kept_when_the_request_fails(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(for_writing(db_engine)) as session:
        audit.record(session, actor="mallory", action="file.download", outcome="allowed")
        raise RuntimeError("the request failed")  # its record rolls back with it
    denied = audit.append(
        db_engine, actor="mallory", action="file.download", outcome="denied", file="EGAF1"
    )
    assert denied.seq == 1
    with session_scope(db_engine) as session:
        (stored,) = audit.query(session)
    assert (stored.actor, stored.outcome, stored.file, stored.hash) == (
        "mallory",
        "denied",
        "EGAF1",
        denied.hash,
    )
    assert _verify(db_engine).ok


def test_record_needs_a_writing_session_on_sqlite(db_engine: Engine) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL serializes appenders with an advisory lock")
    with (
        pytest.raises(audit.AuditEntryError, match="for_writing"),
        session_scope(db_engine) as session,
    ):
        audit.record(session, actor="alice", action="dataset.list")


def test_concurrent_appends_make_one_gap_free_chain(db_engine: Engine) -> None:
    threads, per_thread = 4, 50
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                if i % 2:
                    audit.append(
                        db_engine, actor=f"worker{worker}", action="file.download", detail={"i": i}
                    )
                else:  # the other way in: the caller's own transaction
                    with session_scope(for_writing(db_engine)) as session:
                        audit.record(
                            session,
                            actor=f"worker{worker}",
                            action="file.download",
                            detail={"i": i},
                        )
        except BaseException as error:
            failures.append(error)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []

    report = _verify(db_engine, batch_size=64)
    assert report.ok and report.entries == threads * per_thread
    with session_scope(db_engine) as session:
        rows = session.execute(
            select(AuditEntry.seq, AuditEntry.actor, AuditEntry.detail).order_by(AuditEntry.seq)
        ).all()
    assert [row.seq for row in rows] == list(range(1, threads * per_thread + 1))
    for worker in range(threads):  # each thread's entries in the order it appended them
        assert [row.detail["i"] for row in rows if row.actor == f"worker{worker}"] == list(
            range(per_thread)
        )


# -- what the log refuses or strips ---------------------------------------------------------


@pytest.mark.parametrize(
    "detail",
    [
        {"token": "opaque"},
        {"access_token": "opaque"},
        {"Password": "hunter2"},
        {"client-secret": "x"},
        {"Authorization": "x"},
        {"api_key": "x"},
        {"crypt4gh_private_key": "x"},
        {"grant": "g1", "request": {"headers": {"cookie": "x"}}},
    ],
)
def test_a_credential_named_detail_is_refused(db_engine: Engine, detail: dict[str, Any]) -> None:
    with pytest.raises(audit.SecretInAuditEntry, match="named like a credential") as refused:
        audit.append(db_engine, actor="alice", action="visa.issued", detail=detail)
    assert "hunter2" not in str(refused.value) and "opaque" not in str(refused.value)
    assert _verify(db_engine).entries == 0  # nothing was written


def test_credential_shaped_values_are_stripped_and_the_access_still_recorded(
    db_engine: Engine,
) -> None:
    pem = "-----BEGIN CRYPT4GH PRIVATE KEY-----\nYzRnaC12MQ==\n-----END CRYPT4GH PRIVATE KEY-----"
    entry = audit.append(
        db_engine,
        actor=JWT,  # a confused client sent its token as the user name
        action="login",
        outcome="denied",
        detail={"jti": "4f2a", "visas": [JWT], "header": "Bearer abcdefgh12345678", "key": pem},
    )
    with session_scope(db_engine) as session:
        (stored,) = audit.query(session)
    assert stored.actor == audit.REDACTED
    assert stored.detail == {
        "jti": "4f2a",
        "visas": [audit.REDACTED],
        "header": audit.REDACTED,
        "key": audit.REDACTED,
    }
    assert JWT not in json.dumps(audit.as_json(stored))
    assert _verify(db_engine).head == entry.hash


def test_request_borne_values_are_made_storable(db_engine: Engine) -> None:
    entry = audit.append(
        db_engine,
        actor="x" * 300,
        action="login",
        outcome="denied",
        detail={
            "name": "a\x00b",
            "long": "y" * 5000,
            "ids": ("g1", 2),
            "at": datetime(2030, 1, 1, 1, tzinfo=UTC),
        },
    )
    assert entry.actor == "x" * 254 + "…"
    assert entry.detail == {
        "name": "a\ufffdb",
        "long": "y" * (audit.MAX_DETAIL_STRING - 1) + "…",
        "ids": ["g1", 2],
        "at": "2030-01-01T01:00:00.000000Z",
    }
    assert _verify(db_engine).ok


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"outcome": "maybe"}, "outcome must be one of allowed, denied"),
        ({"action": ""}, "action must be a non-empty string"),
        ({"detail": {"ratio": 0.5}}, "floats are refused"),
        ({"detail": {"what": object()}}, "is a object"),
        ({"detail": {1: "x"}}, "key that is not a plain string"),
        ({"detail": {"blob": "z" * 1000, "more": ["z" * 1000] * 10}}, "larger than 8192 bytes"),
        ({"detail": {"at": datetime(2030, 1, 1)}}, "naive datetime"),
    ],
)
def test_a_callers_mistake_is_refused(
    db_engine: Engine, fields: dict[str, Any], match: str
) -> None:
    arguments: dict[str, Any] = {"actor": "alice", "action": "file.download", **fields}
    with pytest.raises(audit.AuditEntryError, match=match):
        audit.append(db_engine, **arguments)
    assert _verify(db_engine).entries == 0


# -- reading --------------------------------------------------------------------------------


def test_query_filters_and_orders_newest_first(db_engine: Engine) -> None:
    entries = _fill(db_engine, 24)
    with session_scope(db_engine) as session:

        def seqs(**filters: Any) -> list[int]:
            return [entry.seq for entry in audit.query(session, **filters)]

        assert seqs() == list(range(24, 0, -1))
        assert seqs(actor="user1") == [e.seq for e in reversed(entries) if e.actor == "user1"]
        assert seqs(dataset="EGAD0") == list(range(23, 0, -2))
        assert seqs(action="htsget.ticket") == [23, 19, 15, 11, 7, 3]
        assert seqs(outcome="denied") == [20, 15, 10, 5]
        assert seqs(actor="user0", dataset="EGAD1", action="visa.issued") == [16, 4]
        assert seqs(since=entries[4].at, until=entries[9].at) == [9, 8, 7, 6, 5]  # [since, until)
        assert seqs(since=entries[-1].at + timedelta(seconds=1)) == []
        assert seqs(limit=3) == [24, 23, 22] and seqs(limit=3, offset=22) == [2, 1]
        assert seqs(actor="nobody") == []
        with pytest.raises(audit.AuditEntryError, match="naive"):
            audit.query(session, since=datetime(2026, 1, 1))


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def node(db_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    """The CLI's configuration: this test's database, no genofed.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOFED_CONFIG", raising=False)
    monkeypatch.setenv("GENOFED_DATABASE_URL", db_engine.url.render_as_string(hide_password=False))
    return db_engine


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_cli_verify_prints_the_head_and_exits_0(node: Engine) -> None:
    empty = _run("verify")
    assert (empty.exit_code, empty.stdout) == (0, GENESIS_HASH + "\n")
    assert empty.stderr == f"audit log intact: 0 entries, head {GENESIS_HASH}\n"

    entries = _fill(node, 3)
    result = _run("verify", "--expect-head", entries[1].hash)
    assert result.exit_code == 0, result.output
    assert result.stdout == entries[-1].hash + "\n"
    assert result.stderr == (
        f"audit log intact: 3 entries, head {entries[-1].hash}\nthe recorded head is entry 2\n"
    )


def test_cli_verify_names_the_first_tampered_entry_and_exits_3(node: Engine) -> None:
    entries = _fill(node, 60)
    _sql(node, "UPDATE audit_entries SET actor = 'eve' WHERE seq = 57")
    _sql(node, "DELETE FROM audit_entries WHERE seq = 58")

    altered = _run("verify")
    assert altered.exit_code == TAMPERED_EXIT == 3
    assert altered.stdout == ""
    assert altered.stderr == "error: entry 57 was altered: its hash does not match its contents\n"

    _sql(node, "UPDATE audit_entries SET actor = :actor WHERE seq = 57", actor=entries[56].actor)
    missing = _run("verify")
    assert (missing.exit_code, missing.stderr) == (
        3,
        "error: entry 58 is missing: seq jumps from 57 to 59\n",
    )

    _sql(node, "DELETE FROM audit_entries WHERE seq > 57")
    assert _run("verify").exit_code == 0
    truncated = _run("verify", "--expect-head", entries[-1].hash)
    assert truncated.exit_code == 3
    assert truncated.stderr.startswith(
        f"error: the recorded head {entries[-1].hash} is no longer in the log"
    )
    assert truncated.stderr.count("\n") == 1


def test_cli_verify_usage_and_database_errors(
    node: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _run("verify", "--expect-head", "not-a-hash")
    assert bad.exit_code == USAGE_EXIT == 2
    assert "is not a head hash: give the 64 hexadecimal digits" in bad.stderr

    monkeypatch.setenv("GENOFED_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    unmigrated = _run("verify")
    assert unmigrated.exit_code == 1
    assert "genofed db upgrade" in unmigrated.stderr


def test_cli_show_prints_a_table_and_json_lines(node: Engine) -> None:
    entries = _fill(node, 12)
    table = _run("show", "--user", "user1", "--dataset", "EGAD1", "--limit", "50")
    assert table.exit_code == 0, table.output
    lines = [line.split("\t") for line in table.stdout.splitlines()]
    assert lines[0] == ["seq", "at", "actor", "action", "outcome", "dataset", "file", "detail"]
    expected = [e for e in reversed(entries) if e.actor == "user1" and e.dataset == "EGAD1"]
    assert [int(line[0]) for line in lines[1:]] == [e.seq for e in expected] == [8, 2]
    assert lines[1][1] == expected[0].at.strftime("%Y-%m-%d %H:%M:%SZ")
    assert lines[1][2:] == ["user1", "visa.issued", "allowed", "EGAD1", "", '{"i":7,"ids":["a",7]}']
    assert table.stderr == "2 entries\n"

    as_json = _run("show", "--action", "file.download", "--json", "--limit", "2")
    assert as_json.exit_code == 0, as_json.output
    shown = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert shown == [audit.as_json(entries[9]), audit.as_json(entries[5])]
    assert as_json.stderr == "2 entries; more with --offset\n"

    window = _run(
        "show", "--since", entries[3].at.isoformat(), "--until", entries[6].at.isoformat(), "--json"
    )
    assert [json.loads(line)["seq"] for line in window.stdout.splitlines()] == [6, 5, 4]
    denied = _run("show", "--outcome", "denied", "--json")
    assert [json.loads(line)["seq"] for line in denied.stdout.splitlines()] == [10, 5]


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_cli_show_explains_a_bad_date(node: Engine, option: str) -> None:
    result = _run("show", option, "last tuesday")
    assert result.exit_code == USAGE_EXIT
    assert result.stderr == (
        f"error: {option} 'last tuesday' is not a date: give ISO 8601, e.g. 2026-11-24 or "
        "2026-11-24T13:45:00Z (no zone means UTC)\n"
    )


def test_cli_show_reads_a_date_without_zone_as_utc(node: Engine) -> None:
    _fill(node, 2)
    today = datetime.now(UTC).date()
    result = _run(
        "show", "--since", today.isoformat(), "--until", (today + timedelta(days=1)).isoformat()
    )
    assert result.exit_code == 0 and result.stderr == "2 entries\n"


# -- every single-field mutation is caught at its entry ---------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abcdefgh", max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_details = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), _json_values, max_size=4)
_entries = st.fixed_dictionaries(
    {
        "actor": _text,
        "action": _text.filter(bool),
        "outcome": st.sampled_from(["allowed", "denied"]),
        "dataset": st.none() | _text,
        "file": st.none() | _text,
        "detail": _details,
    }
)
_HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
_MUTATIONS: dict[str, st.SearchStrategy[Any]] = {
    "actor": _text,
    "action": _text,
    "outcome": st.sampled_from(["allowed", "denied", "", "ALLOWED"]),
    "dataset": st.none() | _text,
    "file": st.none() | _text,
    "detail": _details,
    "prev_hash": _HEX,
    "hash": _HEX,
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chain=st.lists(_entries, min_size=1, max_size=6), data=st.data())
def test_any_single_field_mutation_is_detected_at_that_entry(
    db_engine: Engine, chain: list[dict[str, Any]], data: st.DataObject
) -> None:
    engine = db_engine
    with engine.begin() as connection:
        connection.execute(delete(AuditEntry))
    with session_scope(for_writing(engine)) as session:
        stored = [audit.as_json(audit.record(session, **fields)) for fields in chain]
    assert _verify(engine).ok

    victim = data.draw(st.sampled_from(stored), label="entry")
    field = data.draw(st.sampled_from([*_MUTATIONS, "at", "seq"]), label="field")
    if field == "at":
        shift = data.draw(st.integers(-(10**12), 10**12).filter(bool), label="microseconds")
        value: Any = datetime.fromisoformat(victim["at"]) + timedelta(microseconds=shift)
    elif field == "seq":
        value = len(stored) + data.draw(st.integers(1, 1000), label="new seq")
    else:
        value = data.draw(_MUTATIONS[field], label="new value")
        assume(value != victim[field])
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntry).where(AuditEntry.seq == victim["seq"]).values({field: value})
        )

    problem = _verify(engine, batch_size=2).problem
    assert problem is not None
    assert problem.seq == victim["seq"]
    assert problem.kind is (ProblemKind.MISSING if field == "seq" else ProblemKind.ALTERED)
