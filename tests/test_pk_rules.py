"""Pure PK and team rules: aggregation, ties, winner, MVP, floors, stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from service.pks import rules
from service.teams import rules as team_rules

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def test_average_divides_by_at_least_the_minimum_headcount() -> None:
    assert rules.team_score("average", 90, 1, 3) == Fraction(30)
    assert rules.team_score("average", 100, 3, 3) == Fraction(100, 3)
    assert rules.team_score("average", 100, 5, 3) == Fraction(20)
    assert rules.team_score("sum", 100, 5, 3) == Fraction(100)


def test_equal_scores_rank_by_who_reached_first_then_team_id() -> None:
    ranked = rules.rank_teams(
        "sum",
        1,
        [
            rules.Standing(1, 50, 0, T0 + timedelta(minutes=5)),
            rules.Standing(2, 50, 0, T0 + timedelta(minutes=1)),
            rules.Standing(3, 70, 0, T0 + timedelta(minutes=9)),
            rules.Standing(4, 0, 0, None),
            rules.Standing(5, 50, 0, T0 + timedelta(minutes=1)),
        ],
    )
    assert [r.team_id for r in ranked] == [3, 2, 5, 1, 4]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    assert rules.winner(ranked) == 3


def test_no_winner_when_nobody_scored() -> None:
    ranked = rules.rank_teams(
        "sum", 1, [rules.Standing(1, 0, 3, None), rules.Standing(2, 0, 3, None)]
    )
    assert rules.winner(ranked) is None


def test_mvp_is_the_top_contributor_earliest_reach_wins_a_tie() -> None:
    assert rules.mvp([(7, 10, T0 + timedelta(1)), (8, 10, T0), (9, 3, T0)]) == (8, 10, T0)
    assert rules.mvp([(7, 0, T0)]) is None


def test_a_members_contribution_never_goes_below_zero_in_the_team_total() -> None:
    assert rules.team_delta(10, 10) == 10  # 0 -> 10
    assert rules.team_delta(-5, -15) == -10  # 10 -> -5 counts as 10 -> 0
    assert rules.team_delta(-5, -5) == 0  # 0 -> -5
    assert rules.team_delta(3, 8) == 3  # -5 -> 3 counts as 0 -> 3


def test_a_stay_covers_join_up_to_but_not_including_leave() -> None:
    stays = [(1, T0, T0 + timedelta(hours=1)), (2, T0 + timedelta(hours=1), None)]
    assert team_rules.team_at(stays, T0 - timedelta(seconds=1)) is None
    assert team_rules.team_at(stays, T0) == 1
    assert team_rules.team_at(stays, T0 + timedelta(hours=1)) == 2
    assert team_rules.team_at(stays, T0 + timedelta(days=9)) == 2


def test_validation_lists_every_problem() -> None:
    problems = rules.validate(
        {"teams": ["a", "ghost", "a"], "startsAt": T0, "endsAt": T0, "aggregation": "median"},
        metric_problems=[{"path": "metric", "problem": "unknown"}],
        known_teams={"a": "stores"},
        set_teams=None,
        clashes=[("other", ["a"])],
    )
    codes = {p["code"] for p in problems}
    assert codes == {
        "METRIC_INVALID",
        "TEAM_UNKNOWN",
        "TEAM_REPEATED",
        "TEAMS_TOO_FEW",
        "WINDOW_EMPTY",
        "AGGREGATION_UNKNOWN",
        "PK_OVERLAP",
    }
    assert all(p["source"] == "body" and p["path"] for p in problems)
