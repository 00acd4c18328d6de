"""Benchmarks of the billing service (`make bench`): load generators, wrk scripts, the runner."""
