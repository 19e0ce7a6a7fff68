"""Everruns capacity benchmarks (issue 8): `python bench/run.py --scenario all` or `make bench`."""
