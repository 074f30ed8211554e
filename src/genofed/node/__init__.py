"""A national node: its directory, keys and (later) its services."""
