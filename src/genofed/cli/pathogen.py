"""``genofed pathogen``: submit viral genomes to a node, follow and curate them, accept the
data-use terms, download with acknowledgements, cite snapshot sets.

Talks to the node's ``/pathogen`` routes with the caller's login (``--node``, ``--token``).
Data (accessions, tables, FASTA) goes to stdout; progress, summaries and errors to stderr.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from genofed import __version__
from genofed.cli.common import byte_progress, err_console, fail, say
from genofed.cli.remote import NodeOption, TokenOption, bearer_token, node_url
from genofed.errors import GenofedError

if TYPE_CHECKING:
    import httpx

app = typer.Typer(help="Share viral genomes: submit, curate, download, cite.", no_args_is_help=True)
organism_app = typer.Typer(help="The organisms a node accepts.", no_args_is_help=True)
curate_app = typer.Typer(help="Review processed entries (curators).", no_args_is_help=True)
terms_app = typer.Typer(help="The node's data-use terms.", no_args_is_help=True)
snapshot_app = typer.Typer(help="Citable snapshot sets of records.", no_args_is_help=True)
app.add_typer(organism_app, name="organism")
app.add_typer(curate_app, name="curate")
app.add_typer(terms_app, name="terms")
app.add_typer(snapshot_app, name="snapshot")

POLL_SECONDS = 1.0
SequencesArgument = typer.Argument(
    ..., exists=True, dir_okay=False, readable=True, help="FASTA file (also .gz, .xz or .zst)."
)
MetadataArgument = typer.Argument(
    ...,
    exists=True,
    dir_okay=False,
    readable=True,
    help="Metadata sheet, TSV or CSV (also compressed), one row per sequence.",
)
FromFileOption = typer.Option(
    None, exists=True, dir_okay=False, help="A file of accession.versions, one per line."
)
AccessionsArgument = typer.Argument(
    None, help="accession.versions, e.g. GFBEV000000000370.1 (or accessions: the newest)."
)


class PathogenClientError(GenofedError):
    """The node refused a request, or did not answer; the message has its reason."""


class PathogenClient:
    """The node's /pathogen routes over an httpx client (a real one, or a test client)."""

    def __init__(self, http: httpx.Client, token: str | None) -> None:
        self._http = http
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    def connect(cls, url: str, token: str | None) -> PathogenClient:
        import httpx

        timeout = httpx.Timeout(30.0, read=600.0)  # a large batch is validated before the answer
        headers = {"User-Agent": f"genofed/{__version__}"}
        return cls(httpx.Client(base_url=url, timeout=timeout, headers=headers), token)

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, doing: str, *, ok: tuple[int, ...] = (), **options: Any
    ) -> httpx.Response:
        """The response; a refusal (other than the ``ok`` statuses) is a one-line error."""
        import httpx

        try:
            response = self._http.request(method, path, headers=self._auth, **options)
        except httpx.TransportError as error:
            raise PathogenClientError(
                f"{doing}: no answer from the node ({type(error).__name__}); check the URL and "
                "your network"
            ) from None
        if not response.is_success and response.status_code not in ok:
            try:
                detail = str(response.json()["detail"])
            except (ValueError, KeyError, TypeError):
                detail = response.text[:200] or response.reason_phrase
            raise PathogenClientError(
                f"{doing}: the node answered {response.status_code}: {detail}"
            )
        return response

    def json(self, method: str, path: str, doing: str, **options: Any) -> Any:
        return self.request(method, path, doing, **options).json()


@contextmanager
def _client(
    node: str | None, token: str | None, *, anonymous: bool = False
) -> Iterator[PathogenClient]:
    url = node_url(node)
    chosen = token if anonymous else bearer_token(url, token)
    client = PathogenClient.connect(url, chosen)
    try:
        yield client
    except GenofedError as error:
        raise fail(str(error)) from None
    finally:
        client.close()


def _names(accessions: list[str], from_file: Path | None) -> list[str]:
    """Accessions from the command line and from a file (one a line, '#' comments)."""
    names = list(accessions)
    if from_file is not None:
        lines = from_file.read_text().splitlines()
        names += [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
    if not names:
        raise fail("name at least one accession (or give --from-file with one a line)")
    return names


# -- organisms ----------------------------------------------------------------------------------


@organism_app.command("list")
def organism_list(node: str | None = NodeOption) -> None:
    """The organisms the node accepts, and the metadata each needs."""
    with _client(node, None, anonymous=True) as client:
        organisms = client.json("GET", "/pathogen/organisms", "listing organisms")["organisms"]
    table = Table("organism", "reference", "length", "genes", "required metadata")
    for o in organisms:
        table.add_row(
            o["name"],
            o["reference"],
            str(o["length"]),
            " ".join(o["genes"]),
            ", ".join(o["required"]),
        )
    err_console.print(table)
    for o in organisms:
        typer.echo(o["name"])


@organism_app.command("add")
def organism_add(
    name: str = typer.Argument(..., help="The organism's name, e.g. mpox-clade-ib."),
    reference: Path = typer.Option(..., exists=True, dir_okay=False, help="Reference FASTA."),
    annotation: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="Gene annotation, GFF3."
    ),
    earliest_date: str = typer.Option(..., help="Earliest plausible collection date, YYYY-MM-DD."),
    clades: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Clade tree, TSV: clade, parent, label, mutations (e.g. C241T A21765-).",
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Add an organism from a reference FASTA and a GFF3, and its clades (node operators)."""
    files = {
        "reference": (reference.name, reference.read_bytes()),
        "annotation": (annotation.name, annotation.read_bytes()),
    }
    if clades is not None:
        files["clades"] = (clades.name, clades.read_bytes())
    with _client(node, token) as client:
        added = client.json(
            "POST",
            "/pathogen/organisms",
            f"adding {name}",
            data={"name": name, "earliest_date": earliest_date},
            files=files,
        )
    tree = f", {len(added['clades'])} clades" if added.get("clades") else ""
    say(f"added {added['name']}: {added['length']} nt, genes {', '.join(added['genes'])}{tree}")


# -- submissions --------------------------------------------------------------------------------


@app.command()
def submit(
    sequences: Path = SequencesArgument,
    metadata: Path = MetadataArgument,
    organism: str = typer.Option(..., "--organism", help="e.g. sars-cov-2"),
    accept_valid: bool = typer.Option(
        False, "--accept-valid", help="Store the valid sequences when some rows have problems."
    ),
    restricted_until: str | None = typer.Option(
        None, help="Restricted use until this date (at most a year ahead); default: open."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Follow processing until every sequence is processed."
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Submit SEQUENCES (FASTA) with METADATA (TSV/CSV sheet joined on sequence_id).

    Prints 'sequence_id<TAB>accession.version' per stored sequence on stdout; problems, with
    their row and field, and a summary on stderr.
    """
    form = {"organism": organism, "accept_valid": str(accept_valid).lower()}
    if restricted_until:
        form |= {"data_use_terms": "restricted", "restricted_until": restricted_until}
    with _client(node, token) as client:
        with _uploading(sequences) as fasta, _uploading(metadata) as sheet:
            response = client.request(
                "POST",
                "/pathogen/submissions",
                "submitting the batch",
                ok=(422,),
                data=form,
                files={"sequences": (sequences.name, fasta), "metadata": (metadata.name, sheet)},
            )
        body = response.json()
        _show_problems(body["problems"])
        for sequence_id, accession in body["accessions"].items():
            typer.echo(f"{sequence_id}\t{accession}")
        if response.status_code == 422:
            raise fail(
                f"nothing was stored: {len(body['problems'])} problem(s); fix them and submit "
                "again, or add --accept-valid to store the valid sequences"
            )
        if body["problems"]:
            say(f"{len(body['problems'])} sequence(s) left out: fix them and submit them again")
        say(
            f"batch {body['submission_id']}: {len(body['accessions'])} sequences stored as received"
        )
        if wait:
            _follow(client, body["submission_id"], len(body["accessions"]))


@contextmanager
def _uploading(path: Path) -> Iterator[IO[bytes]]:
    """The file, with a byte progress bar while it is sent (on a terminal)."""
    with path.open("rb") as source, byte_progress(transient=True) as progress:
        task = progress.add_task(f"sending {path.name}", total=path.stat().st_size)
        yield cast(IO[bytes], _Counted(source, lambda n: progress.advance(task, n)))


class _Counted(io.RawIOBase):
    """A file read through, telling how many bytes went by."""

    def __init__(self, source: IO[bytes], advance: Any) -> None:
        self._source, self._advance = source, advance

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._advance(len(data))
        return data


def _show_problems(problems: list[dict[str, Any]]) -> None:
    """One line per problem: where (file, row, record, field), what, and the fix."""
    for problem in problems:
        say(f"problem: {problem['message']}")


def _follow(client: PathogenClient, submission_id: str, total: int) -> None:
    """A bar of processed entries until all are, then the batch's summary."""
    columns = (TextColumn("processing"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=err_console, transient=True, disable=not err_console.is_terminal
    ) as bar:
        task = bar.add_task("processing", total=total)
        while True:
            status = client.json(
                "GET", f"/pathogen/submissions/{submission_id}", "following the batch"
            )
            waiting = sum(n for k, n in status["counts"].items() if k in ("received", "processing"))
            bar.update(task, completed=total - waiting)
            if not waiting:
                break
            time.sleep(POLL_SECONDS)
    _summary(status)


def _summary(status: dict[str, Any]) -> None:
    table = Table(
        "state", "entries", title=f"batch {status['submission_id']} ({status['organism']})"
    )
    for key, count in sorted(status["counts"].items()):
        table.add_row(key.replace(":", " / "), str(count))
    err_console.print(table)


@app.command()
def status(
    reference: str = typer.Argument(..., help="A batch id, or a record's accession[.version]."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Where a batch (its entries, counted by state) or a record (its history) stands."""
    with _client(node, token) as client:
        if reference.upper().startswith("GF"):
            view = client.json("GET", f"/pathogen/records/{reference}", "reading the record")
            say(
                f"{view['accession_version']} {view['virus_name']}: {view['state']}"
                f"{' (' + view['outcome'] + ')' if view['outcome'] else ''}"
            )
            for event in view.get("history", []):
                typer.echo(
                    f"{event['at']}\t{event['state']}\t{event['actor']}\t{event['detail'] or ''}"
                )
            return
        found = client.json("GET", f"/pathogen/submissions/{reference}", "reading the batch")
    _summary(found)
    for entry in found["entries"]:
        state = entry["state"] + (f":{entry['outcome']}" if entry["outcome"] else "")
        typer.echo(f"{entry['sequence_id']}\t{entry['accession']}.{entry['version']}\t{state}")


@app.command()
def revise(
    accession: str = typer.Argument(..., help="The released record to correct."),
    sequences: Path = SequencesArgument,
    metadata: Path = MetadataArgument,
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Resubmit a released record (one sequence, one row): it becomes its next version."""
    with (
        _client(node, token) as client,
        sequences.open("rb") as fasta,
        metadata.open("rb") as sheet,
    ):
        response = client.request(
            "POST",
            f"/pathogen/records/{accession}/revise",
            f"revising {accession}",
            ok=(422,),
            files={"sequences": (sequences.name, fasta), "metadata": (metadata.name, sheet)},
        )
    body = response.json()
    _show_problems(body["problems"])
    if response.status_code == 422:
        raise fail(body["detail"])
    for name in body["accessions"].values():
        typer.echo(name)


@app.command()
def revoke(
    accession: str,
    reason: str = typer.Option(..., help="Why, in a few words: it is kept with the record."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Withdraw a released record (its submitter or a curator); it stays, flagged revoked."""
    with _client(node, token) as client:
        view = client.json(
            "POST", f"/pathogen/records/{accession}/revoke", "revoking", json={"reason": reason}
        )
    say(f"{view['accession_version']} revoked")


# -- curation -----------------------------------------------------------------------------------


@curate_app.command("list")
def curate_list(
    organism: str | None = typer.Option(None, help="Only this organism's entries."),
    outcome: str | None = typer.Option(None, help="ok, warnings or errors"),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Processed entries awaiting a decision: accession, outcome, QC, mutations."""
    params = {k: v for k, v in {"organism": organism, "outcome": outcome}.items() if v}
    with _client(node, token) as client:
        entries = client.json("GET", "/pathogen/curation", "reading the queue", params=params)[
            "entries"
        ]
    for e in entries:
        analysis = e.get("analysis") or {}
        qc = (e.get("qc") or {}).get("status", "-")
        mutations = " ".join(analysis.get("aa_substitutions", [])[:12])
        found = e["error"] or mutations
        typer.echo(f"{e['accession_version']}\t{e['virus_name']}\t{e['outcome']}\t{qc}\t{found}")
    say(f"{len(entries)} entries await a decision")


@curate_app.command("approve")
def curate_approve(
    accessions: list[str] = AccessionsArgument,
    from_file: Path | None = FromFileOption,
    release: bool = typer.Option(True, "--release/--no-release", help="Release at once."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Approve processed entries (and release them, by default)."""
    with _client(node, token) as client:
        for name in _names(accessions or [], from_file):
            view = client.json(
                "POST",
                f"/pathogen/records/{name}/approve",
                f"approving {name}",
                json={"release": release},
            )
            typer.echo(f"{view['accession_version']}\t{view['state']}")


@curate_app.command("reject")
def curate_reject(
    accession: str,
    reason: str = typer.Option(..., help="What the submitter must fix."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Turn down a processed entry, saying why."""
    with _client(node, token) as client:
        view = client.json(
            "POST", f"/pathogen/records/{accession}/reject", "rejecting", json={"reason": reason}
        )
    typer.echo(f"{view['accession_version']}\t{view['state']}")


# -- terms, downloads, snapshot sets ------------------------------------------------------------


@terms_app.command("accept")
def terms_accept(
    restricted: bool = typer.Option(
        False, "--restricted", help="Accept the restricted-use terms too."
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Show the node's data-use terms and accept them."""
    kind = "restricted" if restricted else "open"
    with _client(node, token) as client:
        texts = client.json("GET", "/pathogen/terms", "reading the terms")["terms"]
        for name in ("open", "restricted") if restricted else ("open",):
            say(f"{name} terms: {texts[name]}")
        done = client.json(
            "POST", "/pathogen/terms/accept", "accepting the terms", json={"terms": kind}
        )
    say(f"{done['subject']} accepted: {', '.join(done['accepted'])} (version {done['version']})")


@app.command()
def download(
    accessions: list[str] = typer.Argument(None, help="accession.versions (or accessions)."),
    from_file: Path | None = FromFileOption,
    out: Path = typer.Option(
        Path("."), "--out", help="Folder for sequences.fasta and acknowledgements.tsv."
    ),
    aligned: bool = typer.Option(False, help="In the reference's coordinates."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Download released sequences with their acknowledgement table (needs the terms accepted)."""
    names = _names(accessions or [], from_file)
    with _client(node, token) as client:
        response = client.request(
            "POST",
            "/pathogen/download",
            "downloading",
            json={"accessions": names, "aligned": aligned},
        )
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        for member in ("sequences.fasta", "acknowledgements.tsv"):
            (out / member).write_bytes(archive.read(member))
            typer.echo(out / member)
    say(f"{len(names)} sequences; credit the labs listed in {out / 'acknowledgements.tsv'}")


@snapshot_app.command("create")
def snapshot_create(
    accessions: list[str] = AccessionsArgument,
    title: str = typer.Option(..., help="What the set is for, e.g. the paper's title."),
    from_file: Path | None = FromFileOption,
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Freeze released versions under a citable identifier (printed on stdout)."""
    names = _names(accessions or [], from_file)
    with _client(node, token) as client:
        made = client.json(
            "POST",
            "/pathogen/snapshots",
            "creating the set",
            json={"title": title, "accessions": names},
        )
    typer.echo(made["identifier"])
    say(f"{made['size']} records; cite {made['identifier']}")


@snapshot_app.command("show")
def snapshot_show(
    identifier: str,
    form: str = typer.Option("tsv", "--format", help="tsv or csv (acknowledgements), or json."),
    node: str | None = NodeOption,
) -> None:
    """A snapshot set: its acknowledgement table (or the whole set as JSON) on stdout."""
    if form not in ("tsv", "csv", "json"):
        raise fail(f"--format {form!r}: choose tsv, csv or json")
    with _client(node, None, anonymous=True) as client:
        response = client.request(
            "GET", f"/pathogen/snapshots/{identifier}", "reading the set", params={"format": form}
        )
    typer.echo(response.text, nl=False)
