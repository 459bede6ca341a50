"""Berth's benchmark harness: the same workloads against Berth and its peers.

Run ``make bench`` (or ``python -m bench.run --help``); see docs/benchmarks.md.
"""
