"""The GA4GH Data Use Ontology (DUO) terms a policy states its data-use conditions with.

A policy has one *permission* (what research the data may be used for: GRU, HMB, DS, ...) and any
number of *modifiers* (extra conditions: IRB, PUB, GS, TS, ...). Some terms need a parameter that
DUO itself leaves to the archive: the diseases of DS, the region of GS, the limit of TS, ... .
Submitters write a term by its code (``GS``) or DUO id (``DUO:0000022``), a parameter after ``=``
(``GS=EU``, ``TS=P2Y``); both are stored by code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from genofed.metadata.problems import invalid, plain_text


class Parameter(enum.StrEnum):
    """What a term's parameter is; how it is written is in :data:`PARAMETER_FORMS`."""

    DISEASE = "disease"  # DS: ontology CURIEs, given in the policy's diseases
    REGION = "region"  # GS: countries or regions, e.g. EU or BE,NL
    LIMIT = "limit"  # TS: an ISO 8601 duration (P2Y) or an end date (2030-12-31)
    DATE = "date"  # MOR: an ISO 8601 date
    TEXT = "text"  # RS, US, PS, IS, COL: a research type, names of users, a project, ...


PARAMETER_FORMS = {
    Parameter.DISEASE: "disease CURIEs in the diseases column, e.g. MONDO:0005148",
    Parameter.REGION: "countries or a region, e.g. GS=EU or GS=BE,NL",
    Parameter.LIMIT: "a duration or an end date, e.g. TS=P2Y or TS=2030-12-31",
    Parameter.DATE: "a date, e.g. MOR=2027-01-01",
    Parameter.TEXT: "a text, e.g. RS=cancer research",
}


@dataclass(frozen=True)
class Term:
    code: str
    id: str
    label: str
    permission: bool  # a permission (exactly one per policy) or a modifier
    parameter: Parameter | None = None
    parameter_required: bool = False


def _term(
    code: str,
    number: int,
    label: str,
    *,
    permission: bool = False,
    parameter: Parameter | None = None,
    required: bool = False,
) -> Term:
    return Term(code, f"DUO:{number:07d}", label, permission, parameter, required)


TERMS: Mapping[str, Term] = {
    term.code: term
    for term in (
        _term("NRES", 4, "no restriction", permission=True),
        _term("GRU", 42, "general research use", permission=True),
        _term("HMB", 6, "health or medical or biomedical research", permission=True),
        _term(
            "DS",
            7,
            "disease specific research",
            permission=True,
            parameter=Parameter.DISEASE,
            required=True,
        ),
        _term("POA", 11, "population origins or ancestry research only", permission=True),
        _term("RS", 12, "research specific restrictions", parameter=Parameter.TEXT, required=True),
        _term("NMDS", 15, "no general methods research"),
        _term("GSO", 16, "genetic studies only"),
        _term("PUB", 19, "publication required"),
        _term("COL", 20, "collaboration required", parameter=Parameter.TEXT),
        _term("IRB", 21, "ethics approval required"),
        _term("GS", 22, "geographical restriction", parameter=Parameter.REGION, required=True),
        _term("MOR", 24, "publication moratorium", parameter=Parameter.DATE, required=True),
        _term("TS", 25, "time limit on use", parameter=Parameter.LIMIT, required=True),
        _term("US", 26, "user specific restriction", parameter=Parameter.TEXT),
        _term("PS", 27, "project specific restriction", parameter=Parameter.TEXT),
        _term("IS", 28, "institution specific restriction", parameter=Parameter.TEXT),
        _term("RTN", 29, "return to database or resource"),
        _term("CC", 43, "clinical care use"),
        _term("NPOA", 44, "population origins or ancestry research prohibited"),
        _term("NPU", 45, "not for profit organisation use only"),
        _term("NCU", 46, "non-commercial use only"),
    )
}
BY_ID = {term.id: term for term in TERMS.values()}
PERMISSIONS = tuple(code for code, term in TERMS.items() if term.permission)
MODIFIERS = tuple(code for code, term in TERMS.items() if not term.permission)
# Terms DUO has made obsolete, with their replacement.
OBSOLETE = {"NPUNCU": "NPU;NCU", "DUO:0000018": "NPU;NCU"}

_DURATION = re.compile(r"P(?=\d)(\d{1,4}Y)?(\d{1,4}M)?(\d{1,5}W)?(\d{1,5}D)?")


def lookup(text: str) -> Term:
    """The term written as a code (``GS``) or a DUO id (``DUO:0000022``)."""
    written = text.strip().upper()
    term = TERMS.get(written) or BY_ID.get(written)
    if term is not None:
        return term
    if written in OBSOLETE:
        raise invalid(f"the DUO term {written} is obsolete", f"write {OBSOLETE[written]}")
    raise invalid(
        "unknown DUO code",
        f"use a permission ({', '.join(PERMISSIONS)}) or a modifier ({', '.join(MODIFIERS)})",
    )


def permission(text: str) -> str:
    """The code of the permission ``text``; a modifier here is a mistake worth explaining."""
    term = lookup(text)
    if not term.permission:
        raise invalid(
            f"{term.code} ({term.label}) is a data use modifier, not a permission",
            f"move it to the modifiers; the permission is one of {', '.join(PERMISSIONS)}",
        )
    return term.code


class Modifier(BaseModel):
    """A data use modifier with its parameter, e.g. ``GS`` with ``EU``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    value: str | None = None

    def __str__(self) -> str:
        return self.code if self.value is None else f"{self.code}={self.value}"


def modifier(raw: Any) -> Modifier:
    """Read a modifier written ``CODE``, ``CODE=value`` or as ``{"code": .., "value": ..}``."""
    if isinstance(raw, Modifier):
        return raw
    if isinstance(raw, str):
        code, equals, value = raw.partition("=")
        given: str | None = value.strip() if equals else None
    elif isinstance(raw, Mapping) and isinstance(raw.get("code"), str):
        code, given = raw["code"], raw.get("value")
        if (given is not None and not isinstance(given, str)) or set(raw) - {"code", "value"}:
            raise invalid("not a modifier", 'write {"code": "GS", "value": "EU"} or "GS=EU"')
    else:
        raise invalid("not a modifier", "write the code, and its parameter after =, e.g. GS=EU")
    term = lookup(code)
    if term.permission:
        raise invalid(
            f"{term.code} ({term.label}) is a permission, not a modifier",
            "a policy has one permission, in the permission column; "
            f"modifiers are {', '.join(MODIFIERS)}",
        )
    return Modifier(code=term.code, value=_parameter(term, given or None))


def _parameter(term: Term, value: str | None) -> str | None:
    if term.parameter is None:
        if value is not None:
            raise invalid(f"{term.code} ({term.label}) takes no parameter", f"write {term.code}")
        return None
    if value is None:
        if term.parameter_required:
            raise invalid(
                f"{term.code} ({term.label}) needs a parameter",
                f"write {PARAMETER_FORMS[term.parameter]}",
            )
        return None
    plain_text(value)
    if term.parameter is Parameter.LIMIT and not _is_limit(value):
        raise invalid(f"{term.code} limit is not a duration or date", "write e.g. TS=P2Y")
    if term.parameter is Parameter.DATE and _as_date(value) is None:
        raise invalid(f"{term.code} date is not an ISO 8601 date", "write e.g. MOR=2027-01-01")
    return value.upper() if term.parameter is Parameter.LIMIT else value


def _is_limit(value: str) -> bool:
    return bool(_DURATION.fullmatch(value.upper())) or _as_date(value) is not None


def _as_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
