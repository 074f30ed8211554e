"""The root of genofed's exceptions: each says what went wrong and how to fix it."""


class GenofedError(Exception):
    """An error a user can act on. ``str(error)`` is one line: what, where, and the fix."""
