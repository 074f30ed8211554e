"""The portal of the demo federation, in a real browser: ``genofed demo`` is started as a user
starts it (a hub and three nodes, each its own process), plays its story and serves; then
people use its portals with the passwords the demo prints.

At the hub, anyone searches the catalogue and asks the beacon network. At the Belgian node, the
researcher applies for the Belgian dataset, the Belgian DAC member approves, and the
researcher's "my data" shows the download command. At the Swedish node, a lab submits a batch
of genomes through the upload page and the curator releases it from the curation queue; the
genomes replicate to the hub, whose mutation chart then draws Sweden beside Belgium and
Finland, the points being the hub's counts. Ctrl-C stops the federation cleanly. Screenshots
go where the other browser tests put theirs (the folder is printed).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hub_support import VARIANT
from test_browser import LAPTOP, expect
from test_browser_pathogen import check_charts_match_the_api, lapis, varying_mutation

from genofed.demo.processes import GENOFED
from genofed.demo.story import ORGANISM, PASSWORD
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.synthetic import outbreak, write_submission

# One demo for the module: xdist keeps the group on one worker (make test: --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]
STORY_TIMEOUT_S = 900.0  # the story takes 2-3 minutes; a loaded CI machine, longer
SERVING = "serving until Ctrl-C"


@dataclass(frozen=True)
class Demo:
    hub: str
    nodes: dict[str, str]  # country → URL
    log: Path


def _urls(log: str) -> tuple[str, dict[str, str]]:
    hub = re.search(r"^hub: (http://127\.0\.0\.1:\d+)", log, re.MULTILINE)
    nodes = dict(
        re.findall(
            r"^(Belgian|Finnish|Swedish) node: portal (http://127\.0\.0\.1:\d+)/portal",
            log,
            re.MULTILINE,
        )
    )
    assert hub and len(nodes) == 3, log[-3000:]
    names = {"Belgian": "BE", "Finnish": "FI", "Swedish": "SE"}
    return hub.group(1), {names[name]: url for name, url in nodes.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo")
    log = folder / "demo.log"
    environment = {**os.environ, "COLUMNS": "300"}  # one line per URL, as rich would wrap
    with log.open("w") as out:
        started = subprocess.Popen(
            [str(GENOFED), "demo", "--workdir", str(folder / "federation"), "--size-mib", "0.5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + STORY_TIMEOUT_S
        while SERVING not in log.read_text():
            assert started.poll() is None, f"the demo stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the demo's story did not end in time"
            time.sleep(1)
        hub, nodes = _urls(log.read_text())
        yield Demo(hub, nodes, log)
    finally:
        started.send_signal(signal.SIGINT)
        try:
            started.wait(60)
        except subprocess.TimeoutExpired:
            started.kill()
            raise
    assert started.returncode == 0, log.read_text()[-3000:]
    assert "stopping the federation" in log.read_text()


def sign_in(browser: Any, url: str, user: str) -> Any:
    """A fresh browser context signed in at ``url``'s portal through its form."""
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.goto(f"{url}/portal/login")
    page.get_by_label("User name", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")
    return page


def test_the_hub_searches_and_asks_every_node(browser: Any, demo: Demo, shots: Path) -> None:
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.goto(f"{demo.hub}/portal/catalogue?q=epilepsy")
    results = page.get_by_role("region", name="Datasets found").locator("tbody tr")
    expect(results).to_have_count(3)
    for name, country in (("Belgian", "BE"), ("Finnish", "FI"), ("Swedish", "SE")):
        expect(page.get_by_role("link", name=f"{name} node's portal")).to_have_attribute(
            "href", f"{demo.nodes[country]}/portal/"
        )
    page.goto(f"{demo.hub}/portal/beacon?{urlencode(VARIANT)}")
    answers = page.get_by_role("region", name="Answers per node").locator("tbody tr")
    expect(answers).to_have_count(3)
    page.screenshot(path=shots / "demo-hub-beacon-laptop.png", full_page=True)
    page.context.close()


def test_apply_approve_and_the_download_command(browser: Any, demo: Demo, shots: Path) -> None:
    be = demo.nodes["BE"]
    [dataset] = [
        found["accession"]
        for found in httpx.get(f"{demo.hub}/catalogue/search", timeout=10).json()["results"]
        if found["node"]["country"] == "BE"
    ]
    bob = sign_in(browser, be, "bob")
    bob.goto(f"{be}/portal/requests/new")
    bob.get_by_label(re.compile(dataset)).check()
    bob.get_by_label("Project title").fill("Epilepsy variants at home")
    bob.get_by_label("Research purpose (DUO)").select_option("HMB")
    bob.get_by_label(re.compile("^NPU: ")).check()
    bob.get_by_label("Country where the data is used").fill("BE")
    bob.get_by_label("What you will do with the data").fill(
        "Compare rare variants of early-onset epilepsy across the cohort, not for profit."
    )
    bob.get_by_role("button", name="Send the application").click()
    expect(bob.get_by_role("status")).to_contain_text("is sent")

    member = sign_in(browser, be, "dac-be")
    member.goto(f"{be}/portal/dac")
    item = member.get_by_role("article").filter(has_text="Epilepsy variants at home")
    item.get_by_label("Comment for the requester").fill("Approved.")
    item.get_by_role("button", name=re.compile(r"^Approve item")).click()
    expect(member.get_by_role("status")).to_contain_text("approved")

    bob.goto(f"{be}/portal/data")
    expect(bob.get_by_label("Download command")).to_have_value(
        re.compile(rf"^genofed download {dataset} --key YOUR\.sec --node ")
    )
    bob.screenshot(path=shots / "demo-be-my-data-laptop.png", full_page=True)
    bob.context.close()
    member.context.close()


def test_a_lab_shares_genomes_that_the_hub_then_charts(
    browser: Any, demo: Demo, tmp_path: Path, shots: Path
) -> None:
    se = demo.nodes["SE"]
    before = lapis(demo.hub, "/sample/aggregated")[0]["count"]
    batch = outbreak(load_organism(ORGANISM), "SE", 8, seed=42)
    fasta, sheet = write_submission(batch, tmp_path)
    lab = sign_in(browser, se, "alice-se")
    lab.goto(f"{se}/portal/pathogen/submit")
    lab.get_by_label("Genomes (FASTA)").set_input_files(str(fasta))
    lab.get_by_label("Metadata sheet (TSV or CSV)").set_input_files(str(sheet))
    lab.get_by_role("button", name="Send the batch").click()
    expect(lab.get_by_role("status")).to_contain_text("8 sequences stored")
    entries = lab.get_by_role("region", name="Entries of the batch").locator("tbody tr")
    deadline = time.monotonic() + 120
    while entries.filter(has_text="processed").count() < 8:  # the node's own processing
        assert time.monotonic() < deadline, "the Swedish node did not process the batch"
        time.sleep(1)
        lab.reload()

    curator = sign_in(browser, se, "curator-se")
    curator.goto(f"{se}/portal/pathogen/curation")
    queue = curator.locator("article.curation-entry")
    deadline = time.monotonic() + 30
    while queue.count() < len(batch):
        main = curator.locator("main").inner_text()
        assert time.monotonic() < deadline, f"the curation queue shows:\n{main[:2000]}"
        time.sleep(1)
        curator.reload()
    releasable = queue.filter(has=curator.get_by_role("button", name="Approve and release"))
    released = releasable.count()
    assert released >= 6
    curator.screenshot(path=shots / "demo-se-curation-laptop.png", full_page=True)
    for _ in range(released):
        releasable.first.get_by_role("button", name="Approve and release").click()
        expect(curator.get_by_role("status").first).to_contain_text("approved and released")

    deadline = time.monotonic() + 120
    while lapis(demo.hub, "/sample/aggregated")[0]["count"] < before + released:
        assert time.monotonic() < deadline, "the hub did not receive the Swedish genomes"
        time.sleep(1)
    mutation = varying_mutation(demo.hub)
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.goto(f"{demo.hub}/portal/pathogen/mutations?{urlencode({'mutation': mutation})}")
    expect(page.locator("#mutation-charts")).to_have_attribute("data-drawn", "true")
    check_charts_match_the_api(page, demo.hub, mutation)
    countries = {row["country"] for row in lapis(demo.hub, "/sample/aggregated", fields="country")}
    assert countries == {"Belgium", "Finland", "Sweden"}
    page.screenshot(path=shots / "demo-hub-mutations-laptop.png", full_page=True)
    for context in (lab.context, curator.context, page.context):
        context.close()
