"""Benchmarks of reading a RUNNING task's executor logs; run them with ``bash benchmarks/run.sh``."""
