"""Data-use terms of pathogen records, and who has accepted the node's terms.

A record is ``open`` or ``restricted`` until a date at most a year ahead (in the spirit of
Pathoplexus: a lab keeps first publication rights for a while, then the record opens by itself).
Downloading needs a registered user who accepted the node's terms of use; restricted records
need the restricted-use terms accepted too (use them, but do not publish on them without the
submitting lab, until their date).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from genofed.db import PathogenEntry, PathogenTermsAcceptance
from genofed.pathogen.entries import InvalidInput, NotAllowed
from genofed.pathogen.record import OPEN, RESTRICTED

TERMS_VERSION = "1"
MAX_RESTRICTION = timedelta(days=365)
TEXTS = {
    OPEN: (
        "Credit the originating and submitting laboratories of every record you use (the "
        "acknowledgement table comes with each download), cite the snapshot set of the records "
        "you publish on, and do not try to identify the patients."
    ),
    RESTRICTED: (
        "Until a restricted record's date, you may analyse it but not publish findings based "
        "on it without involving its submitting laboratory; the open terms apply as well."
    ),
}


@dataclass(frozen=True)
class Terms:
    """A record's terms: ``open``, or ``restricted`` until ``until``."""

    kind: str = OPEN
    until: date | None = None

    def on(self, day: date) -> str:
        """Restricted terms end by themselves on their date."""
        if self.kind == RESTRICTED and self.until is not None and day < self.until:
            return RESTRICTED
        return OPEN


def check_terms(kind: str, until: date | None, today: date) -> Terms:
    """Terms as a submitter asks for them, checked: a restriction ends within a year."""
    if kind == OPEN:
        if until is not None:
            raise InvalidInput("open terms take no date: leave restricted_until out")
        return Terms()
    if kind != RESTRICTED:
        raise InvalidInput(f"data-use terms {kind!r} are unknown: choose open or restricted")
    if until is None:
        raise InvalidInput("restricted terms need restricted_until, a date within a year")
    if until <= today:
        raise InvalidInput(
            f"restricted_until {until.isoformat()} is not after today ({today.isoformat()}): "
            "choose a later date, or open terms"
        )
    latest = today + MAX_RESTRICTION
    if until > latest:
        raise InvalidInput(
            f"restricted_until {until.isoformat()} is more than a year ahead: choose a date "
            f"up to {latest.isoformat()}"
        )
    return Terms(RESTRICTED, until)


def terms_of(entry: PathogenEntry) -> Terms:
    return Terms(entry.data_use_terms, entry.restricted_until)


def accept(session: Session, subject: str, kind: str) -> PathogenTermsAcceptance:
    """Record that ``subject`` accepts the ``kind`` terms in their current version."""
    if kind not in TEXTS:
        raise InvalidInput(f"there are no {kind!r} terms: accept open or restricted")
    row = session.get(PathogenTermsAcceptance, (subject, kind))
    if row is None:
        row = PathogenTermsAcceptance(subject=subject, terms=kind, terms_version=TERMS_VERSION)
        session.add(row)
    row.terms_version = TERMS_VERSION
    session.flush()
    return row


def accepted(session: Session, subject: str) -> set[str]:
    """The terms ``subject`` accepted in their current version."""
    rows = session.scalars(
        select(PathogenTermsAcceptance).where(
            PathogenTermsAcceptance.subject == subject,
            PathogenTermsAcceptance.terms_version == TERMS_VERSION,
        )
    )
    return {row.terms for row in rows}


def check_download(
    session: Session, subject: str, entries: Iterable[PathogenEntry], today: date
) -> None:
    """Refuse (403) unless ``subject`` accepted the terms every entry needs on ``today``."""
    held = accepted(session, subject)
    if OPEN not in held:
        raise NotAllowed(
            f"{subject} has not accepted the node's pathogen data-use terms: read them at "
            "GET /pathogen/terms and accept with POST /pathogen/terms/accept "
            "('genofed pathogen terms accept')"
        )
    restricted = [e for e in entries if terms_of(e).on(today) == RESTRICTED]
    if restricted and RESTRICTED not in held:
        named = ", ".join(f"{e.accession}.{e.version}" for e in restricted[:5])
        raise NotAllowed(
            f"{named} {'is' if len(restricted) == 1 else 'are'} under restricted use: accept "
            "the restricted-use terms first ('genofed pathogen terms accept --restricted'), "
            "or leave these records out"
        )
