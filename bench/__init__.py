"""Benchmarks: the bridge against segment-analytics-python and against Segment's and AWS's limits.

Run everything with `make bench` (or `python -m bench`); `python -m bench --quick` is a smaller,
faster pass. Every speed is reported as a ratio against a baseline measured in the same run, or
as a count that does not depend on speed (requests, bytes, API calls). See docs/benchmarks.md.
"""
