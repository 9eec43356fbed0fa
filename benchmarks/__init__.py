"""Benchmarks of ipy_stream's live view (see benchmarks/README.md)."""
