"""The portal: server-rendered pages for researchers, DAC members, submitters and operators.

Most people who use genofed never type a command; they use these pages. The portal is a
FastAPI router (:data:`router`, paths under ``/portal``) that a node includes (the hub includes
:data:`hub_router`, its pages of public data): its pages call
the same service functions as the node's API, with the same role checks, so no page shows what
the API would refuse. Templates are Jinja2 with autoescaping; the stylesheet and the small
script ship in this package and are served by the router itself (no CDN: it works offline).
"""

from genofed.web.pages import hub_router, router

__all__ = ["hub_router", "router"]
