"""``genofed pathogen query``'s own errors: a filter not written name=value, and a node that does
not answer. Its answers are LAPIS's, checked end to end by the demo's test (counts at the hub)."""

from __future__ import annotations

from typer.testing import CliRunner

from genofed.cli.main import app
from genofed.demo.processes import free_port


def test_a_filter_without_a_value_is_refused_with_the_form_to_use() -> None:
    result = CliRunner().invoke(
        app, ["pathogen", "query", "aggregated", "country", "--node", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 1
    assert "'country' is not a filter: write name=value" in result.output


def test_a_node_that_does_not_answer_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["pathogen", "query", "aggregated", "--node", url])
    assert result.exit_code == 1
    assert f"no answer from {url}" in result.output and "check the URL" in result.output
