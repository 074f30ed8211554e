"""``genofed pathogen organism add --clades``: an operator's clade tree, checked, kept with the
organism and used when its genomes are analysed."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from genofed import db
from genofed.access.tokens import issue_token
from genofed.cli.main import app as cli
from genofed.cli.pathogen import PathogenClient
from genofed.config import Settings, load_settings
from genofed.node.app import create_app
from genofed.node.directory import init_node
from genofed.pathogen.analysis import analyse
from genofed.pathogen.registry import get_organism

NODE = "http://127.0.0.1:9"  # never contacted: the client is the test client
DATA = resources.files("genofed.pathogen") / "data"
HA = (DATA / "flu-h3n2-ha.fasta").read_text("ascii").split("\n", 1)[1].replace("\n", "")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    made = init_node(tmp_path / "node", name="Test node", country="BE")
    return load_settings(made.config_file, embedded_workers=False)


@pytest.fixture
def http(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        monkeypatch.setattr(
            PathogenClient, "connect", classmethod(lambda cls, url, token: cls(client, token))
        )
        monkeypatch.setattr(PathogenClient, "close", lambda self: None)
        yield client


def _mutation(site: int) -> str:
    ref = HA[site - 1]
    return f"{ref}{site}{'A' if ref != 'A' else 'G'}"


def _add(settings: Settings, tmp_path: Path, name: str, clades: str) -> object:
    reference, annotation = tmp_path / "ha.fasta", tmp_path / "ha.gff3"
    reference.write_bytes((DATA / "flu-h3n2-ha.fasta").read_bytes())
    annotation.write_bytes((DATA / "flu-h3n2-ha.gff3").read_bytes())
    tree = tmp_path / f"{name}.tsv"
    tree.write_text(clades)
    token = issue_token(settings, "op", ["operator"])
    return CliRunner().invoke(
        cli,
        [
            "pathogen", "organism", "add", name,
            "--reference", str(reference), "--annotation", str(annotation),
            "--earliest-date", "1968-01-01", "--clades", str(tree), "--node", NODE,
        ],
        env={"GENOFED_TOKEN": token},
    )  # fmt: skip


def test_operators_clades_are_checked_kept_and_assigned(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    first, second = _mutation(300), _mutation(900)
    tree = f"clade\tparent\tlabel\tmutations\nroot\t\t\t\nh3-a\troot\tA\t{first} {second}\n"
    added = _add(settings, tmp_path, "h3-clades", tree)
    assert added.exit_code == 0, added.output  # type: ignore[attr-defined]
    assert "2 clades" in added.stderr  # type: ignore[attr-defined]
    listed = http.get("/pathogen/organisms").json()["organisms"]
    assert {o["name"]: o["clades"] for o in listed}["h3-clades"] == ["root", "h3-a"]

    engine = http.app.state.node.engine  # type: ignore[attr-defined]
    with db.session_scope(engine) as session:
        organism = get_organism(session, "h3-clades")
    edited = list(HA)
    for mutation in (first, second):
        edited[int(mutation[1:-1]) - 1] = mutation[-1]
    assert analyse(organism, "".join(edited)).clade == "h3-a"
    assert analyse(organism, HA).clade == "root"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("root\t\t\t\nb\tnowhere\t\t{m}\n", "unknown parent nowhere"),
        ("root\t\t\t\nb\troot\t\tC5\n", "is not a nucleotide mutation"),
        ("root\t\t\t\nb\tc\t\t{m}\nc\tb\t\t{m}\n", "form a cycle"),
    ],
)
def test_a_broken_clade_tree_is_refused_with_the_reason(
    http: TestClient, settings: Settings, tmp_path: Path, rows: str, message: str
) -> None:
    text = "clade\tparent\tlabel\tmutations\n" + rows.format(m=_mutation(300))
    refused = _add(settings, tmp_path, "h3-broken", text)
    assert refused.exit_code == 1  # type: ignore[attr-defined]
    assert message in refused.stderr  # type: ignore[attr-defined]
    names = [o["name"] for o in http.get("/pathogen/organisms").json()["organisms"]]
    assert "h3-broken" not in names
