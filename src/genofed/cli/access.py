"""``genofed access`` (requesters) and ``genofed dac`` (DAC members, operators): the data access
workflow of a node, over its HTTP API.

Both talk to the node named by ``--node`` with the token of ``--token`` (or the stored login, see
:mod:`genofed.cli.remote`). Listings are drawn as tables on a terminal and printed as
tab-separated lines with a header row otherwise, for scripts; messages go to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genofed.cli.common import err_console, run_guarded, say
from genofed.cli.remote import NodeOption, TokenOption, bearer_token, node_url

if TYPE_CHECKING:
    from genofed.access.client import AccessClient

out_console = Console(soft_wrap=True)

access_app = typer.Typer(
    help="Request access to a node's datasets and follow your requests.",
    no_args_is_help=True,
)
dac_app = typer.Typer(
    help="Decide on access requests as a data access committee (DAC) member; manage grants "
    "and, as an operator, DAC members.",
    no_args_is_help=True,
)
members_app = typer.Typer(
    help="Who sits on a DAC: list (DAC members, operators); add and remove (operators).",
    no_args_is_help=True,
)
dac_app.add_typer(members_app, name="members")

# -- options shared by several commands ---------------------------------------------------------

PERMISSION_HELP = (
    "The research you will do, as a DUO permission: GRU (general research), HMB "
    "(health/medical/biomedical), DS (disease specific: give --disease), POA (population "
    "origins or ancestry) or NRES."
)
PermissionOption = typer.Option(None, "--permission", help=PERMISSION_HELP, show_default=False)
DiseaseOption = typer.Option(
    None,
    "--disease",
    help="For DS: a disease researched, as a CURIE (e.g. MONDO:0005148); repeat for several.",
    show_default=False,
)
ModifierOption = typer.Option(
    None,
    "--modifier",
    help="A condition you accept or a fact about your use, as a DUO modifier: IRB, PUB, NCU, "
    "NPU, COL, RTN, MOR=2027-01-01, GS=<country where you use the data>, IS=<institution>, "
    "PS=<project>; repeat for several.",
    show_default=False,
)
CountryOption = typer.Option(
    None, "--country", help="Where you will use the data (ISO code, e.g. BE), if not in GS=."
)
InstitutionOption = typer.Option(None, "--institution", help="Your institution.")
ProjectOption = typer.Option(None, "--project", help="Your project's name.")
DescriptionOption = typer.Option(
    None, "--description", help="Your research, in a few sentences, for the DAC."
)
ItemArgument = typer.Argument(..., help="The request item's number ('genofed dac list').")


# -- genofed access -----------------------------------------------------------------------------


@access_app.command("request")
def request_access(
    datasets: list[str] = typer.Argument(..., help="The accessions of the datasets you want."),
    title: str = typer.Option(..., "--title", help="Your project's title."),
    permission: str = typer.Option(..., "--permission", help=PERMISSION_HELP),
    disease: list[str] | None = DiseaseOption,
    modifier: list[str] | None = ModifierOption,
    days: int = typer.Option(..., "--days", min=1, help="How many days of access you need."),
    country: str | None = CountryOption,
    institution: str | None = InstitutionOption,
    project: str | None = ProjectOption,
    description: str | None = DescriptionOption,
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Request access to DATASETS for one research purpose; each dataset's DAC decides.

    The node checks your purpose against each dataset's data use conditions at once and tells
    you where it does not fit (the DAC sees that too). Prints the request's id on stdout.
    """
    purpose = _purpose(
        permission, disease, modifier, country, institution, project, description, base={}
    )
    with _client(node, token) as client:
        created = run_guarded(
            lambda: client.request_access(
                datasets, title=title, purpose=purpose, duration_days=days
            )
        )
    typer.echo(created["id"])
    say(f"request {created['id']}: {len(created['items'])} dataset(s) sent to their DACs")
    _warn_mismatches(created["items"])


@access_app.command("status")
def status(
    request: str | None = typer.Argument(
        None, help="One request's id, to see its purpose and history; default: all yours."
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Where your requests stand: each dataset's status and its DAC's comment."""
    with _client(node, token) as client:
        if request is not None:
            one = request
            _show_request(run_guarded(lambda: client.request(one)))
            return
        found = run_guarded(client.my_requests)
    if not found:
        say("you have made no access requests on this node yet")
        return
    rows = [
        [
            str(item["id"]),
            str(found_request["id"]),
            item["dataset"],
            item["status"],
            _expiry(item),
            str(len(item["mismatches"])),
            item["comment"] or "",
            found_request["title"],
        ]
        for found_request in found
        for item in found_request["items"]
    ]
    _print_table(
        ["item", "request", "dataset", "status", "access until", "mismatches", "comment", "title"],
        rows,
    )


@access_app.command("update")
def update(
    request: str = typer.Argument(..., help="The request's id."),
    item: int = typer.Argument(..., help="The item (dataset) the DAC sent back for changes."),
    title: str | None = typer.Option(None, "--title", help="A new title."),
    permission: str | None = PermissionOption,
    disease: list[str] | None = DiseaseOption,
    modifier: list[str] | None = ModifierOption,
    days: int | None = typer.Option(None, "--days", min=1, help="A new duration, in days."),
    country: str | None = CountryOption,
    institution: str | None = InstitutionOption,
    project: str | None = ProjectOption,
    description: str | None = DescriptionOption,
    comment: str | None = typer.Option(None, "--comment", help="What you changed, for the DAC."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Answer a DAC's request for changes and send the item back to it.

    Options given replace those parts of the purpose (--disease and --modifier replace the whole
    list); the rest stays. If the request covers other datasets, the item becomes a request of
    its own (its new id is printed on stdout), so the other DACs' decisions keep their purpose.
    """
    with _client(node, token) as client:
        purpose = None
        if any(
            part is not None
            for part in (permission, disease, modifier, country, institution, project, description)
        ):
            current = run_guarded(lambda: client.request(request))["purpose"]
            purpose = _purpose(
                permission, disease, modifier, country, institution, project, description, current
            )
        updated = run_guarded(
            lambda: client.update_item(
                request, item, title=title, purpose=purpose, duration_days=days, comment=comment
            )
        )
    typer.echo(updated["id"])
    moved = f" (now request {updated['id']})" if updated["id"] != request else ""
    say(f"item {item} sent back to its DAC{moved}")
    _warn_mismatches([found for found in updated["items"] if found["id"] == item])


@access_app.command("withdraw")
def withdraw(
    request: str = typer.Argument(..., help="The request's id."),
    item: int | None = typer.Option(
        None, "--item", help="Withdraw only this item; default: every item not yet decided."
    ),
    comment: str | None = typer.Option(None, "--comment", help="Why, for the DAC."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Withdraw a request (or one of its items) the DACs have not decided on yet."""
    with _client(node, token) as client:
        updated = run_guarded(lambda: client.withdraw(request, item=item, comment=comment))
    withdrawn = [str(found["id"]) for found in updated["items"] if found["status"] == "withdrawn"]
    say(f"request {request}: item(s) {', '.join(withdrawn)} withdrawn")


# -- genofed dac --------------------------------------------------------------------------------


@dac_app.command("list")
def dac_list(
    status_: str | None = typer.Option(
        None,
        "--status",
        help="Only items in this status: submitted (waiting for you), changes_requested, "
        "approved, rejected, revoked, withdrawn.",
    ),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """The request items of the DACs you sit on, oldest first, with DUO mismatches flagged."""
    with _client(node, token) as client:
        queue = run_guarded(lambda: client.dac_queue(status_))
    if not queue["dacs"]:
        say("you sit on no DAC of this node: an operator adds members ('genofed dac members add')")
        return
    rows = [
        [
            str(item["id"]),
            item["dataset"],
            item["dac"],
            item["requester"],
            item["status"],
            str(item["duration_days"]),
            f"{len(item['mismatches'])} mismatch(es)" if item["mismatches"] else "fits",
            item["title"],
        ]
        for item in queue["items"]
    ]
    if not rows:
        say(f"no request items for DAC(s) {', '.join(queue['dacs'])}")
        return
    _print_table(
        ["item", "dataset", "dac", "requester", "status", "days", "DUO check", "title"], rows
    )


@dac_app.command("show")
def dac_show(
    item: int = ItemArgument, node: str | None = NodeOption, token: str | None = TokenOption
) -> None:
    """One request item: the requester, the purpose, the DUO mismatches and the history."""
    with _client(node, token) as client:
        found = run_guarded(lambda: client.dac_item(item))
    _print_fields(
        {
            "item": found["id"],
            "request": found["request_id"],
            "dataset": found["dataset"],
            "dac": found["dac"],
            "requester": found["requester"],
            "title": found["title"],
            "status": found["status"],
            "days requested": found["duration_days"],
            "purpose": _purpose_text(found["purpose"]),
            "comment": found["comment"] or "",
            "grant": _grant_text(found["grant"]),
        }
    )
    _print_mismatches(found["mismatches"])
    _print_events(found["events"])


@dac_app.command("approve")
def approve(
    item: int = ItemArgument,
    days: int | None = typer.Option(
        None, "--days", min=1, help="Grant fewer days than requested; default: as requested."
    ),
    acknowledge_mismatches: bool = typer.Option(
        False,
        "--acknowledge-mismatches",
        help="Approve although the purpose does not fit the dataset's conditions (see "
        "'genofed dac show').",
    ),
    comment: str | None = typer.Option(None, "--comment", help="A word for the requester."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Approve a request item: the requester may read the dataset until the grant expires.

    Prints the grant's id on stdout.
    """
    with _client(node, token) as client:
        decided = run_guarded(
            lambda: client.approve(
                item, days=days, comment=comment, acknowledge_mismatches=acknowledge_mismatches
            )
        )
    grant = decided["grant"]
    typer.echo(grant["id"])
    say(
        f"item {item} approved: {decided['requester']} may read {decided['dataset']} until "
        f"{grant['expires_at'][:10]} (grant {grant['id']})"
    )


@dac_app.command("reject")
def reject(
    item: int = ItemArgument,
    comment: str = typer.Option(..., "--comment", help="Why, for the requester."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Reject a request item; the requester sees your comment."""
    with _client(node, token) as client:
        run_guarded(lambda: client.reject(item, comment=comment))
    say(f"item {item} rejected")


@dac_app.command("changes")
def changes(
    item: int = ItemArgument,
    comment: str = typer.Option(..., "--comment", help="What the requester must change."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Send a request item back to the requester for changes ('genofed access update')."""
    with _client(node, token) as client:
        run_guarded(lambda: client.request_changes(item, comment=comment))
    say(f"item {item} sent back to the requester for changes")


@dac_app.command("revoke")
def revoke(
    grant_or_item: str = typer.Argument(
        ..., help="The grant's id, or the number of the approved item."
    ),
    comment: str = typer.Option(..., "--comment", help="Why, for the requester and the audit."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Revoke a grant: the requester's access, and every visa issued from it, end now."""
    with _client(node, token) as client:
        grant = run_guarded(lambda: client.revoke(grant_or_item, comment=comment))
    say(f"grant {grant['id']} of {grant['subject']} to {grant['dataset']} revoked")


@dac_app.command("grants")
def grants(
    active: bool = typer.Option(False, "--active", help="Only grants neither revoked nor expired."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """The grants of your DACs (operators: every grant), newest first."""
    with _client(node, token) as client:
        found = run_guarded(lambda: client.grants(active=active))
    if not found:
        say("no grants")
        return
    rows = [
        [
            grant["id"],
            str(grant["item_id"] or ""),
            grant["subject"],
            grant["dataset"],
            grant["granted_by"],
            grant["expires_at"][:10],
            _grant_state(grant),
            " ".join(grant["conditions"]),
        ]
        for grant in found
    ]
    _print_table(
        ["grant", "item", "user", "dataset", "granted by", "expires", "state", "conditions"], rows
    )


@members_app.command("list")
def members_list(
    dac: str = typer.Argument(..., help="The DAC's accession or alias."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Who sits on a DAC, one user per line."""
    with _client(node, token) as client:
        found = run_guarded(lambda: client.members(dac))
    for member in found["members"]:
        typer.echo(member)
    say(f"DAC {found['dac']}: {len(found['members'])} member(s)")


@members_app.command("add")
def members_add(
    dac: str = typer.Argument(..., help="The DAC's accession or alias."),
    user: str = typer.Argument(..., help="The user's name, as their tokens name them."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Seat a user on a DAC (operators). They also need a token with the dac_member role."""
    with _client(node, token) as client:
        found = run_guarded(lambda: client.add_member(dac, user))
    say(f"{user} added to DAC {found['dac']}")


@members_app.command("remove")
def members_remove(
    dac: str = typer.Argument(..., help="The DAC's accession or alias."),
    user: str = typer.Argument(..., help="The member's user name."),
    node: str | None = NodeOption,
    token: str | None = TokenOption,
) -> None:
    """Take a user off a DAC (operators); their past decisions stay."""
    with _client(node, token) as client:
        found = run_guarded(lambda: client.remove_member(dac, user))
    say(f"{user} removed from DAC {found['dac']}")


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def _client(node: str | None, token: str | None) -> Iterator[AccessClient]:
    """A client of the node with the caller's token; warns when the token would travel in
    clear (as :func:`genofed.cli.remote.connect` does for the inbox client)."""
    from genofed.access.client import AccessClient

    url = node_url(node)
    chosen = bearer_token(url, token)
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        err_console.print(
            "[yellow]warning:[/] your token travels unencrypted over http://; use https://",
            highlight=False,
        )
    with AccessClient.connect(url, chosen) as client:
        yield client


def _purpose(
    permission: str | None,
    diseases: Sequence[str] | None,
    modifiers: Sequence[str] | None,
    country: str | None,
    institution: str | None,
    project: str | None,
    description: str | None,
    base: dict[str, Any],
) -> dict[str, Any]:
    """``base`` with the parts given on the command line replaced (the node validates it)."""
    purpose = dict(base)
    given: dict[str, Any] = {
        "permission": permission,
        "diseases": list(diseases) if diseases else None,
        "modifiers": list(modifiers) if modifiers else None,
        "country": country,
        "institution": institution,
        "project": project,
        "description": description,
    }
    purpose.update({key: value for key, value in given.items() if value is not None})
    if permission is not None and permission.strip().upper() != "DS" and not diseases:
        purpose.pop("diseases", None)  # a new non-DS permission drops the old diseases
    return purpose


def _warn_mismatches(items: Sequence[dict[str, Any]]) -> None:
    for item in items:
        for mismatch in item["mismatches"]:
            err_console.print(
                f"[yellow]DUO check[/] {item['dataset']}: {mismatch}", highlight=False
            )


def _show_request(found: dict[str, Any]) -> None:
    _print_fields(
        {
            "request": found["id"],
            "title": found["title"],
            "purpose": _purpose_text(found["purpose"]),
            "days requested": found["duration_days"],
            "created": found["created_at"][:19].replace("T", " "),
        }
    )
    for item in found["items"]:
        out_console.print()
        _print_fields(
            {
                "item": item["id"],
                "dataset": item["dataset"],
                "dac": item["dac"],
                "status": item["status"],
                "comment": item["comment"] or "",
                "grant": _grant_text(item["grant"]),
            }
        )
        _print_mismatches(item["mismatches"])
        _print_events(item["events"])


def _purpose_text(purpose: dict[str, Any]) -> str:
    parts = [str(purpose.get("permission", ""))]
    if purpose.get("diseases"):
        parts[0] += f" ({', '.join(purpose['diseases'])})"
    parts += list(purpose.get("modifiers", []))
    for key in ("country", "institution", "project"):
        if purpose.get(key):
            parts.append(f"{key}: {purpose[key]}")
    text = "; ".join(parts)
    return f"{text} -- {purpose['description']}" if purpose.get("description") else text


def _grant_text(grant: dict[str, Any] | None) -> str:
    if grant is None:
        return ""
    return f"{grant['id']} ({_grant_state(grant)}, until {grant['expires_at'][:10]})"


def _grant_state(grant: dict[str, Any]) -> str:
    if grant["revoked_at"]:
        return f"revoked {grant['revoked_at'][:10]} by {grant['revoked_by']}"
    return "active" if grant["active"] else "expired"


def _expiry(item: dict[str, Any]) -> str:
    grant = item.get("grant")
    return grant["expires_at"][:10] if grant and grant["active"] else ""


def _print_mismatches(mismatches: Sequence[str]) -> None:
    if not mismatches:
        out_console.print("DUO check: the purpose fits the dataset's conditions", highlight=False)
        return
    out_console.print(f"DUO check: {len(mismatches)} mismatch(es)", highlight=False)
    for mismatch in mismatches:
        out_console.print(f"  - {mismatch}", markup=False, highlight=False)


def _print_events(events: Sequence[dict[str, Any]]) -> None:
    _print_table(
        ["when", "who", "status", "comment"],
        [
            [
                str(event["at"])[:19].replace("T", " "),
                event["actor"],
                event["status"],
                event["comment"] or "",
            ]
            for event in events
        ],
    )


def _print_table(header: list[str], rows: Sequence[Sequence[str]]) -> None:
    """A drawn table on a terminal; tab-separated lines with a header row otherwise."""
    if out_console.is_terminal:
        table = Table(*header, highlight=False)
        for row in rows:
            table.add_row(*(Text(str(cell)) for cell in row))  # user text, never markup
        out_console.print(table)
        return
    for line in [header, *rows]:
        typer.echo("\t".join(" ".join(str(cell).split()) for cell in line))


def _print_fields(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        out_console.print(f"{name}: {value}", markup=False, highlight=False)
