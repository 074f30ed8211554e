"""A node with the portal mounted, its catalogue, and users of every role, for the portal tests.

The catalogue is the DAC workflow's (``tests/access/dac_support``): datasets EPI, HMB and OPEN
released under two committees (JANE sits on UZL-DAC, which decides EPI and HMB; MARC on
ULB-DAC, which decides OPEN), and DRAFT not released. ALICE submitted them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from genofed import db
from genofed.access import users
from genofed.access.tokens import issue_token
from genofed.config import Settings, load_settings
from genofed.node.app import create_app
from genofed.node.directory import init_node
from genofed.web import router as portal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "access"))

from dac_support import (
    BOB,
    FITS_EPI,
    JANE,
    MARC,
    OPS,
    Catalogue,
    build_catalogue,
)
from metadata_support import SUBMITTER as ALICE

CAROL = "carol@kuleuven.be"  # another researcher
CORA = "cora@sciensano.be"  # a pathogen curator
SCREENSHOTS_ENV = "GENOFED_SCREENSHOTS"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by .ci/run; Playwright never downloads
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery"
ROLES = {
    BOB: ("requester",),
    CAROL: ("requester",),
    JANE: ("dac_member",),
    MARC: ("dac_member",),
    OPS: ("operator",),
    ALICE: ("submitter",),
    CORA: ("curator",),
}

__all__ = [
    "ALICE",
    "BOB",
    "CAROL",
    "CORA",
    "FITS_EPI",
    "JANE",
    "MARC",
    "OPS",
    "PASSWORD",
    "ROLES",
    "Catalogue",
    "add_users",
    "build_catalogue",
    "make_node",
    "portal_app",
    "screenshot_folder",
    "token",
]


def make_node(folder: Path) -> Settings:
    """A fresh node directory (database migrated, keys made); pipeline workers off."""
    made = init_node(folder, name="Test node", country="BE")
    return load_settings(made.config_file, embedded_workers=False)


def portal_app(settings: Settings) -> FastAPI:
    """The node app with the portal, mounted here until the node app includes it itself."""
    app = create_app(settings)
    if not any(_is_portal(route) for route in app.routes):
        app.include_router(portal)
    return app


def _is_portal(route: object) -> bool:
    """Whether ``route`` is the portal's router as FastAPI includes it, or one of its pages."""
    return getattr(route, "original_router", None) is portal or str(
        getattr(route, "path", "")
    ).startswith("/portal")


def add_users(engine: Engine) -> None:
    """Embedded users for every role, all with :data:`PASSWORD` (password sign-in)."""
    with db.session_scope(db.for_writing(engine)) as session:
        for name, roles in ROLES.items():
            users.add_user(session, name, PASSWORD, roles)


def token(settings: Settings, user: str) -> str:
    """A session token for ``user`` with their roles, as signing in would give."""
    return issue_token(settings, user, list(ROLES[user]))


def screenshot_folder() -> Path:
    """Where the browser tests save a screenshot of every page: ``test-artifacts/portal`` in the
    checkout (ignored by git), or the folder ``GENOFED_SCREENSHOTS`` names."""
    default = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"
    return Path(os.environ.get(SCREENSHOTS_ENV) or default)
