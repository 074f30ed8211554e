"""genofed: federated genomic data sharing."""

__version__ = "0.1.0"
