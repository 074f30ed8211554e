"""The privacy guard's rules, one by one, against a real database (genofed.beacon.guard)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from guard_support import (
    ALICE,
    ANONYMOUS,
    BOB,
    DATASET,
    OTHER,
    READER,
    allele,
    ask,
    entries,
    question,
    spent,
    writing,
)
from sqlalchemy import Engine, func, select

from genofed import db
from genofed.access import audit
from genofed.beacon import guard
from genofed.beacon.guard import (
    BudgetExhausted,
    Caller,
    GuardSettings,
    GuardSettingsError,
    LoginRequired,
    answer_count,
    configure,
    count_cost_bits,
    guard_settings,
    query_digest,
    yes_cost_bits,
)
from genofed.db.models import BeaconAnswered

SINGLETON = allele([7])
COMMON = allele(range(0, 400, 2))  # 200 carriers: free
FIVE = allele([1, 2, 3, 4, 5])  # exactly at the default threshold


def _set(engine: Engine, **settings: object) -> GuardSettings:
    with writing(engine) as session:
        return configure(session, DATASET, **settings)  # type: ignore[arg-type]


# -- settings ---------------------------------------------------------------------------------


def test_a_dataset_without_settings_is_controlled_with_the_defaults(db_engine: Engine) -> None:
    with db.session_scope(db_engine) as session:
        settings = guard_settings(session, DATASET)
    assert settings == GuardSettings(DATASET, "controlled", 5, 3.0, True, stored=False)


def test_configure_changes_only_what_is_given_and_is_audited(db_engine: Engine) -> None:
    _set(db_engine, level="registered")
    changed = _set(db_engine, budget_bits=4.5, actor="operator:ops")
    assert changed == GuardSettings(DATASET, "registered", 5, 4.5, True, stored=True)
    _set(db_engine, enabled=False, min_count=10)
    with db.session_scope(db_engine) as session:
        assert guard_settings(session, DATASET) == GuardSettings(
            DATASET, "registered", 10, 4.5, False, stored=True
        )
    logged = entries(db_engine, "beacon.configure")
    assert [entry["detail"] for entry in logged] == [
        {"level": "registered", "min_count": 5, "budget_mbits": 3000, "guard": True},
        {"level": "registered", "min_count": 5, "budget_mbits": 4500, "guard": True},
        {"level": "registered", "min_count": 10, "budget_mbits": 4500, "guard": False},
    ]
    assert logged[1]["actor"] == "operator:ops" and logged[1]["dataset"] == DATASET


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("level", "secret", "choose public, registered, controlled"),
        ("min_count", 2, "give 3 to 100 individuals"),
        ("min_count", 101, "give 3 to 100 individuals"),
        ("budget_bits", -1.0, "give 0 to 1024"),
        ("budget_bits", math.nan, "give 0 to 1024"),
    ],
)
def test_configure_refuses_settings_out_of_range(
    db_engine: Engine, setting: str, value: object, says: str
) -> None:
    with pytest.raises(GuardSettingsError, match=says), writing(db_engine) as session:
        configure(session, DATASET, **{setting: value})  # type: ignore[arg-type]


# -- who may ask, and at which granularity ------------------------------------------------------


def test_a_reader_gets_records_exactly_and_spends_nothing(db_engine: Engine) -> None:
    answer = ask(db_engine, READER, [SINGLETON, COMMON], "record")
    assert (answer.granularity, answer.exists, answer.count, answer.exact) == (
        "record",
        True,
        201,
        True,
    )
    assert answer.alleles == [SINGLETON, COMMON] and answer.note is None
    with db.session_scope(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(BeaconAnswered)) == 0
    assert spent(db_engine, READER) == 0.0


@pytest.mark.parametrize("level", ["registered", "controlled"])
def test_anonymous_callers_must_log_in_and_the_refusal_is_audited(
    db_engine: Engine, level: str
) -> None:
    _set(db_engine, level=level)
    with writing(db_engine) as session, pytest.raises(LoginRequired) as refused:
        guard.answer_variants(session, ANONYMOUS, DATASET, [COMMON], "boolean", question())
        # the caller catches it and commits: the refusal stays in the audit log
    assert str(refused.value).startswith(f"dataset {DATASET} holds {level} data")
    assert "log in ('genofed login'" in str(refused.value)
    (entry,) = entries(db_engine)
    assert (entry["actor"], entry["outcome"], entry["dataset"]) == (
        "(anonymous)",
        "denied",
        DATASET,
    )
    assert entry["detail"] == {"digest": question(), "asked": "boolean", "reason": "login_required"}


def test_anonymous_callers_may_ask_public_data_and_share_one_budget(db_engine: Engine) -> None:
    _set(db_engine, level="public")
    answer = ask(db_engine, ANONYMOUS, [COMMON], "record")
    assert (answer.granularity, answer.count, answer.exact) == ("count", 200, True)
    assert answer.note is not None and "record-level answers" in answer.note
    ask(db_engine, ANONYMOUS, [], position=5)
    assert spent(db_engine, ANONYMOUS) == pytest.approx(yes_cost_bits(5, 5) + count_cost_bits(200))


@pytest.mark.parametrize(
    ("level", "guard_on", "ceiling"),
    [
        ("controlled", True, "boolean"),
        ("controlled", False, "boolean"),
        ("registered", True, "count"),
        ("registered", False, "record"),
        ("public", True, "count"),
        ("public", False, "record"),
    ],
)
def test_granularity_follows_the_level(
    db_engine: Engine, level: str, guard_on: bool, ceiling: str
) -> None:
    _set(db_engine, level=level, enabled=guard_on)
    answer = ask(db_engine, ALICE, [COMMON], "record")
    assert answer.granularity == ceiling
    assert answer.count == (None if ceiling == "boolean" else 200)
    assert answer.alleles == ([COMMON] if ceiling == "record" else [])
    lowered = f"record-level answers from dataset {DATASET} ({level} data) need access to it"
    if ceiling == "record":
        assert answer.note is None
    else:
        assert answer.note is not None and answer.note.startswith(lowered)
    assert ask(db_engine, ALICE, [COMMON], "boolean", position=9).granularity == "boolean"


def test_the_raw_beacon_without_the_guard_shows_singletons(db_engine: Engine) -> None:
    _set(db_engine, level="registered", enabled=False)
    answer = ask(db_engine, ALICE, [SINGLETON], "count")
    assert (answer.exists, answer.count, answer.exact, answer.note) == (True, 1, True, None)
    assert spent(db_engine, ALICE) == 0.0


# -- the threshold ------------------------------------------------------------------------------


def test_an_allele_below_the_threshold_looks_exactly_like_an_absent_one(db_engine: Engine) -> None:
    _set(db_engine, level="registered")
    for requested in ("boolean", "count"):
        rare = ask(db_engine, ALICE, [SINGLETON, allele([1, 2, 3, 4])], requested, position=1)
        absent = ask(db_engine, BOB, [], requested, position=2)
        assert rare == absent
        assert (rare.exists, rare.exact) == (False, False)
        assert rare.count == (0 if requested == "count" else None)
        assert rare.note is not None
        assert "fewer than 5 individuals" in rare.note and "absent and rare look alike" in rare.note


def test_alleles_at_the_threshold_are_shown_and_counted_without_the_rare_ones(
    db_engine: Engine,
) -> None:
    _set(db_engine, level="registered")
    at_threshold = ask(db_engine, ALICE, [FIVE], "count")
    assert (at_threshold.exists, at_threshold.count, at_threshold.exact) == (True, 5, True)
    region = ask(db_engine, ALICE, [COMMON, SINGLETON], "count", position=3)
    assert region.count == 200  # the singleton's carrier does not count
    assert region.note is not None  # the same note on every answer: it tells nothing


def test_an_allele_without_genotypes_counts_its_fewest_possible_carriers(
    db_engine: Engine,
) -> None:
    sites_only = allele([], ac=9)  # at least 5 individuals (4 homozygous, 1 heterozygous)
    assert ask(db_engine, ALICE, [sites_only]).exists
    assert not ask(db_engine, ALICE, [allele([], ac=8)], position=4).exists


@pytest.mark.parametrize(
    ("caller", "level", "guard_on", "count", "shown"),
    [
        (ALICE, "registered", True, 3, (False, 0, False)),
        (ALICE, "registered", True, 0, (False, 0, False)),
        (ALICE, "registered", True, 7, (True, 7, True)),
        (READER, "registered", True, 3, (True, 3, True)),
        (ALICE, "registered", False, 3, (True, 3, True)),
    ],
)
def test_counts_below_the_threshold_are_never_shown(
    db_engine: Engine,
    caller: Caller,
    level: str,
    guard_on: bool,
    count: int,
    shown: tuple[bool, int, bool],
) -> None:
    _set(db_engine, level=level, enabled=guard_on)
    with writing(db_engine) as session:
        answer = answer_count(session, caller, DATASET, count, "count")
    assert (answer.exists, answer.count, answer.exact) == shown
    assert (answer.note is not None) == (not shown[2])
    assert spent(db_engine, caller) == 0.0  # no allele, no cost
    (entry,) = entries(db_engine)
    assert entry["detail"]["digest"] is None and entry["outcome"] == "allowed"


def test_counts_of_controlled_data_are_booleans_and_records_need_a_visa(db_engine: Engine) -> None:
    with writing(db_engine) as session:
        answer = answer_count(session, ALICE, DATASET, 40, "record")
        assert (answer.granularity, answer.exists, answer.count) == ("boolean", True, None)
        assert answer_count(session, READER, DATASET, 40, "record").granularity == "record"
        with pytest.raises(LoginRequired):
            answer_count(session, ANONYMOUS, DATASET, 40, "boolean")


# -- the budget -----------------------------------------------------------------------------------


def test_common_variants_cost_nothing(db_engine: Engine) -> None:
    for position in range(50):
        assert ask(db_engine, ALICE, [COMMON], position=position).exists
    assert spent(db_engine, ALICE) == 0.0


def test_rare_and_absent_alleles_cost_about_a_bit_each(db_engine: Engine) -> None:
    ask(db_engine, ALICE, [SINGLETON], position=1)
    ask(db_engine, ALICE, [], position=2)
    ask(db_engine, ALICE, [allele(range(8))], position=3)
    assert spent(db_engine, ALICE) == pytest.approx(2 * 0.96271 + 0.29712, abs=1e-4)


def test_a_repeated_question_is_free_even_when_the_budget_is_spent(db_engine: Engine) -> None:
    for position in (1, 2, 3, 4):
        ask(db_engine, ALICE, [], position=position)
    before = spent(db_engine, ALICE)
    assert before > 3.0
    again = ask(db_engine, ALICE, [], position=2)
    assert not again.exists and spent(db_engine, ALICE) == before
    assert entries(db_engine)[-1]["detail"]["repeat"] is True
    assert entries(db_engine)[-1]["detail"]["cost_mbits"] == 0


def test_a_changed_answer_to_an_old_question_costs_again(db_engine: Engine) -> None:
    ask(db_engine, ALICE, [], position=1)
    ask(db_engine, ALICE, [FIVE], position=1)  # the data changed: five carriers now
    assert spent(db_engine, ALICE) == pytest.approx(2 * yes_cost_bits(5, 5))


def test_an_exhausted_budget_refuses_every_new_question_and_says_what_to_do(
    db_engine: Engine,
) -> None:
    for position in (1, 2, 3, 4):  # the fourth crosses the limit and is still answered
        ask(db_engine, ALICE, [], position=position)
    for alleles in ([], [COMMON]):  # refused whatever the answer would cost
        with pytest.raises(BudgetExhausted) as refused:
            ask(db_engine, ALICE, alleles, position=5)
    message = str(refused.value)
    assert message.startswith(
        f"your information budget for dataset {DATASET} is spent (3.85 of 3 bits)"
    )
    assert f"apply for access to {DATASET} ('genofed access request {DATASET}')" in message
    assert (refused.value.spent_bits, refused.value.budget_bits) == (spent(db_engine, ALICE), 3.0)
    denied = entries(db_engine)[-1]
    assert (denied["outcome"], denied["actor"]) == ("denied", ALICE.subject)
    assert denied["detail"] == {
        "digest": question(5),
        "asked": "boolean",
        "reason": "budget_exhausted",
        "spent_mbits": 3851,
        "budget_mbits": 3000,
    }
    # other users, other datasets and readers are not affected
    assert not ask(db_engine, BOB, [], position=5).exists
    assert not ask(db_engine, ALICE, [], position=5, dataset=OTHER).exists
    assert ask(db_engine, Caller(ALICE.subject, frozenset({DATASET})), [COMMON], position=5).exists


def test_a_budget_of_zero_answers_users_without_access_nothing_new(db_engine: Engine) -> None:
    _set(db_engine, budget_bits=0.0)
    with pytest.raises(BudgetExhausted, match=r"\(0.00 of 0 bits\)"):
        ask(db_engine, ALICE, [COMMON])


def test_costs_fall_as_alleles_get_common(db_engine: Engine) -> None:
    costs = [yes_cost_bits(carriers, 5) for carriers in range(5, 40)]
    assert costs == sorted(costs, reverse=True)
    assert costs[0] == pytest.approx(0.96271, abs=1e-5)  # b(k): every withheld answer
    assert yes_cost_bits(8, 5) == pytest.approx(0.29712, abs=1e-5)
    assert yes_cost_bits(33, 5) > 0.0 and yes_cost_bits(34, 5) == 0.0
    assert yes_cost_bits(100_000, 5) == 0.0
    assert yes_cost_bits(3, 3) > yes_cost_bits(10, 10) > yes_cost_bits(100, 100) > 0
    assert count_cost_bits(5) == pytest.approx(math.log2(5 / 3))
    with pytest.raises(ValueError, match="below the threshold"):
        yes_cost_bits(4, 5)


def test_a_rare_allele_counted_with_a_common_one_costs_what_it_would_alone(
    db_engine: Engine,
) -> None:
    _set(db_engine, level="registered")
    region = ask(db_engine, ALICE, [COMMON, allele([1, 3, 5, 7, 9])], "count")
    assert region.count == 205  # the odd carriers add to the common allele's even ones
    expected = yes_cost_bits(5, 5) + count_cost_bits(205)
    assert spent(db_engine, ALICE) == pytest.approx(expected)
    ask(db_engine, BOB, [COMMON, allele([1, 3, 5, 7, 9])], "boolean")
    assert spent(db_engine, BOB) == 0.0  # the common allele alone explains a yes


def test_a_count_costs_more_than_a_yes(db_engine: Engine) -> None:
    _set(db_engine, level="registered")
    ask(db_engine, ALICE, [FIVE], "count")
    ask(db_engine, BOB, [FIVE], "boolean")
    assert spent(db_engine, ALICE) == pytest.approx(yes_cost_bits(5, 5) + count_cost_bits(5))
    assert spent(db_engine, BOB) == pytest.approx(yes_cost_bits(5, 5))


# -- questions, the audit ---------------------------------------------------------------------


def test_the_same_question_written_differently_has_one_digest() -> None:
    by_get = {"start": "100", "alternateBases": "G", "referenceName": "1", "skip": "0"}
    by_post = {
        "referenceName": "1",
        "start": [100],
        "alternateBases": " G",
        "requestedGranularity": "count",
        "datasetIds": [DATASET],
        "end": None,
    }
    filters = [{"id": "HP:0001250", "scope": "individual"}, "NCIT:C16576"]
    assert query_digest(by_get, filters) == query_digest(by_post, list(reversed(filters)))
    assert query_digest(by_get, []) != query_digest({**by_get, "alternateBases": "T"}, [])
    assert query_digest(by_get, []) != query_digest(by_get, filters)
    assert len(query_digest({}, [])) == 64


def test_every_answer_is_audited_with_identifiers_and_numbers_only(db_engine: Engine) -> None:
    ask(db_engine, ALICE, [SINGLETON], "count", position=1)
    ask(db_engine, READER, [SINGLETON], "record", position=1)
    first, second = entries(db_engine)
    assert (first["actor"], first["outcome"], first["dataset"]) == (
        ALICE.subject,
        "allowed",
        DATASET,
    )
    assert first["detail"] == {
        "digest": question(1),
        "asked": "count",
        "given": "boolean",
        "guard": True,
        "cost_mbits": 963,
        "spent_mbits": 963,
        "repeat": False,
    }
    assert second["detail"] == {
        "digest": question(1),
        "asked": "record",
        "given": "record",
        "guard": True,
        "cost_mbits": 0,
    }
    with db.session_scope(db_engine) as session:
        assert audit.verify(session).problem is None


def test_alleles_of_another_dataset_are_a_programming_error(db_engine: Engine) -> None:
    with pytest.raises(ValueError, match="is of EGAD00000000002"), writing(db_engine) as session:
        guard.answer_variants(
            session, ALICE, DATASET, [allele([1], dataset=OTHER)], "boolean", question()
        )


def test_concurrent_questions_of_one_user_are_all_paid_for(db_engine: Engine) -> None:
    """Budget rows are locked (PostgreSQL) or written one transaction at a time (SQLite)."""
    _set(db_engine, budget_bits=100.0)
    positions = list(range(40))
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: ask(db_engine, ALICE, [], position=p), positions))
    assert not any(answer.exists for answer in answers)
    assert spent(db_engine, ALICE) == pytest.approx(len(positions) * yes_cost_bits(5, 5))
    with db.session_scope(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(BeaconAnswered)) == len(positions)
