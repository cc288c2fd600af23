"""gradlab: Homework 1 of a graduate GEN-AI course as configured, verified, reproducible JAX experiments."""

__version__ = "0.1.0"
