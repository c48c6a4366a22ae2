"""Evaluations and benchmarks: scripts that run datasets or workloads and print numbers.

Nothing here is a unit test: pytest only checks that the runners work, never the scores.
"""
