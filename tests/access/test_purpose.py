"""The DUO check of a research purpose against a policy: the permission hierarchy, each modifier,
the purpose's validation, and properties over generated policies and purposes."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genofed.access.purpose import (
    InvalidPurpose,
    Purpose,
    check_purpose,
    limit_end,
    policy_conditions,
    read_purpose,
)

TODAY = date(2026, 11, 24)
EPILEPSY, DIABETES = "MONDO:0005027", "MONDO:0005148"


def policy(permission: str, *modifiers: str, diseases: list[str] | None = None) -> dict[str, Any]:
    """A policy's body as the metadata store keeps it."""
    stored = []
    for written in modifiers:
        code, _, value = written.partition("=")
        stored.append({"code": code, "value": value} if value else {"code": code})
    body: dict[str, Any] = {"title": "T", "permission": permission, "modifiers": stored}
    if diseases:
        body["diseases"] = diseases
    return body


def check(purpose: dict[str, Any], body: dict[str, Any], **options: Any) -> list[str]:
    return check_purpose(purpose, body, today=TODAY, **options)


# -- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "wanted", "fits"),
    [
        ("NRES", "NRES", True),
        ("NRES", "GRU", True),
        ("NRES", "POA", True),
        ("GRU", "GRU", True),
        ("GRU", "HMB", True),
        ("GRU", "POA", True),
        ("GRU", "NRES", False),
        ("HMB", "HMB", True),
        ("HMB", "GRU", False),
        ("HMB", "POA", False),
        ("HMB", "NRES", False),
        ("POA", "POA", True),
        ("POA", "HMB", False),
        ("POA", "GRU", False),
    ],
)
def test_the_permission_hierarchy(data: str, wanted: str, fits: bool) -> None:
    assert (check({"permission": wanted}, policy(data)) == []) is fits


@pytest.mark.parametrize("data", ["NRES", "GRU", "HMB"])
def test_disease_specific_research_fits_broader_data(data: str) -> None:
    assert check({"permission": "DS", "diseases": [DIABETES]}, policy(data)) == []


def test_general_research_on_disease_specific_data_is_explained() -> None:
    [mismatch] = check({"permission": "GRU"}, policy("DS", diseases=[DIABETES]))
    assert mismatch.startswith(
        f"the dataset allows disease-specific research on {DIABETES} only; your purpose is "
        "general research use (GRU)"
    )


def test_disease_specific_research_must_name_a_disease_of_the_policy() -> None:
    data = policy("DS", diseases=[EPILEPSY, DIABETES])
    assert check({"permission": "DS", "diseases": [EPILEPSY]}, data) == []
    assert check({"permission": "DS", "diseases": [DIABETES, EPILEPSY]}, data) == []
    [mismatch] = check({"permission": "DS", "diseases": [EPILEPSY, "MONDO:0004975"]}, data)
    assert "names MONDO:0004975, which it does not list" in mismatch


def test_hmb_data_excludes_ancestry_research() -> None:
    [mismatch] = check({"permission": "POA"}, policy("HMB"))
    assert "excludes population origins or ancestry research" in mismatch


def test_npoa_forbids_ancestry_research_without_asking_to_accept_it() -> None:
    [mismatch] = check({"permission": "POA"}, policy("GRU", "NPOA"))
    assert "forbids population origins or ancestry research (NPOA)" in mismatch
    assert check({"permission": "HMB", "modifiers": ["NPOA"]}, policy("GRU", "NPOA")) == []


# -- modifiers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["IRB", "PUB", "NCU", "NPU", "RTN", "NMDS", "GSO", "NPOA", "COL"])
def test_a_requirement_must_be_accepted(code: str) -> None:
    [mismatch] = check({"permission": "HMB"}, policy("HMB", code))
    assert f"({code}): add {code} to accept it" in mismatch
    assert check({"permission": "HMB", "modifiers": [code]}, policy("HMB", code)) == []


def test_collaboration_with_someone_named_must_name_them() -> None:
    data = policy("GRU", "COL=UZ Leuven")
    assert check({"permission": "GRU", "modifiers": ["COL"]}, data) == []
    assert check({"permission": "GRU", "modifiers": ["COL=uz  leuven"]}, data) == []
    [mismatch] = check({"permission": "GRU", "modifiers": ["COL=KU Leuven"]}, data)
    assert "collaboration with UZ Leuven" in mismatch


def test_a_moratorium_is_accepted_until_its_date_or_later() -> None:
    data = policy("GRU", "MOR=2027-06-01")
    assert check({"permission": "GRU", "modifiers": ["MOR=2027-06-01"]}, data) == []
    assert check({"permission": "GRU", "modifiers": ["MOR=2028-01-01"]}, data) == []
    for purpose in ({"permission": "GRU"}, {"permission": "GRU", "modifiers": ["MOR=2027-01-01"]}):
        [mismatch] = check(purpose, data)
        assert "publication moratorium until 2027-06-01 (MOR): add MOR=2027-06-01" in mismatch


def test_research_specific_restrictions_must_match() -> None:
    data = policy("GRU", "RS=cancer research")
    assert check({"permission": "GRU", "modifiers": ["RS=Cancer Research"]}, data) == []
    [mismatch] = check({"permission": "GRU"}, data)
    assert "restricted to research of type 'cancer research'" in mismatch


@pytest.mark.parametrize(
    ("where", "fits"),
    [
        ({"modifiers": ["GS=BE"]}, True),
        ({"country": "be"}, True),
        ({"country": "EL"}, True),  # Greece as the EU writes it
        ({"modifiers": ["GS=BE,NL"]}, True),
        ({"modifiers": ["GS=EU"]}, True),
        ({"modifiers": ["GS=US"]}, False),
        ({"country": "NO"}, False),
        ({"modifiers": ["GS=EEA"]}, False),  # Norway, Iceland, Liechtenstein are not in the EU
        ({}, False),
    ],
)
def test_geographic_restriction(where: dict[str, Any], fits: bool) -> None:
    mismatches = check({"permission": "GRU", **where}, policy("GRU", "GS=EU"))
    assert (mismatches == []) is fits
    if not where:
        assert "state where you will use it" in mismatches[0]


def test_gs_lists_countries_and_regions() -> None:
    assert check({"permission": "GRU", "country": "NO"}, policy("GRU", "GS=EEA")) == []
    assert check({"permission": "GRU", "country": "NL"}, policy("GRU", "GS=BE, NL")) == []
    [mismatch] = check({"permission": "GRU", "modifiers": ["GS=BE,FR"]}, policy("GRU", "GS=BE,NL"))
    assert "your purpose names FR, outside it" in mismatch


def test_time_limit_as_a_duration() -> None:
    data = policy("GRU", "TS=P2Y")
    assert limit_end("P2Y", TODAY) == date(2028, 11, 24)
    assert check({"permission": "GRU"}, data, duration_days=731) == []
    [mismatch] = check({"permission": "GRU"}, data, duration_days=732)
    assert "for P2Y at most, until 2028-11-24" in mismatch
    assert "ask for at most 731" in mismatch
    assert check({"permission": "GRU"}, data) == []  # no duration, nothing to check


def test_time_limit_as_a_date() -> None:
    data = policy("GRU", "TS=2027-01-01")
    assert check({"permission": "GRU"}, data, duration_days=38) == []
    [mismatch] = check({"permission": "GRU"}, data, duration_days=39)
    assert "until 2027-01-01 only (TS)" in mismatch
    [mismatch] = check({"permission": "GRU", "modifiers": ["TS=P1Y"]}, data)
    assert "your purpose states TS=P1Y" in mismatch


def test_months_end_on_the_last_day_of_shorter_months() -> None:
    assert limit_end("P1M", date(2027, 1, 31)) == date(2027, 2, 28)
    assert limit_end("P1Y2M1W3D", date(2026, 11, 24)) == date(2028, 2, 3)


def test_user_institution_and_project_restrictions() -> None:
    data = policy("GRU", "US=bob@ulb.be, eve@ulb.be", "IS=ULB", "PS=EPI-2")
    fitting = {"permission": "GRU", "institution": "ulb", "project": "EPI-2"}
    assert check(fitting, data, requester="bob@ulb.be") == []
    mismatches = check({"permission": "GRU"}, data, requester="carol@ulb.be")
    assert mismatches == [
        "the dataset may be used only by the user(s) bob@ulb.be, eve@ulb.be (US); your user is "
        "carol@ulb.be",
        "the dataset may be used only by the institution(s) ULB (IS): state your institution",
        "the dataset may be used only by the project(s) EPI-2 (PS): state your project",
    ]
    assert check({"permission": "GRU"}, policy("GRU", "US", "IS", "PS")) == []  # the DAC decides


def test_clinical_care_needs_a_policy_that_allows_it() -> None:
    clinical = {"permission": "HMB", "modifiers": ["CC"]}
    assert check(clinical, policy("HMB", "CC")) == []
    assert check(clinical, policy("NRES")) == []
    [mismatch] = check(clinical, policy("HMB"))
    assert "clinical care use (CC)" in mismatch


def test_every_mismatch_is_listed() -> None:
    data = policy("DS", "IRB", "PUB", "GS=EU", "TS=P2Y", "NPU", diseases=[EPILEPSY])
    mismatches = check({"permission": "HMB", "country": "US"}, data, duration_days=1000)
    assert len(mismatches) == 6


# -- the purpose itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"permission": "XYZ"}, "permission: unknown DUO code"),
        ({"permission": "IRB"}, "IRB (ethics approval required) is a data use modifier"),
        ({"permission": "DS"}, "DS (disease-specific research) needs its diseases"),
        ({"permission": "HMB", "diseases": [EPILEPSY]}, "diseases go with DS only"),
        ({"permission": "DS", "diseases": ["MONDO:12"]}, "diseases.0: not a valid MONDO term"),
        ({"permission": "GRU", "modifiers": ["IRB", "IRB"]}, "IRB given twice"),
        ({"permission": "GRU", "modifiers": ["GS"]}, "GS (geographical restriction) needs"),
        ({"permission": "GRU", "modifiers": ["HMB"]}, "HMB (health or medical"),
        ({"permission": "POA", "modifiers": ["NPOA"]}, "cannot accept NPOA"),
        ({"permission": "GRU", "country": "Belgium"}, "country: not a country code"),
        ({"permission": "GRU", "budget": 3}, "budget: Extra inputs are not permitted"),
        ({}, "permission: Field required"),
    ],
)
def test_an_invalid_purpose_says_what_to_fix(raw: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidPurpose, match="the purpose is not valid") as raised:
        read_purpose(raw)
    assert said in str(raised.value)


def test_a_purpose_is_stored_as_written_and_read_back_alike() -> None:
    purpose = read_purpose(
        {"permission": "ds", "diseases": ["mondo:0005027"], "modifiers": ["irb", "gs=BE"]}
    )
    stored = purpose.model_dump(mode="json", exclude_none=True)
    assert stored == {
        "permission": "DS",
        "diseases": [EPILEPSY],
        "modifiers": ["IRB", "GS=BE"],
    }
    assert read_purpose(stored) == purpose


def test_a_policys_terms_for_a_grant() -> None:
    body = policy("DS", "IRB", "GS=EU", diseases=[EPILEPSY, DIABETES])
    assert policy_conditions(body).terms() == [f"DS={EPILEPSY},{DIABETES}", "IRB", "GS=EU"]
    assert policy_conditions(policy("GRU")).terms() == ["GRU"]


# -- properties ---------------------------------------------------------------------------------

DISEASES = st.lists(
    st.integers(0, 9_999_999).map(lambda n: f"MONDO:{n:07d}"), min_size=1, max_size=3, unique=True
)
TEXT = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
DATES = st.dates(date(2027, 1, 1), date(2040, 12, 31)).map(date.isoformat)
FLAGS = ["IRB", "PUB", "NCU", "NPU", "RTN", "NMDS", "GSO", "NPOA", "CC"]
PARAMETERISED = {
    "GS": st.sampled_from(["EU", "EEA", "BE", "BE,NL", "NO"]),
    "TS": st.one_of(st.integers(1, 10).map(lambda n: f"P{n}Y"), DATES),
    "MOR": DATES,
    "RS": TEXT,
    "COL": TEXT,
    "US": TEXT,
    "IS": TEXT,
    "PS": TEXT,
}


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid policy body: a permission, diseases for DS, distinct modifiers."""
    permission = draw(st.sampled_from(["NRES", "GRU", "HMB", "DS", "POA"]))
    flags = draw(st.lists(st.sampled_from(FLAGS), unique=True, max_size=4))
    if permission == "POA":
        flags = [flag for flag in flags if flag != "NPOA"]
    codes = draw(st.lists(st.sampled_from(sorted(PARAMETERISED)), unique=True, max_size=4))
    modifiers = flags + [f"{code}={draw(PARAMETERISED[code])}" for code in codes]
    diseases = draw(DISEASES) if permission == "DS" else None
    return policy(permission, *modifiers, diseases=diseases)


@st.composite
def purposes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid purpose of any permission, with any commitments."""
    permission = draw(st.sampled_from(["NRES", "GRU", "HMB", "DS", "POA"]))
    flags = draw(st.lists(st.sampled_from(FLAGS), unique=True, max_size=5))
    if permission == "POA":
        flags = [flag for flag in flags if flag != "NPOA"]
    purpose: dict[str, Any] = {"permission": permission, "modifiers": flags}
    if permission == "DS":
        purpose["diseases"] = draw(DISEASES)
    if draw(st.booleans()):
        purpose["country"] = draw(st.sampled_from(["BE", "US", "NO", "FR"]))
    return purpose


def as_purpose(body: dict[str, Any]) -> dict[str, Any]:
    """The purpose that states exactly the policy's terms."""
    written = [
        f"{item['code']}={item['value']}" if "value" in item else item["code"]
        for item in body["modifiers"]
    ]
    purpose = {"permission": body["permission"], "modifiers": written}
    if body.get("diseases"):
        purpose["diseases"] = body["diseases"]
    return purpose


@given(policies())
def test_a_purpose_identical_to_the_policy_never_mismatches(body: dict[str, Any]) -> None:
    assert check(as_purpose(body), body) == []


@given(purposes(), st.integers(1, 3650))
def test_nres_data_accepts_any_purpose(purpose: dict[str, Any], days: int) -> None:
    assert check(purpose, policy("NRES"), duration_days=days, requester="anyone") == []


@given(policies(), purposes(), st.lists(st.sampled_from(FLAGS[:-1]), unique=True))
def test_accepting_more_conditions_never_adds_a_mismatch(
    body: dict[str, Any], purpose: dict[str, Any], more: list[str]
) -> None:
    if purpose["permission"] == "POA":
        more = [flag for flag in more if flag != "NPOA"]
    wider = {**purpose, "modifiers": sorted(set(purpose["modifiers"]) | set(more))}
    assert set(check(wider, body)) <= set(check(purpose, body))


@given(policies(), purposes())
def test_the_check_is_a_pure_function_of_its_arguments(
    body: dict[str, Any], purpose: dict[str, Any]
) -> None:
    first = check(purpose, body, duration_days=365, requester="bob")
    assert first == check(Purpose.model_validate(purpose), body, duration_days=365, requester="bob")
    assert all(isinstance(mismatch, str) and mismatch for mismatch in first)
