"""``genofed federation request`` and ``genofed federation status``: one access request, at the
hub, for datasets held by several nodes, and where every part of it stands.

The hub sends each node its part (:mod:`genofed.federation.access_routing`); each node's DAC
decides on its own datasets. ``genofed access request`` still talks to one node directly. The
token is the requester's own, from their node (``--token``, ``GENOFED_TOKEN``, or the stored
login of ``--node``): every member accepts it, knowing the requester as ``user@<their node>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer

from genofed.cli.access import (
    CountryOption,
    DescriptionOption,
    DiseaseOption,
    InstitutionOption,
    ModifierOption,
    ProjectOption,
)
from genofed.cli.common import err_console, fail, say
from genofed.cli.federation import HubOption, hub_url, print_table
from genofed.cli.remote import NodeOption, TokenOption, bearer_token, node_url

app = typer.Typer(
    help="Request access at the hub to datasets of several nodes, and follow the requests.",
    no_args_is_help=True,
)


@app.command("request")
def request(
    datasets: list[str] = typer.Argument(..., help="Accessions of the datasets, of any nodes."),
    title: str = typer.Option(..., "--title", help="Your project's title."),
    permission: str = typer.Option(
        ..., "--permission", help="Your research as a DUO permission: GRU, HMB, DS, POA, NRES."
    ),
    disease: list[str] | None = DiseaseOption,
    modifier: list[str] | None = ModifierOption,
    days: int = typer.Option(..., "--days", min=1, help="How many days of access you need."),
    country: str | None = CountryOption,
    institution: str | None = InstitutionOption,
    project: str | None = ProjectOption,
    description: str | None = DescriptionOption,
    hub: str | None = HubOption,
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Request DATASETS for one purpose: the hub sends each node its part, for its DAC.

    Prints each part's request id on stdout (node, request id); exits 1 when a part could not
    be sent (the parts sent stay: do not send them again).
    """
    given = {
        "permission": permission,
        "diseases": list(disease or []) or None,
        "modifiers": list(modifier or []) or None,
        "country": country,
        "institution": institution,
        "project": project,
        "description": description,
    }
    body = {
        "datasets": datasets,
        "title": title,
        "purpose": {key: value for key, value in given.items() if value is not None},
        "duration_days": days,
    }
    answer = _call("POST", hub_url(hub), _token(node, token), body)
    if answer.status_code not in (201, 207):
        raise fail(f"the hub answered {answer.status_code}: {_detail(answer)}")
    parts = answer.json()["parts"]
    for part in parts:
        _show_part(part)
    if answer.status_code == 207:
        failed = [part["node"]["country"] for part in parts if part["status"] != "submitted"]
        raise fail(
            f"the parts for {', '.join(failed)} were not sent; the others were: request only "
            "the missing datasets again"
        )


@app.command("status")
def status(
    hub: str | None = HubOption,
    node: str | None = NodeOption,
    token: str | None = TokenOption,
    json_output: bool = typer.Option(False, "--json", help="Print the hub's JSON answer."),
) -> None:
    """Your requests at every node, newest first: each dataset's status and its DAC's word."""
    answer = _call("GET", hub_url(hub), _token(node, token))
    if answer.status_code != 200:
        raise fail(f"the hub answered {answer.status_code}: {_detail(answer)}")
    found = answer.json()
    if json_output:
        typer.echo(json.dumps(found, indent=2))
        return
    header = ["node", "request", "item", "dataset", "status", "comment"]
    print_table(header, status_rows(found["requests"]))
    for line in found["nodes"]:
        if line["status"] != "answered":
            say(f"{line['name']} ({line['country']}) {line['status']}: {line.get('reason', '')}")


def status_rows(requests: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            found["node"]["country"],
            str(found["id"]),
            str(item["id"]),
            item["dataset"],
            item["status"],
            item.get("comment") or "",
        ]
        for found in requests
        for item in found["items"]
    ]


def _show_part(part: dict[str, Any]) -> None:
    where = f"{part['node']['name']} ({part['node']['country']})"
    if part["status"] != "submitted":
        say(f"{where}: not sent ({part['status']}): {part.get('detail')}")
        return
    created = part["request"]
    typer.echo(f"{part['node']['country']}\t{created['id']}")
    say(f"{where}: request {created['id']} for {', '.join(part['datasets'])} sent to its DAC")
    for item in created["items"]:
        for mismatch in item["mismatches"]:
            err_console.print(
                f"[yellow]DUO check[/] {item['dataset']}: {mismatch}", highlight=False
            )


def _call(method: str, hub: str, token: str, body: Any = None) -> Any:
    import httpx

    try:
        return httpx.request(
            method,
            f"{hub}/access/requests",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.HTTPError as error:
        raise fail(f"the hub at {hub} cannot be reached ({type(error).__name__})") from None


def _token(node: str | None, token: str | None) -> str:
    """The requester's token: given, or the stored login of their node."""
    if token:
        return token
    return bearer_token(node_url(node), None)


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text[:200])
    return str(body.get("detail")) if isinstance(body, dict) else str(body)[:200]
