"""The proof: the Shringarpure & Bustamante membership attack against the beacon, guard off
and on (the bench's code, ``bench/reidentification.py``, on a smaller cohort).

Every target is attacked from an account of its own, so each gets a full budget: the strongest
case for the attacker. Full-size figures are in ``docs/privacy.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from guard_support import entries, reidentification

from genofed.beacon.guard import DEFAULT_BUDGET_BITS, DEFAULT_MIN_COUNT

MEMBERS = NON_MEMBERS = 200
SNPS = 30_000


@pytest.fixture(scope="module")
def cohort() -> reidentification.Cohort:
    return reidentification.generate(MEMBERS, NON_MEMBERS, SNPS, keep=400, seed=11)


@pytest.fixture
def beacon_off(
    cohort: reidentification.Cohort, tmp_path: Path
) -> Iterator[reidentification.Beacon]:
    beacon = reidentification.open_beacon(cohort, f"sqlite:///{tmp_path / 'off.db'}", guard=False)
    yield beacon
    beacon.engine.dispose()


@pytest.fixture
def beacon_on(cohort: reidentification.Cohort, tmp_path: Path) -> Iterator[reidentification.Beacon]:
    """A controlled dataset with the default guard, asked by identified users without a visa."""
    beacon = reidentification.open_beacon(cohort, f"sqlite:///{tmp_path / 'on.db'}", guard=True)
    yield beacon
    beacon.engine.dispose()


def test_the_cohort_has_a_realistic_spectrum(cohort: reidentification.Cohort) -> None:
    frequencies = cohort.frequencies
    assert 0.3 < np.mean(frequencies < 1 / 2000) < 0.4  # rare variants abound
    assert np.mean(frequencies > 0.05) > 0.2
    present = [a for a in cohort.alleles if a is not None]
    singletons = sum(len(a.carriers) == 1 for a in present)
    assert singletons / len(present) > 0.15  # many alleles are one member's own


def test_without_the_guard_the_attack_finds_every_member(
    cohort: reidentification.Cohort, beacon_off: reidentification.Beacon
) -> None:
    attacker = reidentification.shringarpure_bustamante(cohort.frequencies, cohort.beacon_size)
    run = beacon_off.attack(attacker, queries=5, account="off")
    assert run.refusals == 0 and run.answered == 5 * (MEMBERS + NON_MEMBERS)
    assert run.power(cohort.is_member) > 0.9
    assert run.power(cohort.is_member, queries=2) > 0.9  # two questions per person suffice


def test_with_the_guard_the_attack_fails_and_ordinary_use_goes_on(
    cohort: reidentification.Cohort, beacon_on: reidentification.Beacon
) -> None:
    published = reidentification.shringarpure_bustamante(cohort.frequencies, cohort.beacon_size)
    run = beacon_on.attack(published, queries=100, account="sb")
    assert run.power(cohort.is_member) < 0.12  # chance is 0.05
    assert run.refusals == MEMBERS + NON_MEMBERS  # every attack ended at the budget
    assert run.answered <= 5 * (MEMBERS + NON_MEMBERS)

    adaptive = reidentification.threshold_aware(
        cohort.frequencies, cohort.beacon_size, DEFAULT_MIN_COUNT
    )
    assert beacon_on.attack(adaptive, queries=100, account="tk").power(cohort.is_member) < 0.3

    use = reidentification.ordinary_user(beacon_on, common=100, rare=3, seed=1)
    assert use.answered == use.asked == 103
    refused = [e for e in entries(beacon_on.engine) if e["outcome"] == "denied"]
    assert len(refused) == 2 * (MEMBERS + NON_MEMBERS)  # every refusal is in the audit log
    assert {e["detail"]["reason"] for e in refused} == {"budget_exhausted"}
    assert DEFAULT_BUDGET_BITS == 3.0  # the figures above and in docs/privacy.md are for it


def test_power_is_that_of_chance_when_answers_say_nothing() -> None:
    is_member = np.arange(1000) < 500
    assert reidentification.power(np.zeros(1000), is_member) == pytest.approx(0.05)
    separated = np.where(is_member, -1.0, 1.0)
    assert reidentification.power(separated, is_member) == 1.0
    assert reidentification.power(-separated, is_member) == 0.0
