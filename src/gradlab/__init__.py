"""gradlab: Homework 1 of a graduate GEN-AI course as configured, verified, reproducible JAX experiments."""

import gc

__version__ = "0.1.0"

# Importing JAX, Hydra and Matplotlib, and tracing a program, make millions of short-lived objects. At the cyclic
# collector's default thresholds in CPython 3.11 and 3.12, (700, 10, 10), it runs ~400 times while a run only
# imports, and its full collections walk everything imported so far. Its youngest generation collected every 100k
# allocations instead, a logreg run from a new interpreter takes 4% less CPU (2.45 -> 2.35 CPU-s, median of 10, in
# alternation). Set here, imported by every gradlab process before JAX work; a program's own thresholds are kept.
if gc.get_threshold() == (700, 10, 10):
    gc.set_threshold(100_000, 50, 100)
