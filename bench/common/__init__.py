"""Helpers that several benchmarks share (a package, so that `make bench` does not run it)."""
