"""Confirma's benchmark harness (`python -m bench`, `make bench`).

It starts the production serving layout (`scripts/serve.sh`) on free ports against a
PostgreSQL database and a Redis prefix of its own, drives it from this process, compares
every figure with a baseline measured in the same run, and writes
`var/bench/results-<timestamp>.json`. See docs/performance.md.
"""
