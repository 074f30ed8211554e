"""A national cohort for the demo: a bgzipped multi-sample VCF and the metadata describing it.

Nobody's genomes: genotypes come from a seed, phenotypes are HPO terms drawn per person, and
each node's cohort has its own people, so the federation's answers visibly add up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genofed.htsget.bgzf import EOF_BLOCK, MAX_INPUT, compress_block
from genofed.synthetic import write_synthetic_vcf

# Epilepsy and its relatives in HPO; "Seizure" (HP:0001250) is the parent of the first three.
PHENOTYPES = [
    "HP:0001250",  # seizure
    "HP:0002069",  # bilateral tonic-clonic seizure
    "HP:0011097",  # epileptic spasm
    "HP:0001263",  # global developmental delay
    "HP:0001249",  # intellectual disability
]
POPULATIONS = {"BE": "European", "FI": "Finnish", "SE": "European"}
SEXES = ["female", "male"]


@dataclass(frozen=True)
class Cohort:
    country: str
    vcf: Path  # bgzipped
    samples: list[str]

    def metadata(self, vcf_accession: str) -> dict[str, list[dict[str, Any]]]:
        """The sheets, as one JSON document, for ``genofed metadata submit``."""
        rng = random.Random(self.country)
        code = self.country.upper()
        return {
            "studies": [
                {
                    "alias": f"EPI-{code}",
                    "title": f"Genomes of an early-onset epilepsy cohort ({code})",
                    "study_type": "Whole Genome Sequencing",
                }
            ],
            "samples": [
                {
                    "alias": name,
                    "subject_id": f"{code}-patient-{number:03d}",
                    "sex": rng.choice(SEXES),
                    "age": f"P{rng.randint(2, 60)}Y",
                    "phenotypes": sorted(set(rng.sample(PHENOTYPES, k=2))),
                    "population": POPULATIONS.get(code, "European"),
                    "study": f"EPI-{code}",
                }
                for number, name in enumerate(self.samples, 1)
            ],
            "analyses": [
                {
                    "alias": f"EPI-{code}-calls",
                    "title": "Joint-called variants, chromosome 22",
                    "study": f"EPI-{code}",
                    "samples": self.samples,
                    "analysis_type": "SEQUENCE_VARIATION",
                    "assembly": "GRCh38",
                    "files": [vcf_accession],
                }
            ],
            "dacs": [
                {
                    "alias": f"DAC-{code}",
                    "title": f"Genomics data access committee ({code})",
                    "contacts": [f"DAC office <dac@node-{code.lower()}.example>"],
                }
            ],
            "policies": [
                {
                    "alias": f"POLICY-{code}",
                    "title": "Health research, not for profit",
                    "dac": f"DAC-{code}",
                    "permission": "HMB",
                    "modifiers": ["NPU"],
                }
            ],
            "datasets": [
                {
                    "alias": f"EPI-{code}-WGS",
                    "title": f"Early-onset epilepsy genomes ({code})",
                    "description": "Variant calls of an early-onset epilepsy cohort.",
                    "policy": f"POLICY-{code}",
                    "analyses": [f"EPI-{code}-calls"],
                }
            ],
        }


def write_cohort(folder: Path, country: str, *, samples: int, size_mib: float, seed: int) -> Cohort:
    """A VCF of ``samples`` people of ``country`` in ``folder``, bgzipped for the beacon index."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / f"epi-{country.lower()}.vcf"
    write_synthetic_vcf(
        plain,
        samples=samples,
        target_bytes=int(size_mib * 1024 * 1024),
        seed=seed,
        prefix=f"{country.upper()}",
    )
    bgzipped = plain.with_name(plain.name + ".gz")
    with open(plain, "rb") as source, open(bgzipped, "wb") as out:
        while block := source.read(MAX_INPUT):
            out.write(compress_block(block))
        out.write(EOF_BLOCK)
    plain.unlink()
    names = [f"{country.upper()}{number:05d}" for number in range(1, samples + 1)]
    return Cohort(country.upper(), bgzipped, names)
