"""The pure core of an htsget v1.3 server: from an index and a byte-range reader over a BAM,
CRAM, VCF or BCF file, the pieces whose bytes make up the header and the records of a region.

No HTTP, storage or database here: the node's htsget route wraps ``plan`` and ``render``.
"""

from genofed.htsget.bgzf import InvalidBgzf
from genofed.htsget.errors import HtsgetError, InvalidFile
from genofed.htsget.indexes import InvalidIndex
from genofed.htsget.plan import (
    UNPLACED,
    Format,
    InvalidRange,
    Piece,
    Reader,
    Region,
    UnknownReference,
    plan,
    render,
)

__all__ = [
    "UNPLACED",
    "Format",
    "HtsgetError",
    "InvalidBgzf",
    "InvalidFile",
    "InvalidIndex",
    "InvalidRange",
    "Piece",
    "Reader",
    "Region",
    "UnknownReference",
    "plan",
    "render",
]
