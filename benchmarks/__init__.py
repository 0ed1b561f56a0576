"""Benchmark suites behind ``ruvector bench ...`` and the scripts in ``benchmarks/``."""
