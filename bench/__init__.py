"""Benchmarks. Each ``bench_<area>.py`` prints its figure and its ratio against a baseline run in the same
process; ``python -m bench`` runs them all at their default sizes."""
