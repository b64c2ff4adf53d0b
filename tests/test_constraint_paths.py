"""The strict decoder never fails on odd field names (found by the conformance test)."""

from __future__ import annotations

from service.core import constraints
from service.leaderboards import service as boards
from service.leaderboards.schemas import LeaderboardIn


def test_a_field_named_only_with_path_punctuation_is_a_problem_not_a_crash():
    assert LeaderboardIn in constraints._CHECKS, boards  # the board rules are registered
    raw = {"]": 1, ".": 2, "": 3, "metric": "points", "period": "daily"}
    shape = constraints.problems_of(LeaderboardIn, raw)
    assert shape and all(p["code"] == "UNKNOWN_FIELD" for p in shape)
    assert constraints.rule_problems_of(LeaderboardIn, raw, shape) == []
