"""Pure PK rules: validation, team scores (sum or per-member average), ranking with the tie
rule, the winner, each team's MVP, and what a batch of contributions does to team totals.

Scores
------
A member's contribution to a team is the sum of what the PK's metric gives for the events the
member caused while in that team inside the window, never below 0 (a reversal can take back
what was earned, not more). A team's ``total`` is the sum of its members' contributions.
With ``aggregation = "sum"`` the team score is the total; with ``"average"`` it is
``total / max(headcount, minHeadcount)``, where headcount counts the distinct members who were
in the team at some time in the window so far: a team smaller than the minimum is divided as
if it had the minimum, so three members cannot beat thirty by having one very active member.
Averages are compared exactly (fractions), shown rounded to 2 decimals.

Ties: equal scores rank by who reached the score first (the latest business time of the
events that made the team's total), then by team id. The winner is the first team, if its
score is above 0 (a PK where nobody scored has no winner). A team's MVP is its top
contributor: highest contribution, then earliest reach, then smallest member id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")

AGGREGATIONS = ("sum", "average")
MAX_TEAMS = 50
MAX_TOP = 20


def problem(path: str, code: str, text: str) -> dict[str, str]:
    return {"source": "body", "path": path, "code": code, "problem": text}


@dataclass(frozen=True, slots=True)
class Standing:
    team_id: int
    total: int
    headcount: int
    reached_at: datetime | None


@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int
    team_id: int
    score: Fraction
    total: int
    headcount: int
    reached_at: datetime | None


def team_score(aggregation: str, total: int, headcount: int, min_headcount: int) -> Fraction:
    if aggregation == "average":
        return Fraction(total, max(headcount, min_headcount, 1))
    return Fraction(total)


def rank_teams(aggregation: str, min_headcount: int, standings: Iterable[Standing]) -> list[Ranked]:
    """Teams in rank order: score desc, earlier reach first (never reached last), team id."""
    far = datetime.max.replace(tzinfo=None)

    def reach_key(s: Standing) -> Any:
        return s.reached_at.replace(tzinfo=None) if s.reached_at else far

    scored = [(team_score(aggregation, s.total, s.headcount, min_headcount), s) for s in standings]
    scored.sort(key=lambda x: (-x[0], reach_key(x[1]), x[1].team_id))
    return [
        Ranked(i + 1, s.team_id, sc, s.total, s.headcount, s.reached_at)
        for i, (sc, s) in enumerate(scored)
    ]


def winner(ranked: Sequence[Ranked]) -> int | None:
    """The winning team id, or None when nobody scored."""
    return ranked[0].team_id if ranked and ranked[0].score > 0 else None


def shown(score: Fraction) -> float:
    return round(float(score), 2)


Contribution = tuple[int, int, datetime]  # member id, score, reached at


def mvp(contributions: Iterable[Contribution]) -> Contribution | None:
    best = sorted(
        (c for c in contributions if c[1] > 0),
        key=lambda c: (-c[1], c[2].replace(tzinfo=None), c[0]),
    )
    return best[0] if best else None


def team_delta(new_score: int, added: int) -> int:
    """How a member's change of ``added`` (ending at ``new_score``) moves the team total, with
    contributions floored at 0."""
    return max(new_score, 0) - max(new_score - added, 0)


def in_window(start: datetime, end: datetime, at: datetime) -> bool:
    return start <= at < end


def state_of(start: datetime, end: datetime, settled: bool, now: datetime) -> str:
    if settled:
        return "settled"
    if now < start:
        return "scheduled"
    return "live" if now < end else "ended"


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def validate(
    doc: Mapping[str, Any],
    *,
    metric_problems: Sequence[Mapping[str, str]],
    known_teams: Mapping[str, str],
    set_teams: Sequence[str] | None,
    clashes: Sequence[tuple[str, Sequence[str]]],
) -> list[dict[str, str]]:
    """Every problem of a PK document at once. ``known_teams``: key -> team set of the named
    teams that exist; ``set_teams``: the teams of ``teamSet`` (None: no set named);
    ``clashes``: other PKs whose window overlaps this one and share teams, when overlap is
    forbidden by either of them, as (key, shared team keys)."""
    out: list[dict[str, str]] = []
    for p in metric_problems:
        out.append(problem(p["path"], "METRIC_INVALID", p["problem"]))
    teams = list(doc.get("teams") or [])
    team_set = doc.get("teamSet")
    if teams and team_set:
        out.append(problem("teamSet", "TEAMS_TWICE", "name teams or a teamSet, not both"))
    for i, k in enumerate(teams):
        if k not in known_teams:
            out.append(problem(f"teams[{i}]", "TEAM_UNKNOWN", f"no team {k!r}"))
        if k in teams[:i]:
            out.append(problem(f"teams[{i}]", "TEAM_REPEATED", f"team {k!r} is named twice"))
    chosen = (
        [k for k in dict.fromkeys(teams) if k in known_teams] if teams else list(set_teams or [])
    )
    if team_set and set_teams is not None and not set_teams:
        out.append(problem("teamSet", "TEAM_SET_EMPTY", f"no team in set {team_set!r}"))
    if len(chosen) < 2:
        out.append(problem("teams", "TEAMS_TOO_FEW", "a PK needs at least two teams"))
    if len(chosen) > MAX_TEAMS:
        out.append(problem("teams", "TEAMS_TOO_MANY", f"at most {MAX_TEAMS} teams"))
    sets = {known_teams[k] for k in chosen if k in known_teams}
    if len(sets) > 1:
        out.append(
            problem(
                "teams",
                "TEAMS_MIXED_SETS",
                "all teams of a PK must be of one team set (a member counts for one of them)",
            )
        )
    start, end = doc.get("startsAt"), doc.get("endsAt")
    for name, v in (("startsAt", start), ("endsAt", end)):
        if isinstance(v, datetime) and v.tzinfo is None:
            out.append(problem(name, "OFFSET_MISSING", "give times with an offset, e.g. +08:00"))
    if (
        isinstance(start, datetime)
        and isinstance(end, datetime)
        and start.tzinfo
        and end.tzinfo
        and end <= start
    ):
        out.append(problem("endsAt", "WINDOW_EMPTY", "endsAt must follow startsAt"))
    if doc.get("aggregation", "sum") not in AGGREGATIONS:
        out.append(problem("aggregation", "AGGREGATION_UNKNOWN", "sum or average"))
    for key, shared in clashes:
        out.append(
            problem(
                "startsAt",
                "PK_OVERLAP",
                f"overlaps PK {key!r} for teams {', '.join(shared)} and overlap is not allowed",
            )
        )
    return out
