"""Benchmarks: seeding throughput and read latency of the embedded network, on SQLite and PostgreSQL."""
