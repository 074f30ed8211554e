"""A released pathogen record as queries see it, on a node and, replicated, on the hub.

The node's database holds more (submission, curation history, the human-sample link); this is
what leaves the curation pipeline: one accession version with its metadata, its analysis and its
data-use terms. The sequence itself is fetched separately (it is large and rarely needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from genofed.pathogen.analysis import Analysis

OPEN, RESTRICTED = "open", "restricted"


@dataclass(frozen=True)
class PathogenRecord:
    accession: str  # without version, e.g. GFBEV00000000042 + check character
    version: int
    organism: str
    node: str  # the country code of the node that holds it
    metadata: Mapping[str, str]  # the organism's schema fields, as submitted and curated
    analysis: Analysis
    data_use_terms: str  # open | restricted
    restricted_until: date | None
    released_at: datetime
    revoked: bool = False

    @property
    def accession_version(self) -> str:
        return f"{self.accession}.{self.version}"

    def terms_on(self, day: date) -> str:
        """Restricted terms end by themselves on their date."""
        if (
            self.data_use_terms == RESTRICTED
            and self.restricted_until
            and day < self.restricted_until
        ):
            return RESTRICTED
        return OPEN

    def to_json(self) -> dict[str, Any]:
        return {
            "accession": self.accession,
            "version": self.version,
            "organism": self.organism,
            "node": self.node,
            "metadata": dict(self.metadata),
            "analysis": self.analysis.to_json(),
            "data_use_terms": self.data_use_terms,
            "restricted_until": self.restricted_until.isoformat()
            if self.restricted_until
            else None,
            "released_at": self.released_at.isoformat(),
            "revoked": self.revoked,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PathogenRecord:
        until = data.get("restricted_until")
        return cls(
            accession=data["accession"],
            version=int(data["version"]),
            organism=data["organism"],
            node=data["node"],
            metadata=dict(data["metadata"]),
            analysis=Analysis.from_json(data["analysis"]),
            data_use_terms=data["data_use_terms"],
            restricted_until=date.fromisoformat(until) if until else None,
            released_at=datetime.fromisoformat(data["released_at"]),
            revoked=bool(data.get("revoked", False)),
        )
