"""The portal's pathogen pages in a real browser (Debian's chromium driven by Playwright).

The flow: a submitter sends a batch whose sheet has a bad date and reads the report by row and
field, sends it fixed, and follows it; processing (the real aligner) runs; a curator approves
what may be released; a researcher freezes records as a snapshot set, accepts the terms and
downloads it; the mutation page draws its charts with plotly.js from the node's LAPIS, and the
points drawn are the API's counts, as are the clade chart's bars for every country chosen.
Every new page is then checked as the other pages are (skip link and main action by keyboard,
labels, contrast, a tablet's width) and photographed, at laptop and tablet size, into the
folder ``test_browser`` prints.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from portal_support import ALICE, BOB, CORA
from sqlalchemy import select
from test_browser import (
    LOW_CONTRAST,
    TABLET,
    UNLABELLED,
    Served,
    expect,
    new_page,
    serve,
    sign_in,
    tab_to_main_action,
)

from genofed import db
from genofed.db.models import PathogenEntry, PathogenState
from genofed.pathogen import curation, snapshots, submissions
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.processing import process_pending
from genofed.pathogen.synthetic import LINEAGES, SyntheticSample, outbreak, write_submission

pytestmark = pytest.mark.slow
LAPIS = "/pathogen/lapis/sars-cov-2"


def outbreaks(seed: int) -> list[SyntheticSample]:
    """Genomes from three countries over a year, lineages succeeding each other."""
    organism = load_organism("sars-cov-2")
    return [
        sample
        for country, count in (("BE", 5), ("FI", 4), ("SE", 3))
        for sample in outbreak(organism, country, count, seed=seed)
    ]


def with_bad_date(sheet: Path, row: int) -> Path:
    """A copy of ``sheet`` whose ``row`` (the header is row 1) has a date that is none."""
    lines = sheet.read_text().splitlines()
    header = lines[0].split("\t")
    cells = lines[row - 1].split("\t")
    cells[header.index("collection_date")] = "2021-02-30"
    lines[row - 1] = "\t".join(cells)
    bad = sheet.with_name("metadata-with-a-bad-date.tsv")
    bad.write_text("\n".join(lines) + "\n")
    return bad


def processed(served: Served) -> int:
    engine = db.make_engine(served.settings.database_url)
    try:
        return process_pending(engine, workers=1)
    finally:
        engine.dispose()


def lapis(base: str, path: str, **params: str) -> list[dict[str, Any]]:
    """The data of a LAPIS answer of the node or hub at ``base``."""
    answer = httpx.get(f"{base}{LAPIS}{path}", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def varying_mutation(base: str) -> str:
    """The amino-acid mutation carried by the most genomes, but not by all of them."""
    total = lapis(base, "/sample/aggregated")[0]["count"]
    found = lapis(base, "/sample/aminoAcidMutations", minProportion="0.05")
    varying = [row for row in found if row["count"] < total]
    return str(max(varying, key=lambda row: (row["count"], row["mutation"]))["mutation"])


# -- the flow -----------------------------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path / "node")


def test_submit_curate_cite_download_and_chart(
    browser: Any, node: Served, shots: Path, tmp_path: Path
) -> None:
    fasta, sheet = write_submission(outbreaks(seed=3), tmp_path / "batch")
    alice = sign_in(browser, node, ALICE)
    menu = alice.get_by_role("navigation", name="Main")
    menu.get_by_role("link", name="Submit sequences").click()
    alice.get_by_label("Genomes (FASTA)").set_input_files(str(fasta))
    alice.get_by_label("Metadata sheet (TSV or CSV)").set_input_files(str(with_bad_date(sheet, 4)))
    alice.get_by_role("button", name="Send the batch").click()
    report = alice.get_by_role("region", name="Problems by file, row and field")
    expect(report.locator("tbody tr")).to_have_count(1)
    expect(report).to_contain_text("metadata-with-a-bad-date.tsv")
    expect(report).to_contain_text("collection_date")
    expect(report).to_contain_text("2021-02-30")
    alice.screenshot(path=shots / "pathogen-submit-report-laptop.png", full_page=True)

    alice.get_by_label("Genomes (FASTA)").set_input_files(str(fasta))
    alice.get_by_label("Metadata sheet (TSV or CSV)").set_input_files(str(sheet))
    alice.get_by_role("button", name="Send the batch").click()
    expect(alice.get_by_role("status")).to_contain_text("12 sequences stored")
    entries = alice.get_by_role("region", name="Entries of the batch").locator("tbody tr")
    expect(entries).to_have_count(12)
    assert processed(node) == 12
    alice.reload()
    expect(entries.filter(has_text="processed")).to_have_count(12)
    alice.screenshot(path=shots / "pathogen-batch-laptop.png", full_page=True)

    cora = sign_in(browser, node, CORA)
    cora.goto(f"{node.url}/portal/pathogen/curation")
    queue = cora.locator("article.curation-entry")
    expect(queue).to_have_count(12)
    expect(queue.first).to_contain_text("Substitutions")
    cora.screenshot(path=shots / "pathogen-curation-laptop.png", full_page=True)
    releasable = queue.filter(has=cora.get_by_role("button", name="Approve and release"))
    approvals = releasable.count()
    assert approvals >= 10  # synthetic genomes: at most a dropout-heavy one held back
    for _ in range(approvals):
        releasable.first.get_by_role("button", name="Approve and release").click()
        expect(cora.get_by_role("status").first).to_contain_text("approved and released")
    expect(queue).to_have_count(12 - approvals)

    bob = sign_in(browser, node, BOB)
    bob.goto(f"{node.url}/portal/pathogen/records")
    expect(bob.get_by_role("status")).to_contain_text(f"{approvals} records")
    records = bob.get_by_role("region", name="Released records").locator("tbody tr")
    chosen = [records.nth(index).locator("a").inner_text() for index in range(3)]
    for name in chosen:
        bob.get_by_label(f"Choose {name}").check()
    bob.get_by_label("Title of the snapshot set (e.g. your paper's)").fill("Three genomes")
    bob.get_by_role("button", name="Create a snapshot set of the chosen records").click()
    expect(bob.get_by_role("status").first).to_contain_text("cite it in your paper")
    thanks = bob.get_by_role("region", name="Acknowledgements of the set").locator("tbody tr")
    expect(thanks).to_have_count(3)
    bob.get_by_role("button", name="I accept the data-use terms").click()
    with bob.expect_download() as downloading:
        bob.get_by_role("button", name="Download sequences and acknowledgements (zip)").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(downloading.value.path()).read_bytes()))
    fasta_out = archive.read("sequences.fasta").decode()
    assert sorted(line[1:] for line in fasta_out.splitlines() if line.startswith(">")) == sorted(
        chosen
    )
    bob.screenshot(path=shots / "pathogen-snapshot-laptop.png", full_page=True)

    mutation = varying_mutation(node.url)
    problems: list[str] = []
    bob.on("pageerror", lambda error: problems.append(str(error)))
    bob.goto(f"{node.url}/portal/pathogen/mutations")
    bob.get_by_label("Mutation", exact=True).fill(mutation)
    bob.get_by_role("button", name="Show").click()
    expect(bob.locator("#mutation-charts")).to_have_attribute("data-drawn", "true")
    check_charts_match_the_api(bob, node.url, mutation)
    check_clade_chart_matches_the_api(bob, node.url)
    assert problems == []
    bob.screenshot(path=shots / "pathogen-mutations-laptop.png", full_page=True)


def check_charts_match_the_api(page: Any, base: str, mutation: str) -> None:
    """The bars are the API's carriers per country, the lines its proportions over time: in
    plotly's data and as drawn SVG marks."""
    carriers = {
        row["country"]: row["count"]
        for row in lapis(base, "/sample/aggregated", fields="country", variantQuery=mutation)
        if row["count"]
    }
    bars = page.evaluate("(() => { const d = document.getElementById('chart-country').data[0];"
                         " return [d.x, d.y]; })()")  # fmt: skip
    assert dict(zip(*bars, strict=True)) == carriers
    assert page.locator("#chart-country .barlayer .point").count() == len(carriers)
    over_time = [
        row
        for row in lapis(
            base,
            "/sample/mutationsOverTime",
            mutations=mutation,
            binning="month",
            groupBy="country",
        )
        if row["proportion"] is not None
    ]
    drawn = page.evaluate(
        "(() => document.getElementById('chart-time').data.flatMap((trace) =>"
        " trace.x.map((x, i) => [trace.name, x, trace.y[i], trace.customdata[i][0]])))()"
    )
    expected = [
        [row["country"], row["dateFrom"], row["proportion"], row["count"]] for row in over_time
    ]
    assert sorted(map(tuple, drawn)) == sorted(map(tuple, expected))
    assert page.locator("#chart-time .scatterlayer .point").count() == len(over_time)
    expect(page.locator("#table-country tbody tr")).to_have_count(len(carriers))  # the text
    expect(page.locator("#table-time tbody tr")).to_have_count(len(over_time))


def check_clade_chart_matches_the_api(page: Any, base: str) -> None:
    """For all countries and then each one chosen, the stacked bars are the API's genomes per
    clade and month (with the month's total), and the clades are those the genomes were made of."""
    rows = lapis(base, "/sample/aggregated", fields="clade,collectionMonth,country")
    countries = sorted({row["country"] for row in rows if row["country"]})
    assert countries, "no genome has a country"
    for country in ["", *countries]:
        page.locator("#clades-country").select_option(country)
        expect(page.locator("#clade-charts")).to_have_attribute("data-shown", country or "all")
        expected: Counter[tuple[str, str]] = Counter()
        for row in rows:
            if row["collectionMonth"] and country in ("", row["country"]):
                expected[(row["clade"] or "unassigned", row["collectionMonth"])] += row["count"]
        totals: Counter[str] = Counter()
        for (_, month), count in expected.items():
            totals[month] += count
        drawn = page.evaluate(
            "(() => document.getElementById('chart-clades').data.flatMap((trace) =>"
            " trace.x.map((x, i) => [trace.customdata[i][2], x, trace.customdata[i][0],"
            " trace.customdata[i][1], trace.y[i]])))()"
        )
        assert {(name, month): count for name, month, count, _, _ in drawn} == expected
        for _, month, count, total, share in drawn:
            assert total == totals[month] and share == pytest.approx(count / total)
        assert {name for name, *_ in drawn} <= set(LINEAGES)  # every genome has its clade
        legend = page.evaluate("document.getElementById('chart-clades').data.map((t) => t.name)")
        labels = {clade.name: clade.label for clade in load_organism("sars-cov-2").clades}
        named = {f"{c} ({labels[c]})" if labels.get(c) else c for c, *_ in drawn}
        assert set(legend) == named  # "20I (Alpha)": the common names beside Nextstrain's
        bars = page.locator("#chart-clades .barlayer .point")
        expect(bars).to_have_count(len(expected))
        expect(page.locator("#table-clades tbody tr")).to_have_count(len(expected))
    page.locator("#clades-country").select_option("")  # back to the whole picture
    expect(page.locator("#clade-charts")).to_have_attribute("data-shown", "all")


# -- every pathogen page ------------------------------------------------------------------------


def release_batch(
    settings: Any, folder: Path, batch: list[SyntheticSample], hold_back: int = 0
) -> tuple[str, list[str]]:
    """``batch`` submitted by ALICE, processed, and released by CORA but for ``hold_back``
    genomes left in the queue; the submission's id and every releasable accession.version
    (released first)."""
    fasta, sheet = write_submission(batch, folder)
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            sent = submissions.submit_batch(
                session,
                country=settings.country,
                submitter=ALICE,
                organism=load_organism("sars-cov-2"),
                fasta=fasta,
                sheet=sheet,
            )
        process_pending(engine, workers=1)
        with db.session_scope(db.for_writing(engine)) as session:
            waiting = session.scalars(
                select(PathogenEntry).where(
                    PathogenEntry.state == PathogenState.PROCESSED,
                    PathogenEntry.outcome != "errors",
                )
            ).all()
            names = [f"{entry.accession}.{entry.version}" for entry in waiting]
            for name in names[: len(names) - hold_back]:
                curation.approve(session, name, CORA)
    finally:
        engine.dispose()
    return str(sent.submission_id), names


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    """A node with a processed batch, most of it released, and a snapshot set; the paths of
    the pages that show them."""
    folder = tmp_path_factory.mktemp("pathogen-pages")
    for served in serve(folder / "node"):
        batch, names = release_batch(served.settings, folder / "batch", outbreaks(5), 3)
        engine = db.make_engine(served.settings.database_url)
        try:
            with db.session_scope(db.for_writing(engine)) as session:
                cited = snapshots.create_snapshot(session, "BE", BOB, "Winter wave", names[:4])
                identifier = cited.identifier
        finally:
            engine.dispose()
        paths = {
            "batch": f"/portal/pathogen/batches/{batch}",
            "record": f"/portal/pathogen/records/{names[0]}",
            "acknowledgements": "/portal/pathogen/acknowledgements?accessions="
            + ",".join(names[:2]),
            "snapshot": f"/portal/pathogen/snapshots/{identifier}",
        }
        yield served, paths


PAGES = [
    ("pathogen-submit", ALICE, "/portal/pathogen/submit"),
    ("pathogen-batch", ALICE, "batch"),
    ("pathogen-curation", CORA, "/portal/pathogen/curation"),
    ("pathogen-records", BOB, "/portal/pathogen/records"),
    ("pathogen-record", BOB, "record"),
    ("pathogen-acknowledgements", BOB, "acknowledgements"),
    ("pathogen-snapshot", BOB, "snapshot"),
    ("pathogen-mutations", BOB, "/portal/pathogen/mutations?mutation=S:N501Y"),
]


@pytest.mark.parametrize(("name", "user", "path"), PAGES, ids=[name for name, _, _ in PAGES])
def test_every_pathogen_page_works_by_keyboard_is_labelled_legible_and_fits_a_tablet(
    browser: Any,
    stocked: tuple[Served, dict[str, str]],
    shots: Path,
    name: str,
    user: str,
    path: str,
) -> None:
    served, paths = stocked
    page = new_page(browser, served, user)
    answer = page.goto(f"{served.url}{paths.get(path, path)}")
    assert answer is not None and answer.status == 200
    if name == "pathogen-mutations":
        expect(page.locator("#mutation-charts")).to_have_attribute("data-drawn", "true")
        expect(page.locator("#clade-charts")).to_have_attribute("data-drawn", "true")
    page.screenshot(path=shots / f"{name}-laptop.png", full_page=True)
    assert page.locator("h1").count() == 1
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []
    tab_to_main_action(page)
    page.set_viewport_size(TABLET)
    page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=shots / f"{name}-tablet.png", full_page=True)
    page.context.close()
