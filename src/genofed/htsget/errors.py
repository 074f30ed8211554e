"""The root of the htsget planner's errors; each module defines the ones it raises."""

from genofed.errors import GenofedError


class HtsgetError(GenofedError):
    """A request, index or data file the htsget planner cannot serve."""


class InvalidFile(HtsgetError):
    """A data file (BAM, CRAM, VCF, BCF) that is truncated or not of the format it claims."""
