"""Benchmarks for tracejit (see benchmarks/README.md)."""
