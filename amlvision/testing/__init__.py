"""Helpers for tests and benchmarks that need the project's shared real data sets."""
