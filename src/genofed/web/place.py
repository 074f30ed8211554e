"""Where the portal runs: on a node (every page, for its users' roles) or on the federation's hub
(the pages of public data only: the catalogue and the beacon network, open to anyone).

A hub is told apart by its settings (``[hub] name``, as :func:`genofed.federation.hub.require_hub`
does). Pages that ask the federation ask the hub: a node the hub it joined, the hub itself.
"""

from __future__ import annotations

from fastapi import Request

from genofed.config import Settings


def is_hub(settings: Settings) -> bool:
    return bool(settings.hub.name)


def on_hub(request: Request) -> bool:
    return is_hub(request.app.state.settings)


def hub_url(settings: Settings) -> str:
    """The federation's hub for this portal's pages: the hub itself on the hub, the one the node
    joined on a node; empty when the node is on its own."""
    url = str(settings.http.public_url) if is_hub(settings) else settings.federation.hub_url
    return url.strip().rstrip("/")
