"""The portal's catalogue page: the hub's search, results held here or abroad, and what the
visitor is told when the node has no hub or the hub does not answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from federation_support import add_hub_node, hub_server, make_hub, published, summary
from portal_support import BOB, make_node, portal_app, token

from genofed import db
from genofed.config import Settings
from genofed.federation import catalogue
from genofed.federation.node_sync import node_id
from genofed.web.render import SESSION_COOKIE


def _browser(settings: Settings) -> TestClient:
    client = TestClient(portal_app(settings), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token(settings, BOB), path="/portal")
    return client


def _publish(hub: Settings, here: str) -> None:
    engine = db.make_engine(hub.database_url)
    try:
        with db.session_scope(engine) as session:
            home = add_hub_node(session, here, "BE")
            abroad = add_hub_node(session, "org.genofed.node.fi", "FI")
            catalogue.publish(
                session, home, [published(summary("GFBED000000000010", title="Epilepsy BE"))]
            )
            catalogue.publish(
                session, abroad, [published(summary("GFFID00000000001Q", title="Epilepsy FI"))]
            )
    finally:
        engine.dispose()


def test_the_catalogue_lists_the_federation_and_how_to_apply(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node")
    hub = make_hub(tmp_path / "hub")
    _publish(hub, node_id(node))
    with hub_server(hub) as (url, _):
        node.federation.hub_url = url
        with _browser(node) as browser:
            page = browser.get("/portal/catalogue", params={"q": "epilepsy"})
            only_fi = browser.get("/portal/catalogue", params={"country": "fi"})
    assert page.status_code == 200
    assert "2 datasets found" in page.text
    assert "Epilepsy BE" in page.text and "Epilepsy FI" in page.text
    assert "Apply here" in page.text  # the dataset of this node: the portal's form
    assert "genofed federation request GFFID00000000001Q" in page.text  # abroad: via the hub
    assert f"--hub {url}" in page.text
    assert "1 dataset found" in only_fi.text and "Epilepsy BE" not in only_fi.text


def test_without_a_hub_or_with_a_dead_one_the_page_says_so(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node")
    with _browser(node) as browser:
        alone = browser.get("/portal/catalogue")
        node.federation.hub_url = "http://127.0.0.1:9"  # nothing listens there
        dead = browser.get("/portal/catalogue")
    assert alone.status_code == 200 and "has not joined a federation" in alone.text
    assert dead.status_code == 200 and "cannot be reached" in dead.text


def test_the_catalogue_needs_a_session(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node")
    with TestClient(portal_app(node), follow_redirects=False) as anonymous:
        refused = anonymous.get("/portal/catalogue")
    assert refused.status_code in (303, 307) and "/portal/login" in refused.headers["location"]


@pytest.mark.parametrize("field", ["q", "phenotype"])
def test_search_words_are_escaped(tmp_path: Path, field: str) -> None:
    node = make_node(tmp_path / "node")
    with _browser(node) as browser:
        page = browser.get("/portal/catalogue", params={field: "<script>x</script>"})
    assert "<script>x</script>" not in page.text
