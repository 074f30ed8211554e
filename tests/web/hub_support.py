"""A small federation for the hub portal's tests: a real hub served with two real nodes joined
and approved (BE's dataset at the ``registered`` level, answering identified callers only;
NL's ``public``), each with the cohort released and its VCF indexed, as the beacon network's
own tests build them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from federation_support import wait_for
from network_support import Network, make_hub, start_node
from network_support import _trusts_others as trusts_others
from network_support import _with_port as with_port

from genofed.federation.hub import approve_node
from genofed.federation.hub_app import create_hub_app
from genofed.node.server import free_socket, serving

LEVELS = {"BE": "registered", "NL": "public"}
VARIANT = {  # the beacon page's form for chr1:1001 A>G: 12 carriers at BE, 8 at NL
    "assembly": "GRCh38",
    "chromosome": "1",
    "start": "1000",
    "reference": "A",
    "alternate": "G",
    "granularity": "count",
}


@contextmanager
def small_federation(folder: Path) -> Iterator[Network]:
    """The hub, BE and NL: served, approved, trusting each other, their catalogue published.
    The settings objects in ``Network`` are the ones the apps hold: appending a trusted issuer
    to them takes effect at once."""
    with ExitStack() as stack:
        sock = free_socket()
        hub = with_port(make_hub(folder / "hub"), sock.getsockname()[1])
        hub_url = stack.enter_context(serving(create_hub_app(hub), sock))
        network = Network(hub_url, hub, stack=stack)
        for country in LEVELS:
            network.nodes[country] = start_node(network, folder / country, country, LEVELS)
        for node in network.nodes.values():
            approve_node(hub, node.id, "operator")
        for node in network.nodes.values():
            wait_for(lambda n=node: trusts_others(network, n), what=f"{node.country}'s trust")
        wait_for(lambda: listed(hub_url) == len(LEVELS), what="the catalogue")
        yield network


def listed(hub_url: str) -> int:
    return int(httpx.get(f"{hub_url}/catalogue/search", timeout=10).json()["total"])
