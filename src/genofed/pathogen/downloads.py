"""What a download of pathogen records holds: their genomes and the acknowledgement table, once
the node's terms allow it. The API's ``POST /pathogen/download`` and the portal's snapshot-set
download both give this, so both check the same terms and write the same archive.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from genofed.pathogen import acknowledgements, curation, terms
from genofed.pathogen.entries import by_accession_version


@dataclass(frozen=True)
class Download:
    fasta: str
    acknowledgements: list[dict[str, str]]

    def zipped(self) -> bytes:
        """``sequences.fasta`` and ``acknowledgements.tsv`` in one zip."""
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("sequences.fasta", self.fasta)
            out.writestr(
                "acknowledgements.tsv", acknowledgements.render(self.acknowledgements, "tsv")
            )
        return archive.getvalue()


def prepare(
    session: Session, subject: str, names: Sequence[str], *, aligned: bool, today: date
) -> Download:
    """The records ``names`` (accession.versions, or accessions for their newest public
    version) for ``subject``; refused (403) unless they accepted the terms the records need."""
    entries = by_accession_version(session, names)
    terms.check_download(session, subject, entries, today)
    chosen = [f"{entry.accession}.{entry.version}" for entry in entries]
    fasta = "".join(
        f">{name}\n{genome}\n"
        for name, genome in curation.sequences(session, chosen, aligned=aligned)
    )
    return Download(fasta, acknowledgements.table(entries))
