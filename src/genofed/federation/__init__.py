"""The federation: a hub that registers national nodes and searches their catalogues.

- :mod:`~genofed.federation.signing`: signed calls between hub and nodes (RFC 9421, Ed25519);
- :mod:`~genofed.federation.guard`: receiving them in a FastAPI app (nonces, refusals audited);
- :mod:`~genofed.federation.registry`: the hub's nodes (join, approval, heartbeats, health);
- :mod:`~genofed.federation.summary`: a dataset's public summary, built on the node;
- :mod:`~genofed.federation.catalogue`: the hub's store of summaries and the search over them;
- :mod:`~genofed.federation.terms`: ontology labels and descendants for both;
- :mod:`~genofed.federation.hub`, :mod:`~genofed.federation.hub_app`: the hub's directory,
  operator actions and HTTP API;
- :mod:`~genofed.federation.node_sync`: the node's side (join, heartbeat, publication loop).
"""
