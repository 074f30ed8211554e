"""The node archive: submission inbox, the ingestion pipeline and its queue."""
