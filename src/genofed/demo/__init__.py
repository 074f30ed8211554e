"""``genofed demo``: a living federation on one machine (a hub and three national nodes)."""
