"""Benchmarks: scripts run by hand against a real server process (not tests; see docs/performance.md)."""
