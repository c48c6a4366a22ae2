"""The plan table's caption says how a batch plan was made (the demo prints it under its plan)."""

from __future__ import annotations

from api.demo import optimizer_line


def test_a_solved_plan_names_its_gap_and_what_it_gained_over_greedy() -> None:
    record = {"method": "highs", "gap": 0.0012, "solve_s": 0.31,
              "greedy": {"score": 8153.0, "late": 40}, "optimizer": {"score": 7938.0, "late": 31}}  # fmt: skip
    line = optimizer_line(record)
    assert line is not None
    assert line.startswith("optimiser: highs; gap 0.12% to the bound")
    assert "score 8153.0 -> 7938.0, late 40 -> 31" in line


def test_a_greedy_fallback_says_why_and_a_plan_without_an_optimiser_says_nothing() -> None:
    line = optimizer_line({"method": "greedy", "gap": None, "solve_s": 0.0, "reason": "HiGHS unavailable"})
    assert line == "optimiser: greedy; greedy kept: HiGHS unavailable; 0.00 s"
    assert optimizer_line(None) is None
    assert optimizer_line({}) is None
