"""Synthetic genomic data for demos and tests: nobody's genome, generated from a seed."""

from __future__ import annotations

import random
from pathlib import Path

# Genotypes by draw: mostly homozygous reference, as in real cohorts.
_GENOTYPES = ["0|0"] * 200 + ["0|1"] * 24 + ["1|0"] * 24 + ["1|1"] * 8
_BASES = "ACGT"


def write_synthetic_vcf(
    path: Path,
    *,
    samples: int = 100,
    target_bytes: int = 32 * 1024 * 1024,
    seed: int = 1,
    prefix: str = "SYN",
) -> int:
    """Write a phased, single-chromosome VCF 4.3 of about ``target_bytes``; returns the records.
    Samples are named ``<prefix>00001`` and so on."""
    rng = random.Random(seed)
    names = [f"{prefix}{number:05d}" for number in range(1, samples + 1)]
    header = (
        "##fileformat=VCFv4.3\n"
        "##source=genofed-synthetic\n"
        "##reference=GRCh38\n"
        "##contig=<ID=chr22,length=50818468,assembly=GRCh38>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(names) + "\n"
    )
    records = 0
    position = 16_050_000
    with open(path, "w", encoding="ascii") as out:
        out.write(header)
        written = len(header)
        while written < target_bytes:
            position += rng.randint(1, 300)
            ref = rng.choice(_BASES)
            alt = rng.choice(_BASES.replace(ref, ""))
            calls = "\t".join(rng.choices(_GENOTYPES, k=samples))
            line = f"chr22\t{position}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t{calls}\n"
            out.write(line)
            written += len(line)
            records += 1
    return records
