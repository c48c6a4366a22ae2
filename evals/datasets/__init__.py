"""Dataset generators for the evals (seeded, with gold answers)."""
