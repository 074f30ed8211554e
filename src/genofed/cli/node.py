"""`genofed node`: set up and run a national node."""

import typer

app = typer.Typer(help="A national node: create its directory, run it.", no_args_is_help=True)
