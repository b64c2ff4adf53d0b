"""Wire types of team PKs (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from service.core.constraints import AwareDatetime, Key
from service.teams.schemas import TeamKey

PkKey = Key
Amount = Annotated[int, Meta(ge=0, le=100_000_000)]


class Reward(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    points: Amount = 0
    growth: Amount = 0


class Rewards(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    winners: Annotated[
        Reward, Meta(description="Each member of the winning team at the end of the PK.")
    ] = msgspec.field(default_factory=Reward)
    mvp: Annotated[
        Reward, Meta(description="Each team's top contributor (MVP), winning or not.")
    ] = msgspec.field(default_factory=Reward)


class PkIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A team PK. Name the teams, or a ``teamSet`` for every team of the set (resolved when
    saved). The metric fields are the boards' (``metric``, ``eventType``, ``campaign``,
    ``valueScale``). Once the PK has started, its teams, metric and start cannot change."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    metric: Annotated[str, Meta(description="points | growth | checkins | eventValue | eventCount")]
    teams: Annotated[list[TeamKey], Meta(max_length=100)] = []
    team_set: TeamKey | None = None
    event_type: Annotated[str, Meta(max_length=64)] | None = None
    campaign: Annotated[str, Meta(max_length=64)] | None = None
    value_scale: float = 1.0
    aggregation: Annotated[
        str, Meta(description="sum (default) | average (per member, see minHeadcount)")
    ] = "sum"
    min_headcount: Annotated[
        int,
        Meta(
            ge=1,
            le=100_000,
            description="average: a team is divided by at least this many members",
        ),
    ] = 1
    allow_overlap: Annotated[
        bool,
        Meta(description="false: no other PK of the same teams may overlap this one's window"),
    ] = True
    rewards: Rewards = msgspec.field(default_factory=Rewards)
    top_contributors: Annotated[int, Meta(ge=0, le=20)] = 3
    settle_delay_seconds: Annotated[
        int, Meta(ge=0, le=86_400, description="The settlement job waits this long after the end")
    ] = 60


class PkOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    config: PkIn
    team_keys: list[str]
    state: Annotated[str, Meta(description="scheduled | live | ended | settled | parked")]
    created_at: datetime
    updated_at: datetime
    settled_at: datetime | None = None
    parked_reason: str | None = None


class PkList(msgspec.Struct, rename="camel"):
    items: list[PkOut]


class Shown(msgspec.Struct, rename="camel"):
    nickname: str
    avatar_url: str


class Contributor(msgspec.Struct, rename="camel"):
    rank: int
    member: Shown
    score: int
    is_me: bool = False


class TeamStanding(msgspec.Struct, rename="camel"):
    rank: int
    key: str
    name: str
    score: Annotated[float, Meta(description="total (sum) or per-member average, 2 decimals")]
    total: int
    headcount: int
    reached_at: datetime | None
    is_mine: bool
    top_contributors: list[Contributor]
    contributors: int
    mvp: Contributor | None = None


class MeInPk(msgspec.Struct, rename="camel"):
    team_key: Annotated[str | None, Meta(description="null: I am in none of the PK's teams")]
    contribution: int
    rank_in_team: int | None


class PkBoard(msgspec.Struct, rename="camel"):
    key: str
    name: str
    state: str
    starts_at: datetime
    ends_at: datetime
    time_left_seconds: Annotated[int, Meta(description="0 once ended")]
    metric: str
    aggregation: str
    teams: list[TeamStanding]
    me: MeInPk
    winner: Annotated[str | None, Meta(description="the winning team's key once settled")] = None


class TeamResult(msgspec.Struct, rename="camel"):
    rank: int
    team_key: str
    score: float
    total: int
    headcount: int
    reached_at: datetime | None
    winner: bool
    mvp_member_id: int | None
    mvp_score: int | None


class SettlementOut(msgspec.Struct, rename="camel"):
    key: str
    settled_at: datetime
    settled_by: str
    winner: str | None
    results: list[TeamResult]
    rewarded_members: int
