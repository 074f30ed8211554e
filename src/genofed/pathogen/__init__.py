"""GISAID-style pathogen sharing: organisms, FASTA reading and submission-batch validation."""
