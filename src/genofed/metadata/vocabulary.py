"""Controlled vocabularies of the EGA/ENA object model (platforms, library strategies, ...).

Submitters write terms in many spellings (``rna-seq``, ``RNA Seq``, ``RNA-Seq``); any spelling that
differs only in case, spaces, hyphens and underscores is accepted and stored in the canonical one,
so that searches across nodes compare like with like.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from genofed.metadata.problems import invalid

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def _key(term: str) -> str:
    return _NOT_ALNUM.sub("", term.upper())


class Vocabulary:
    """The terms one column accepts, matched loosely, stored canonically."""

    def __init__(self, name: str, terms: Iterable[str], hints: Mapping[str, str] | None = None):
        self.name = name
        self.terms = tuple(terms)
        self._by_key = {_key(term): term for term in self.terms}
        assert len(self._by_key) == len(self.terms), f"{name}: two terms share a spelling"
        # known mistakes with a tailored fix, by the mistaken term's key
        self._hints = {_key(wrong): fix for wrong, fix in (hints or {}).items()}

    def __call__(self, text: str) -> str:
        """The canonical term for ``text``; raises with the closest terms otherwise."""
        key = _key(text)
        term = self._by_key.get(key)
        if term is not None:
            return term
        hint = self._hints.get(key)
        if hint is not None:
            raise invalid(f"not a known {self.name}", hint)
        raise invalid(f"not a known {self.name}", self._suggestion(text))

    def _suggestion(self, text: str) -> str:
        key = _key(text)[:100]
        close = [term for known, term in self._by_key.items() if len(key) >= 3 and key in known]
        if not close:
            found = difflib.get_close_matches(key, list(self._by_key), n=3, cutoff=0.6)
            close = [self._by_key[known] for known in found]
        if close:
            return "did you mean " + " or ".join(close[:3]) + "?"
        if len(self.terms) <= 20:
            return "use one of " + ", ".join(self.terms)
        return f"use one of the {len(self.terms)} ENA terms, e.g. " + ", ".join(self.terms[:8])


STUDY_TYPES = Vocabulary(
    "study type",
    [
        "Whole Genome Sequencing",
        "Exome Sequencing",
        "Transcriptome Analysis",
        "Transcriptome Sequencing",
        "RNASeq",
        "Resequencing",
        "Epigenetics",
        "Metagenomics",
        "Synthetic Genomics",
        "Forensic or Paleo-genomics",
        "Gene Regulation Study",
        "Cancer Genomics",
        "Population Genomics",
        "Pooled Clone Sequencing",
        "Other",
    ],
)

PLATFORMS = Vocabulary(
    "sequencing platform",
    [
        "ILLUMINA",
        "OXFORD_NANOPORE",
        "PACBIO_SMRT",
        "ION_TORRENT",
        "BGISEQ",
        "DNBSEQ",
        "ELEMENT",
        "ULTIMA",
        "COMPLETE_GENOMICS",
        "LS454",
        "ABI_SOLID",
        "HELICOS",
        "CAPILLARY",
    ],
    hints={"ONT": "write OXFORD_NANOPORE", "PACBIO": "write PACBIO_SMRT", "MGI": "write DNBSEQ"},
)

LIBRARY_STRATEGIES = Vocabulary(
    "library strategy",
    [
        "WGS",
        "WXS",
        "WGA",
        "RNA-Seq",
        "Targeted-Capture",
        "AMPLICON",
        "ssRNA-seq",
        "snRNA-seq",
        "miRNA-Seq",
        "ncRNA-Seq",
        "FL-cDNA",
        "EST",
        "Hi-C",
        "ATAC-seq",
        "WCS",
        "RAD-Seq",
        "CLONE",
        "POOLCLONE",
        "CLONEEND",
        "FINISHING",
        "ChIP-Seq",
        "MNase-Seq",
        "DNase-Hypersensitivity",
        "Bisulfite-Seq",
        "CTS",
        "MRE-Seq",
        "MeDIP-Seq",
        "MBD-Seq",
        "Tn-Seq",
        "VALIDATION",
        "FAIRE-seq",
        "SELEX",
        "RIP-Seq",
        "ChIA-PET",
        "Synthetic-Long-Read",
        "Tethered Chromatin Conformation Capture",
        "ChM-Seq",
        "GBS",
        "Ribo-Seq",
        "OTHER",
    ],
    hints={"WES": "whole-exome sequencing is WXS", "exome": "whole-exome sequencing is WXS"},
)

LIBRARY_SOURCES = Vocabulary(
    "library source",
    [
        "GENOMIC",
        "GENOMIC SINGLE CELL",
        "TRANSCRIPTOMIC",
        "TRANSCRIPTOMIC SINGLE CELL",
        "METAGENOMIC",
        "METATRANSCRIPTOMIC",
        "SYNTHETIC",
        "VIRAL RNA",
        "OTHER",
    ],
)

LIBRARY_SELECTIONS = Vocabulary(
    "library selection",
    [
        "RANDOM",
        "PCR",
        "RANDOM PCR",
        "RT-PCR",
        "HMPR",
        "MF",
        "repeat fractionation",
        "size fractionation",
        "MSLL",
        "cDNA",
        "cDNA_randomPriming",
        "cDNA_oligo_dT",
        "PolyA",
        "Oligo-dT",
        "Inverse rRNA",
        "Inverse rRNA selection",
        "ChIP",
        "MNase",
        "DNase",
        "Hybrid Selection",
        "Reduced Representation",
        "Restriction Digest",
        "5-methylcytidine antibody",
        "MBD2 protein methyl-CpG binding domain",
        "CAGE",
        "RACE",
        "MDA",
        "padlock probes capture method",
        "other",
        "unspecified",
    ],
)

LIBRARY_LAYOUTS = Vocabulary("library layout", ["SINGLE", "PAIRED"])

RUN_FILE_TYPES = Vocabulary("run file type", ["fastq", "bam", "cram", "sff", "srf", "other"])

# The analyses whose files are positions on a reference need the assembly.
ANALYSIS_TYPES = Vocabulary(
    "analysis type",
    [
        "SEQUENCE_VARIATION",
        "REFERENCE_ALIGNMENT",
        "SEQUENCE_ANNOTATION",
        "SEQUENCE_ASSEMBLY",
        "PROCESSED_READS",
        "SAMPLE_PHENOTYPE",
    ],
    hints={"VCF": "a VCF is SEQUENCE_VARIATION", "BAM": "a BAM is REFERENCE_ALIGNMENT"},
)
ON_A_REFERENCE = frozenset({"SEQUENCE_VARIATION", "REFERENCE_ALIGNMENT"})

ASSEMBLIES = Vocabulary(
    "assembly",
    ["GRCh37", "GRCh38"],
    hints={
        "hg19": "hg19 is GRCh37 with UCSC names: write GRCh37",
        "hg38": "hg38 is GRCh38 with UCSC names: write GRCh38",
        "b37": "write GRCh37",
    },
)
