"""The automatic check of a research purpose against a dataset's data use conditions (DUO).

A requester states their purpose in the same DUO terms a policy uses (:class:`Purpose`): the
research permission it needs (GRU, HMB, DS with diseases, POA, or NRES), the conditions they
commit to as modifiers (IRB, PUB, NCU, ...), and the facts some conditions are about (where the
data is used: ``GS=BE`` or ``country``; the institution; the project). :func:`check_purpose`
compares it with a policy the way the GA4GH DUO matching algorithm does and returns each mismatch
as a sentence for the requester and the DAC; ``[]`` means the purpose fits.

The permissions nest: NRES data admits any purpose; GRU data admits GRU, HMB, DS and POA
research; HMB data admits HMB and DS (not POA, which HMB excludes); DS data admits DS research on
one of its diseases; POA data admits POA only. Diseases are compared as CURIEs, exactly: the
check has no ontology, so research on a subtype must name the policy's disease (the DAC can judge
more). Most modifiers are requirements the requester accepts by listing them; GS, US, IS and PS
are checked against facts; TS against the requested duration; CC in a purpose asks for clinical
care use, which only a policy with CC (or NRES) allows.

The check decides nothing: a DAC may approve despite mismatches, knowingly.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    model_validator,
)

from genofed.errors import GenofedError
from genofed.metadata import duo
from genofed.metadata.model import Curie, Description, Modifier, Name, Permission
from genofed.metadata.problems import invalid

LABELS = {
    "NRES": "any use (no restriction)",
    "GRU": "general research use",
    "HMB": "health, medical or biomedical research",
    "DS": "disease-specific research",
    "POA": "population origins or ancestry research",
}
# Which purposes the data of each permission admits (DS also needs a disease of the policy's).
ADMITS: Mapping[str, frozenset[str]] = {
    "NRES": frozenset({"NRES", "GRU", "HMB", "DS", "POA"}),
    "GRU": frozenset({"GRU", "HMB", "DS", "POA"}),
    "HMB": frozenset({"HMB", "DS"}),
    "DS": frozenset({"DS"}),
    "POA": frozenset({"POA"}),
}
# Modifiers a requester meets by accepting them (listing them in their purpose), and what the
# dataset then requires, as a sentence says it.
COMMITMENTS: Mapping[str, str] = {
    "IRB": "ethics approval",
    "PUB": "that results are published",
    "NCU": "non-commercial use only",
    "NPU": "use by not-for-profit organisations only",
    "RTN": "that derived data is returned to the resource",
    "NMDS": "no general methods research",
    "GSO": "genetic studies only",
    "NPOA": "no population origins or ancestry research",
    "COL": "collaboration with the data's providers",
}

_EU_MEMBERS = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
EU = frozenset(_EU_MEMBERS.split())
REGIONS: Mapping[str, frozenset[str]] = {"EU": EU, "EEA": EU | {"IS", "LI", "NO"}}
COUNTRY_ALIASES = {"EL": "GR", "UK": "GB"}  # the EU's code for Greece; the common one for the UK
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LIST_SEPARATOR = re.compile(r"\s*,\s*")


class InvalidPurpose(GenofedError):
    """A purpose that is not valid DUO; the message lists what to fix."""


def _country(text: str) -> str:
    if not _COUNTRY.match(text.strip()):
        raise invalid("not a country code", "write its ISO 3166-1 alpha-2 code, e.g. BE")
    code = text.strip().upper()
    return COUNTRY_ALIASES.get(code, code)


Country = Annotated[str, AfterValidator(_country)]


class Purpose(BaseModel):
    """A research purpose in DUO terms, with the commitments and facts the conditions ask for."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    permission: Permission = Field(
        description="The research the data is for: NRES, GRU, HMB, DS (with diseases) or POA."
    )
    diseases: list[Curie] = Field(
        [], description="For DS: the diseases researched, as CURIEs, e.g. MONDO:0005148."
    )
    modifiers: list[Modifier] = Field(
        [],
        description="The conditions accepted (IRB, PUB, NCU, NPU, COL, RTN, MOR=date, ...) and "
        "facts: GS=country where the data is used, IS=institution, PS=project, TS=duration.",
    )
    country: Country | None = Field(
        None, description="Where the data is used (ISO 3166-1 alpha-2), unless GS says it."
    )
    institution: Name | None = None
    project: Name | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Purpose:
        if self.permission == "DS" and not self.diseases:
            raise invalid("DS (disease-specific research) needs its diseases", "list them")
        if self.diseases and self.permission != "DS":
            raise invalid(
                f"diseases go with DS only, not {self.permission}",
                "remove them, or make the permission DS",
            )
        if self.permission == "POA" and self.modifier("NPOA"):
            raise invalid("a POA purpose cannot accept NPOA (no ancestry research)", "drop one")
        codes = [modifier.code for modifier in self.modifiers]
        twice = sorted({code for code in codes if codes.count(code) > 1})
        if twice:
            raise invalid(f"modifier(s) {', '.join(twice)} given twice", "keep one of each")
        return self

    @field_serializer("modifiers")
    def _written(self, modifiers: list[duo.Modifier]) -> list[str]:
        """Stored as written (``GS=BE``), as policies' modifiers are shown."""
        return [str(modifier) for modifier in modifiers]

    def modifier(self, code: str) -> duo.Modifier | None:
        return next((found for found in self.modifiers if found.code == code), None)


def read_purpose(raw: Purpose | Mapping[str, Any]) -> Purpose:
    """A :class:`Purpose` from its JSON form, or :class:`InvalidPurpose` listing every fix."""
    if isinstance(raw, Purpose):
        return raw
    try:
        return Purpose.model_validate(raw)
    except ValidationError as error:
        raise InvalidPurpose(f"the purpose is not valid: {problems(error)}") from None


def problems(error: ValidationError) -> str:
    """Pydantic's errors as one line: where, what, and the fix when a validator gave one."""
    said = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "purpose"
        fix = (item.get("ctx") or {}).get("fix")
        said.append(f"{where}: {item['msg']}" + (f" ({fix})" if fix else ""))
    return "; ".join(said)


# -- the policy's side --------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """A policy's DUO terms, read from its stored body."""

    permission: str
    diseases: tuple[str, ...]
    modifiers: tuple[duo.Modifier, ...]

    def modifier(self, code: str) -> duo.Modifier | None:
        return next((found for found in self.modifiers if found.code == code), None)

    def terms(self) -> list[str]:
        """The terms as a grant records them: the permission (``DS=MONDO:..``), then modifiers."""
        first = self.permission
        if self.diseases:
            first += "=" + ",".join(self.diseases)
        return [first, *(str(modifier) for modifier in self.modifiers)]


def policy_conditions(body: Mapping[str, Any]) -> Conditions:
    """The conditions of a policy's ``MetadataObject.body`` (validated when it was submitted)."""
    return Conditions(
        permission=str(body.get("permission", "NRES")).upper(),
        diseases=tuple(str(disease) for disease in body.get("diseases") or ()),
        modifiers=tuple(duo.modifier(raw) for raw in body.get("modifiers") or ()),
    )


# -- the check ----------------------------------------------------------------------------------


def check_purpose(
    purpose: Purpose | Mapping[str, Any],
    policy_body: Mapping[str, Any] | Conditions,
    *,
    duration_days: int | None = None,
    requester: str | None = None,
    today: date | None = None,
) -> list[str]:
    """Every way ``purpose`` does not fit the policy, as sentences; ``[]`` when it fits.

    ``duration_days`` (how long access is asked for) is checked against TS, ``requester`` (the
    user's name) against US; without them those checks use what the purpose states. ``today``
    anchors TS (default: today in UTC), so that the result depends on the arguments alone.
    """
    wanted = read_purpose(purpose)
    policy = policy_body if isinstance(policy_body, Conditions) else policy_conditions(policy_body)
    today = today or datetime.now(UTC).date()
    return [
        *_permission(wanted, policy),
        *_commitments(wanted, policy),
        *_region(wanted, policy),
        *_named(wanted, policy, requester),
        *_time_limit(wanted, policy, duration_days, today),
        *_clinical_care(wanted, policy),
    ]


def _permission(purpose: Purpose, policy: Conditions) -> Iterator[str]:
    data, wanted = policy.permission, purpose.permission
    if data == "DS":
        yield from _diseases(purpose, policy)
    elif wanted == "POA" and policy.modifier("NPOA"):
        yield (
            "the dataset forbids population origins or ancestry research (NPOA), which your "
            "purpose is (POA)"
        )
    elif wanted == "POA" and data == "HMB":
        yield (
            "the dataset allows health, medical or biomedical research only, which excludes "
            "population origins or ancestry research, your purpose (POA)"
        )
    elif wanted not in ADMITS[data]:
        yield (
            f"the dataset allows {LABELS[data]} only; your purpose is {_purpose_label(purpose)}: "
            f"state a permission the dataset admits ({', '.join(sorted(ADMITS[data]))})"
        )


def _diseases(purpose: Purpose, policy: Conditions) -> Iterator[str]:
    allowed = ", ".join(policy.diseases)
    if purpose.permission != "DS":
        yield (
            f"the dataset allows disease-specific research on {allowed} only; your purpose is "
            f"{_purpose_label(purpose)}: if your research is on that disease, state DS with it"
        )
        return
    outside = [disease for disease in purpose.diseases if disease not in policy.diseases]
    if outside:
        yield (
            f"the dataset allows disease-specific research on {allowed} only; your purpose names "
            f"{', '.join(outside)}, which it does not list (diseases are compared as written: "
            "name the policy's disease if yours is a form of it)"
        )


def _purpose_label(purpose: Purpose) -> str:
    label = LABELS.get(purpose.permission, purpose.permission)
    if purpose.diseases:
        label += f" on {', '.join(purpose.diseases)}"
    return f"{label} ({purpose.permission})"


def _commitments(purpose: Purpose, policy: Conditions) -> Iterator[str]:
    """Conditions the requester meets by accepting them: listed, with a fitting parameter."""
    for required in policy.modifiers:
        accepted = purpose.modifier(required.code)
        if required.code == "NPOA" and purpose.permission == "POA":
            continue  # a contradiction, which _permission reports
        if required.code in COMMITMENTS:
            label = COMMITMENTS[required.code]
            if accepted is None:
                yield f"the dataset requires {label} ({required}): add {required} to accept it"
            elif required.value and accepted.value and not _same(required.value, accepted.value):
                yield (
                    f"the dataset requires collaboration with {required.value} ({required}); "
                    f"your purpose names {accepted.value}: write {required}"
                )
        elif required.code == "MOR":
            yield from _moratorium(required, accepted)
        elif required.code == "RS" and (
            accepted is None or not _same(str(required.value), str(accepted.value))
        ):
            yield (
                f"the dataset is restricted to research of type '{required.value}' (RS): if "
                f"yours is, add {required}"
            )


def _moratorium(required: duo.Modifier, accepted: duo.Modifier | None) -> Iterator[str]:
    until = date.fromisoformat(str(required.value))
    if accepted is None or accepted.value is None or date.fromisoformat(accepted.value) < until:
        yield (
            f"the dataset has a publication moratorium until {until.isoformat()} (MOR): add "
            f"{required} to accept that you will not publish before then"
        )


def _region(purpose: Purpose, policy: Conditions) -> Iterator[str]:
    restriction = policy.modifier("GS")
    if restriction is None:
        return
    allowed = _countries(str(restriction.value))
    stated = purpose.modifier("GS")
    where = _countries(stated.value) if stated and stated.value else set()
    if not where and purpose.country:
        where = {purpose.country}
    if not where:
        yield (
            f"the dataset may be used only in {restriction.value} (GS): state where you will use "
            "it with GS=<country code> (e.g. GS=BE) or the purpose's country"
        )
        return
    outside = sorted(where - allowed)
    if outside:
        yield (
            f"the dataset may be used only in {restriction.value} (GS); your purpose names "
            f"{', '.join(outside)}, outside it"
        )


def _countries(text: str) -> set[str]:
    """The countries of a GS parameter: codes and the regions EU and EEA, expanded."""
    found: set[str] = set()
    for part in _LIST_SEPARATOR.split(text.strip().upper()):
        if not part:
            continue
        found |= REGIONS.get(part, {COUNTRY_ALIASES.get(part, part)})
    return found


def _named(purpose: Purpose, policy: Conditions, requester: str | None) -> Iterator[str]:
    """US, IS and PS with a parameter: the user, institution or project must be one named."""
    facts = {
        "US": [requester] if requester else _stated(purpose, "US"),
        "IS": [purpose.institution] if purpose.institution else _stated(purpose, "IS"),
        "PS": [purpose.project] if purpose.project else _stated(purpose, "PS"),
    }
    nouns = {"US": "user", "IS": "institution", "PS": "project"}
    for code, stated in facts.items():
        restriction = policy.modifier(code)
        if restriction is None or not restriction.value:
            continue  # without names, approval by the DAC is the restriction itself
        allowed = {_normal(name) for name in _LIST_SEPARATOR.split(restriction.value)}
        noun = nouns[code]
        if not stated:
            yield (
                f"the dataset may be used only by the {noun}(s) {restriction.value} ({code}): "
                f"state your {noun}"
            )
        elif not all(_normal(name) in allowed for name in stated):
            yield (
                f"the dataset may be used only by the {noun}(s) {restriction.value} ({code}); "
                f"your {noun} is {', '.join(stated)}"
            )


def _stated(purpose: Purpose, code: str) -> list[str]:
    stated = purpose.modifier(code)
    if stated is None or not stated.value:
        return []
    return [name for name in _LIST_SEPARATOR.split(stated.value) if name]


def _time_limit(
    purpose: Purpose, policy: Conditions, duration_days: int | None, today: date
) -> Iterator[str]:
    restriction = policy.modifier("TS")
    if restriction is None:
        return
    limit = limit_end(str(restriction.value), today)
    allowed = _limit_phrase(str(restriction.value), limit)
    if duration_days is not None and today + timedelta(days=duration_days) > limit:
        most = max((limit - today).days, 0)
        yield (
            f"the dataset may be used {allowed} (TS); you ask for {duration_days} days: ask for "
            f"at most {most}"
        )
    stated = purpose.modifier("TS")
    if stated is not None and stated.value and limit_end(stated.value, today) > limit:
        yield f"the dataset may be used {allowed} (TS); your purpose states {stated}"


def _limit_phrase(value: str, limit: date) -> str:
    if value[:1].isdigit():
        return f"until {limit.isoformat()} only"
    return f"for {value} at most, until {limit.isoformat()} if access starts today"


def limit_end(value: str, today: date) -> date:
    """The last day a TS limit allows: its date, or ``today`` plus its duration (calendar)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?", value.upper())
    if match is None:
        raise InvalidPurpose(f"TS={value} is neither a date nor an ISO 8601 duration")
    years, months, weeks, days = (int(part or 0) for part in match.groups())
    return _add_months(today, 12 * years + months) + timedelta(weeks=weeks, days=days)


def _add_months(start: date, months: int) -> date:
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, _days_in(year, month)))


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _clinical_care(purpose: Purpose, policy: Conditions) -> Iterator[str]:
    if purpose.modifier("CC") and policy.permission != "NRES" and not policy.modifier("CC"):
        yield "your purpose includes clinical care use (CC), which the dataset does not allow"


def _same(left: str, right: str) -> bool:
    return _normal(left) == _normal(right)


def _normal(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()
