"""Discovery: the Beacon v2 API, the per-dataset variant index, and the privacy guard."""
