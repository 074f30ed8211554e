"""Data out: what a caller's visas allow, downloads re-encrypted for them, and htsget."""
