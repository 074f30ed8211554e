"""``genofed token``: bearer tokens signed by the node's embedded issuer, for its operators to
hand out (users and passwords come later)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from genofed.cli.common import err_console, run_guarded
from genofed.cli.node import ConfigOption, load_node_settings

app = typer.Typer(help="Bearer tokens signed by this node, for its users.", no_args_is_help=True)


@app.command()
def issue(
    user: str = typer.Option(..., "--user", help="Who the token is for (its subject)."),
    role: list[str] = typer.Option(
        ...,
        "--role",
        help="A role: submitter, requester, dac_member or operator; repeat for several.",
    ),
    hours: float | None = typer.Option(
        None, "--hours", help="Lifetime in hours; default: tokens.lifetime_seconds (1 hour)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Print a signed token for USER on stdout."""
    settings = load_node_settings(config)

    def make() -> str:
        from genofed.access.tokens import ensure_signing_key, issue_token

        ensure_signing_key(settings)
        lifetime = None if hours is None else timedelta(hours=hours)
        return issue_token(settings, user, role, lifetime)

    token = run_guarded(make)
    typer.echo(token)
    seconds = hours * 3600 if hours is not None else settings.tokens.lifetime_seconds
    err_console.print(
        f"token for {user} ({', '.join(sorted(set(role)))}) at {settings.http.public_url}, "
        f"valid for {timedelta(seconds=round(seconds))}",
        highlight=False,
    )
