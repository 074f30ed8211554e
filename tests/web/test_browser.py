"""The portal in a real browser: Debian's chromium, driven by Playwright, against a served node.

``.ci/run`` installs the ``chromium`` package; Playwright (PyPI) drives it with the browser of
the system, never one it downloads. Without either, these tests skip saying which is missing.

The flow: a researcher signs in and applies, a committee member approves, the researcher's "my
data" shows the download command (the copy button copies it), and the operator's audit page
shows the chain intact. Every page is then checked for what a keyboard and a screen reader
need (skip link first, the main action reachable with Tab, a label on every field), for text
contrast, and for fitting a tablet's width. A screenshot of each page, at laptop and tablet
size, is saved in ``test-artifacts/portal`` (or ``GENOFED_SCREENSHOTS``); the folder is printed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from portal_support import (
    ALICE,
    BOB,
    CAROL,
    CHROMIUM,
    FITS_EPI,
    JANE,
    MARC,
    OPS,
    PASSWORD,
    Catalogue,
    add_users,
    build_catalogue,
    make_node,
    portal_app,
    token,
)
from sqlalchemy import Engine

from genofed import db
from genofed.access import requests as access
from genofed.config import Settings
from genofed.node.server import serving
from genofed.web.render import SESSION_COOKIE

LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}

if shutil.which(str(CHROMIUM)) is None:
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
)
Browser = sync_api.Browser
Page = sync_api.Page
expect = sync_api.expect

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Served:
    """A running node with the portal: its URL, settings and catalogue."""

    url: str
    settings: Settings
    catalogue: Catalogue


def serve(folder: Path, prepare: bool = False) -> Iterator[Served]:
    """A node in ``folder`` with users and the catalogue (and, if ``prepare``, requests and a
    grant, so that every page has something to show), served on 127.0.0.1."""
    settings = make_node(folder)
    engine = db.make_engine(settings.database_url)
    try:
        add_users(engine)
        catalogue = build_catalogue(engine)
        if prepare:
            prepare_pages(engine, settings, catalogue)
    finally:
        engine.dispose()
    with serving(portal_app(settings)) as url:
        yield Served(url, settings, catalogue)


def prepare_pages(engine: Engine, settings: Settings, catalogue: Catalogue) -> None:
    """CAROL waits for both committees; BOB holds a grant on OPEN; a file stopped in error."""
    with db.session_scope(db.for_writing(engine)) as session:
        waiting = {"permission": "DS", "diseases": FITS_EPI["diseases"], "modifiers": ["IRB"]}
        access.apply(
            session,
            settings.country,
            CAROL,
            [catalogue.epi, catalogue.open],
            title="Seizure onset genetics",
            purpose=waiting | {"description": "Which variants shift the age of onset."},
            duration_days=365,
        )
        granted = access.apply(
            session,
            settings.country,
            BOB,
            [catalogue.open],
            title="Reference panel calibration",
            purpose={"permission": "GRU"},
            duration_days=90,
        )
        access.approve(session, MARC, granted.items[0].id)
        session.add(
            db.ArchiveFile(
                submitter=ALICE,
                inbox_path=f"{ALICE}/sample7.bam.c4gh",
                state=db.FileState.ERROR,
                error="the file is not encrypted for this node's key: encrypt it again",
            )
        )


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path / "node")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("portal") / "node", prepare=True)


def new_page(browser: Any, served: Served, user: str | None = None) -> Any:
    """A page in a fresh context (own cookies), signed in as ``user`` without the form."""
    context = browser.new_context(viewport=LAPTOP)
    if user is not None:
        context.add_cookies(
            [
                {
                    "name": SESSION_COOKIE,
                    "value": token(served.settings, user),
                    "domain": "127.0.0.1",
                    "path": "/portal",
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )
    return context.new_page()


def sign_in(browser: Any, served: Served, user: str, shots: Path | None = None) -> Any:
    """A fresh context signed in through the sign-in form, as a person would."""
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.goto(f"{served.url}/portal/")
    expect(page).to_have_url(re.compile(r"/portal/login\?next=/portal/$"))
    if shots is not None:
        page.screenshot(path=shots / "login-laptop.png", full_page=True)
    page.get_by_label("User name", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")
    return page


# -- the flow -----------------------------------------------------------------------------------


def test_apply_approve_download_command_and_audit(browser: Any, node: Served, shots: Path) -> None:
    epi = node.catalogue.epi
    bob = sign_in(browser, node, BOB, shots)
    bob.screenshot(path=shots / "home-requester-laptop.png", full_page=True)
    bob.get_by_role("navigation", name="Main").get_by_role("link", name="Apply for access").click()
    bob.get_by_label(re.compile(f"Epilepsy genomes {epi}")).check()
    bob.get_by_label("Project title").fill("Early-onset epilepsy genetics")
    bob.get_by_label("Research purpose (DUO)").select_option("DS")
    bob.get_by_label("Diseases studied (for DS)").fill(FITS_EPI["diseases"][0])
    for code in ("IRB", "PUB", "NPU"):
        bob.get_by_label(re.compile(f"^{code}: ")).check()
    bob.get_by_label("Country where the data is used").fill("BE")
    bob.get_by_label("What you will do with the data").fill(FITS_EPI["description"])
    bob.screenshot(path=shots / "apply-filled-laptop.png", full_page=True)
    bob.get_by_role("button", name="Send the application").click()
    expect(bob.get_by_role("status")).to_contain_text("is sent")
    expect(bob.locator("main")).to_contain_text("submitted")

    jane = sign_in(browser, node, JANE)
    jane.goto(f"{node.url}/portal/dac")
    item = jane.get_by_role("article").filter(has_text="Early-onset epilepsy genetics")
    expect(item).to_contain_text("the purpose fits the policy")
    expect(item).to_contain_text(BOB)
    jane.screenshot(path=shots / "dac-inbox-pending-laptop.png", full_page=True)
    item.get_by_label("Comment for the requester").fill("Approved for the epilepsy project.")
    item.get_by_role("button", name=re.compile(r"^Approve item")).click()
    expect(jane.get_by_role("status")).to_contain_text("approved")

    bob.goto(f"{node.url}/portal/data")
    command = f"genofed download {epi} --key YOUR.sec --node {node.settings.http.public_url}"
    field = bob.get_by_label("Download command")
    expect(field).to_have_value(command)
    expect(bob.locator("main")).to_contain_text("Your access ends")
    bob.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=node.url)
    bob.get_by_role("button", name=f"Copy the command for {epi}").click()
    expect(bob.locator("#live")).to_have_text("Command copied.")
    assert bob.evaluate("navigator.clipboard.readText()") == command
    bob.screenshot(path=shots / "my-data-approved-laptop.png", full_page=True)

    ops = sign_in(browser, node, OPS)
    ops.goto(f"{node.url}/portal/audit")
    expect(ops.get_by_role("status")).to_contain_text("Chain intact")
    expect(ops.locator("main table")).to_contain_text("dac.approved")
    ops.screenshot(path=shots / "audit-after-approval-laptop.png", full_page=True)

    bob.get_by_role("button", name="Sign out").click()
    expect(bob.get_by_role("status")).to_have_text("You are signed out.")
    bob.goto(f"{node.url}/portal/data")
    expect(bob).to_have_url(re.compile(r"/portal/login"))


# -- every page ---------------------------------------------------------------------------------

PAGES = [
    ("login", None, "/portal/login"),
    ("home", BOB, "/portal/"),
    ("catalogue", BOB, "/portal/catalogue"),
    ("beacon", BOB, "/portal/beacon"),
    ("apply", BOB, "/portal/requests/new"),
    ("my-requests", BOB, "/portal/requests"),
    ("my-data", BOB, "/portal/data"),
    ("dac-inbox", JANE, "/portal/dac"),
    ("grants", MARC, "/portal/grants"),
    ("files", ALICE, "/portal/files"),
    ("metadata", ALICE, "/portal/metadata"),
    ("datasets", ALICE, "/portal/datasets"),
    ("pipeline", OPS, "/portal/pipeline"),
    ("audit", OPS, "/portal/audit"),
    ("refused", BOB, "/portal/audit"),
]

UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter((field) => field.type !== 'hidden')
  .filter((field) => !(field.labels && field.labels.length) && !field.getAttribute('aria-label'))
  .map((field) => field.name || field.id)"""

# WCAG 2.1 contrast of every visible text against the first opaque background behind it.
LOW_CONTRAST = """() => {
  const parse = (text) => {
    const found = text.match(/rgba?\\(([^)]+)\\)/);
    if (!found) return null;
    const parts = found[1].split(/[\\s,/]+/).filter(Boolean).map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const channel = (value) => {
    const v = value / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const behind = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const colour = parse(getComputedStyle(e).backgroundColor);
      if (colour && colour.a > 0.5) return colour;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const failures = [];
  for (const element of document.querySelectorAll('body *')) {
    const texts = Array.from(element.childNodes).filter((n) => n.nodeType === 3);
    if (!texts.some((n) => n.textContent.trim())) continue;
    if (element.closest('.visually-hidden, .skip-link, script, style, option')) continue;
    const box = element.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    const style = getComputedStyle(element);
    const [a, b] = [luminance(parse(style.color)), luminance(behind(element))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      const text = element.textContent.trim().slice(0, 40);
      failures.push(`${element.tagName} ${ratio.toFixed(2)}: ${text}`);
    }
  }
  return failures;
}"""


def focused(page: Any, attribute: str) -> bool:
    return bool(page.evaluate(f"document.activeElement.hasAttribute('{attribute}')"))


def tab_to_main_action(page: Any, limit: int = 40) -> int:
    """Tab from the top: the skip link comes first and jumps to the content, from where the
    page's main action is reached; returns the Tab presses that took."""
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if focused(page, "data-main-action"):
            return presses
    raise AssertionError(f"the main action of {page.url} is not reached in {limit} Tab presses")


@pytest.mark.parametrize(("name", "user", "path"), PAGES, ids=[name for name, _, _ in PAGES])
def test_every_page_works_by_keyboard_is_labelled_legible_and_fits_a_tablet(
    browser: Any, prepared: Served, shots: Path, name: str, user: str | None, path: str
) -> None:
    page = new_page(browser, prepared, user)
    answer = page.goto(f"{prepared.url}{path}")
    assert answer is not None
    assert answer.status == (403 if name == "refused" else 200)
    page.screenshot(path=shots / f"{name}-laptop.png", full_page=True)
    assert page.locator("h1").count() == 1
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []
    tab_to_main_action(page)
    page.set_viewport_size(TABLET)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} is {overflow}px wider than a tablet"
    page.screenshot(path=shots / f"{name}-tablet.png", full_page=True)
    page.context.close()


def test_focus_is_visible_on_the_main_action(browser: Any, prepared: Served) -> None:
    page = new_page(browser, prepared, JANE)
    page.goto(f"{prepared.url}/portal/dac")
    tab_to_main_action(page)
    ring = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.boxShadow]; })()"
    )
    assert ring[0] == "solid" and ring[1] == "3px" and ring[2] != "none"
    page.context.close()
