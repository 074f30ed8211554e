"""Federated allele frequencies: computed at each node through its privacy guard, combined at
the hub from what the nodes disclosed only. BE and NL are public, FI controlled; every node's
dataset is the 20-person cohort (sexes female, male, female, unknown in turn; one population).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from network_support import VARIANT, Network, federation, grant
from sqlalchemy import select
from typer.testing import CliRunner

from genofed import db
from genofed.beacon.stats import Cell, secondary_suppression
from genofed.cli.stats import app as stats_app

LEVELS = {"BE": "public", "NL": "public", "FI": "controlled"}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with federation(tmp_path_factory.mktemp("stats"), LEVELS) as built:
        yield built


def _stats(url: str, variant: dict[str, Any], headers: Any = None) -> httpx.Response:
    return httpx.post(f"{url}/stats/allele_frequency", json=variant, headers=headers, timeout=30)


def _counts(cell: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        cell[name]
        for name in ("individuals", "carriers", "alleleCount", "alleleNumber", "alleleFrequency")
    )


def _by_label(cells: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {cell["label"]: _counts(cell) for cell in cells}


def _node(body: dict[str, Any], country: str) -> dict[str, Any]:
    [found] = [node for node in body["nodes"] if node["node"]["country"] == country]
    return found


def test_small_cells_are_suppressed_and_totals_add_what_was_disclosed(network: Network) -> None:
    answer = _stats(network.hub_url, VARIANT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    statuses = {node["country"]: node["status"] for node in body["info"]["nodes"]}
    assert statuses == {"BE": "answered", "NL": "answered", "FI": "refused"}

    [be] = _node(body, "BE")["datasets"]
    # 12 carriers, 6 of them homozygous (>= 5: the allele count may be shown), AN 40
    assert _counts(be["total"]) == (20, 12, 18, 40, 0.45)
    assert _by_label(be["bySex"]) == {
        "female": (10, 6, None, 20, None),  # AC unknown per sex: some, not all, homozygous
        "male": (5, None, None, 10, None),  # 3 carriers: below 5
        "unknown": (5, None, None, 10, None),
    }
    assert _by_label(be["byPopulation"]) == {"European": (20, 12, None, 40, None)}
    [nl] = _node(body, "NL")["datasets"]
    assert _counts(nl["total"]) == (20, 8, None, 40, None)  # nobody homozygous: AC withheld
    assert all(cell["carriers"] is None for cell in nl["bySex"])  # 4, 2 and 2 carriers

    total = body["federation"]["total"]
    assert (total["carriers"], total["individuals"], total["carrierFrequency"]) == (20, 40, 0.5)
    assert (total["alleleCount"], total["alleleFrequency"]) == (18, 0.45)  # BE's cell only
    assert (total["cells"], total["of"]) == (2, 2)
    female = _by_label(body["federation"]["bySex"])["female"]
    assert female[:2] == (20, 6)  # NL's 4 female carriers are not in the sum
    [cell] = [c for c in body["federation"]["bySex"] if c["label"] == "female"]
    assert cell["carrierFrequency"] == 0.6  # 6 of BE's 10: NL's cell had no carrier count
    assert "lower bounds" in body["federation"]["note"]


def test_no_genotype_or_sample_leaves_a_node(network: Network) -> None:
    text = _stats(network.hub_url, VARIANT).text
    engine = db.make_engine(network.nodes["BE"].settings.database_url)
    with db.session_scope(engine) as session:
        samples = list(
            session.scalars(
                select(db.MetadataObject.accession).where(
                    db.MetadataObject.kind == db.ObjectKind.SAMPLE
                )
            )
        )
    engine.dispose()
    assert samples and not any(str(sample) in text for sample in samples)
    assert not re.search(r"EPI-\d\d|[01][/|][01]", text)


def test_readers_get_exact_cells_and_controlled_data_answers_yes_or_no(
    network: Network,
) -> None:
    nl = network.nodes["NL"]
    grant(nl.settings, network.subject("BE", "alice"), nl.dataset)
    answer = _stats(network.hub_url, VARIANT, network.nodes["BE"].bearer("alice"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [nl_stats] = _node(body, "NL")["datasets"]
    assert _counts(nl_stats["total"]) == (20, 8, 8, 40, 0.2)  # a reader: AC too
    assert _by_label(nl_stats["bySex"]) == {
        "female": (10, 4, 4, 20, 0.2),  # nobody homozygous: AC = carriers, exactly
        "male": (5, 2, 2, 10, 0.2),
        "unknown": (5, 2, 2, 10, 0.2),
    }
    [fi] = _node(body, "FI")["datasets"]  # controlled, no visa: yes/no only
    assert (fi["exists"], fi["total"]["carriers"], fi["bySex"]) == (False, None, [])
    assert body["federation"]["total"]["carriers"] == 12 + 8


def test_a_small_cell_among_large_ones_hides_another(network: Network) -> None:
    """BE's chr1:3001 AT>A: 5 female, 5 male, 1 unknown carriers. Hiding the unknown cell
    alone would give it away (11 - 5 - 5), so the smaller of the others is hidden too."""
    deletion = {**VARIANT, "start": 3000, "referenceBases": "AT", "alternateBases": "A"}
    body = _stats(network.hub_url, deletion).json()
    [be] = _node(body, "BE")["datasets"]
    assert be["total"]["carriers"] == 11
    shown = {cell["label"]: cell["carriers"] for cell in be["bySex"]}
    assert shown == {"female": 5, "male": None, "unknown": None}
    assert {cell["label"]: cell["individuals"] for cell in be["bySex"]} == {
        "female": 10,
        "male": None,  # hidden with its carriers
        "unknown": 5,
    }


def test_secondary_suppression() -> None:
    def cells(*carriers: int | None) -> list[Cell]:
        return [Cell(str(i), 10, count) for i, count in enumerate(carriers)]

    def carriers(shown: list[Cell]) -> list[int | None]:
        return [cell.carriers for cell in shown]

    people = [10, 10, 10]
    assert carriers(secondary_suppression(cells(6, 7, 8), people, [6, 7, 8], 5)) == [6, 7, 8]
    hidden_one = secondary_suppression(cells(6, 7, None), people, [6, 7, 2], 5)
    assert carriers(hidden_one) == [None, 7, None]  # 2 + 6 >= 5: no further
    hidden_zero = secondary_suppression(cells(9, None, None), people, [9, 0, 0], 5)
    assert carriers(hidden_zero) == [None, None, None]  # "0 among the others" is a count too
    together = secondary_suppression(cells(9, None, None), people, [9, 3, 3], 5)
    assert carriers(together) == [9, None, None]  # 6 hidden together: no single cell follows


def test_the_command_prints_the_federation_and_each_node(network: Network) -> None:
    runner = CliRunner()
    done = runner.invoke(
        stats_app, ["allele-frequency", "--variant", "chr1-1001-A-G", "--hub", network.hub_url]
    )
    assert done.exit_code == 0, done.output
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert lines[0][:4] == ["scope", "group", "individuals", "carriers"]
    assert lines[1][:8] == ["federation", "all", "40", "20", "0.5", "18", "80", "0.45"]
    assert any(line[0].startswith("BE ") and line[3] == "12" for line in lines)
    as_json = runner.invoke(
        stats_app,
        ["allele-frequency", "--variant", "1:1001:A:G", "--hub", network.hub_url, "--json"],
    )
    assert json.loads(as_json.stdout)["federation"]["total"]["carriers"] == 20
    wrong = runner.invoke(stats_app, ["allele-frequency", "--variant", "1-x-A-G", "--hub", "x"])
    assert wrong.exit_code == 1 and "CHROM-POS-REF-ALT" in wrong.output
