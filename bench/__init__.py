"""Benchmarks of arangotasks against real server processes: ``python -m bench.run``."""
