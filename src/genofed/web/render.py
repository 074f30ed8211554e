"""Rendering the portal's pages: one Jinja2 environment, the role-based menu, security headers.

Autoescaping is on for every template: whatever a user typed (a request's title, a sheet's
cell, a DAC's comment) is shown as text, never interpreted as HTML. Pages carry a strict
Content-Security-Policy (scripts and styles from the portal itself only, no inline script), so
even a missed escape could not run code; and ``Cache-Control: no-store``, because pages show
personal data that must not stay in a shared browser's cache.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from genofed.access.tokens import Identity
from genofed.web.place import on_hub

PREFIX = "/portal"
TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION_COOKIE = "genofed_portal"  # the bearer token (JWT) of the signed-in user
FLASH_COOKIE = "genofed_portal_flash"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

ROLE_LABELS = {
    "requester": "Researcher",
    "dac_member": "Data Access Committee member",
    "submitter": "Data submitter",
    "operator": "Node operator",
    "curator": "Pathogen curator",
}


@dataclass(frozen=True)
class MenuEntry:
    """A page in the menu, for the roles that may open it (the handler checks again)."""

    label: str
    path: str
    roles: frozenset[str]
    summary: str
    on_hub: bool = False  # the hub serves it too, to anyone: it shows public data only


EVERYONE = frozenset({"requester", "dac_member", "submitter", "operator", "curator"})
MENU = (
    MenuEntry(
        "Catalogue",
        "/catalogue",
        EVERYONE,
        "Search the datasets of every node of the federation.",
        on_hub=True,
    ),
    MenuEntry(
        "Beacon",
        "/beacon",
        EVERYONE,
        "Ask every node whether a variant is seen; each node's privacy guard decides the answer.",
        on_hub=True,
    ),
    MenuEntry(
        "Apply for access",
        "/requests/new",
        frozenset({"requester"}),
        "Ask a Data Access Committee for datasets, stating your purpose.",
    ),
    MenuEntry(
        "My requests",
        "/requests",
        frozenset({"requester"}),
        "Where each of your applications stands, and what the committee said.",
    ),
    MenuEntry(
        "My data",
        "/data",
        frozenset({"requester"}),
        "The datasets you may download, until when, and the command to do it.",
    ),
    MenuEntry(
        "DAC inbox",
        "/dac",
        frozenset({"dac_member"}),
        "Requests waiting for your committee: approve, reject or ask for changes.",
    ),
    MenuEntry(
        "Grants",
        "/grants",
        frozenset({"dac_member", "operator"}),
        "Access granted by your committees, and revocation.",
    ),
    MenuEntry(
        "My files",
        "/files",
        frozenset({"submitter"}),
        "Your uploaded files: where each is in the pipeline, and why one stopped.",
    ),
    MenuEntry(
        "Metadata",
        "/metadata",
        frozenset({"submitter", "operator"}),
        "Upload metadata sheets; every problem is shown by sheet, row and column.",
    ),
    MenuEntry(
        "Datasets",
        "/datasets",
        frozenset({"submitter", "operator"}),
        "Your datasets: their files, and releasing a complete draft.",
    ),
    MenuEntry(
        "Pipeline",
        "/pipeline",
        frozenset({"operator"}),
        "Files per state, queue depths and the error queue with reasons.",
    ),
    MenuEntry(
        "Audit log",
        "/audit",
        frozenset({"operator"}),
        "Every access decision, with the hash chain's verification.",
    ),
    MenuEntry(
        "Submit sequences",
        "/pathogen/submit",
        frozenset({"submitter", "operator"}),
        "Send a batch of pathogen genomes with their metadata sheet; see each row's problems.",
    ),
    MenuEntry(
        "Curation",
        "/pathogen/curation",
        frozenset({"curator", "operator"}),
        "Processed genomes with their quality and mutations: approve or reject.",
    ),
    MenuEntry(
        "Pathogen records",
        "/pathogen/records",
        EVERYONE,
        "Released genomes: acknowledgements, citable snapshot sets and their download.",
    ),
    MenuEntry(
        "Mutation trends",
        "/pathogen/mutations",
        EVERYONE,
        "How often a mutation is seen, over time and by country, in charts.",
        on_hub=True,
    ),
)


def menu_for(identity: Identity | None, hub: bool = False) -> list[MenuEntry]:
    """The entries the identity's roles open (none before signing in); on the hub, its pages of
    public data, for anyone."""
    if hub:
        return [entry for entry in MENU if entry.on_hub]
    if identity is None:
        return []
    return [entry for entry in MENU if entry.roles & identity.roles]


def when(moment: datetime | None) -> str:
    """A moment as every page shows it: UTC, to the minute (a ``<time>`` gives the exact one)."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def words(value: object) -> str:
    """An enum value for people: ``changes_requested`` → ``changes requested``."""
    return str(getattr(value, "value", value)).replace("_", " ")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.filters["words"] = words
    env.globals["prefix"] = PREFIX
    env.globals["role_labels"] = ROLE_LABELS
    return env


ENVIRONMENT = _environment()


@dataclass(frozen=True)
class Flash:
    """A one-line outcome shown once on the next page (after a form's redirect)."""

    kind: str  # "ok" or "error"
    text: str


def page(
    request: Request,
    template: str,
    *,
    identity: Identity | None,
    csrf: str = "",
    title: str,
    status: int = 200,
    context: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    """``template`` rendered inside the base layout, with the menu the identity's roles open."""
    flash = read_flash(request)
    hub = on_hub(request)
    html = ENVIRONMENT.get_template(template).render(
        {
            "identity": identity,
            "menu": menu_for(identity, hub),
            "on_hub": hub,
            "current": request.url.path,
            "csrf": csrf,
            "title": title,
            "node_name": request.app.state.settings.node_name,
            "flash": flash,
            **(context or {}),
        }
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


def redirect(request: Request, path: str, flash: Flash | None = None) -> RedirectResponse:
    """See Other to a portal page (after a form: reloading it does not post again), carrying
    ``flash`` for that page in a short-lived cookie."""
    response = RedirectResponse(PREFIX + path, status_code=303, headers=SECURITY_HEADERS)
    if flash is not None:
        encoded = base64.urlsafe_b64encode(f"{flash.kind}:{flash.text[:500]}".encode()).decode()
        response.set_cookie(
            FLASH_COOKIE,
            encoded,
            max_age=60,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
        )
    return response


def secure_cookies(request: Request) -> bool:
    """Cookies only over HTTPS when the node's public URL is HTTPS (behind a TLS proxy the
    request itself may arrive as plain HTTP)."""
    return str(request.app.state.settings.http.public_url).startswith("https://")


def read_flash(request: Request) -> Flash | None:
    """The flash the previous response left, if any (base64, since messages are UTF-8)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, text = decoded.partition(":")
    return Flash("error" if kind == "error" else "ok", text[:500])
