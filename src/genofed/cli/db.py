"""`genofed db`: see genofed.db."""
import typer

app = typer.Typer(help="Database schema: apply migrations, show the current revision.", no_args_is_help=True)
