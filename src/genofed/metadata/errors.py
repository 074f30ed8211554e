"""What stops a metadata or dataset operation, each error naming its fix."""

from __future__ import annotations

from collections.abc import Sequence

from genofed.errors import GenofedError
from genofed.metadata.problems import Problem


class MetadataError(GenofedError):
    """A metadata operation that cannot be done as asked."""


class InvalidSubmission(MetadataError):
    """The submission has problems; nothing was stored. ``problems`` lists every one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = f"; the first: {self.problems[0]}" if self.problems else ""
        super().__init__(
            f"the submission has {len(self.problems)} problem(s) and nothing was stored"
            f"{first}; run 'genofed metadata validate' to list them all"
        )


class NotFound(MetadataError):
    """No object (or file) answers to the given accession, alias or id."""


class DatasetError(MetadataError):
    """A dataset operation that its life cycle (draft → released → deprecated) forbids."""
