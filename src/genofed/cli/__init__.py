"""The ``genofed`` command."""
