"""Wire types of teams (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import Key
from service.members.schemas import ExternalId

TeamKey = Key
JoinCode = Annotated[str, Meta(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9]+$")]


class TeamIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A team. ``teamSet`` names the group of teams a member may belong to one of at a time
    (e.g. ``stores`` and ``squads``: one store and one squad each); it cannot change once the
    team has had members."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    kind: Annotated[
        Literal["store", "squad", "staff"],
        Meta(description="store (门店), squad (member squad), staff (导购 team)"),
    ]
    team_set: TeamKey
    captain: Annotated[
        ExternalId | None, Meta(description="The captain's externalId (created on first use).")
    ] = None
    capacity: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    open: Annotated[
        bool, Meta(description="true: anyone may join; false (default): the join code is needed")
    ] = False
    join_code: Annotated[
        JoinCode | None, Meta(description="Kept when omitted; generated on creation.")
    ] = None


class TeamOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    name: str
    kind: str
    team_set: str
    captain_member_id: int | None
    capacity: int | None
    open: bool
    join_code: str
    member_count: int
    created_at: datetime
    updated_at: datetime


class TeamList(msgspec.Struct, rename="camel"):
    items: list[TeamOut]


class MembershipIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Bulk membership by the brand's externalIds (members are created on first use)."""

    add: Annotated[list[ExternalId], Meta(max_length=1000)] = []
    remove: Annotated[list[ExternalId], Meta(max_length=1000)] = []
    move: Annotated[
        bool,
        Meta(
            description="true: a member in another team of the same set leaves it and joins "
            "this one; false (default): that is 409 TEAM_SET_TAKEN"
        ),
    ] = False


class MembershipOut(msgspec.Struct, rename="camel"):
    team_key: str
    added: list[ExternalId]
    moved: list[ExternalId]
    removed: list[ExternalId]
    member_count: int


class StayOut(msgspec.Struct, rename="camel"):
    member_id: int
    joined_at: datetime
    left_at: datetime | None
    joined_via: str


class TeamMembersOut(msgspec.Struct, rename="camel"):
    team_key: str
    items: list[StayOut]


class JoinIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    join_code: JoinCode | None = None


class MyTeam(msgspec.Struct, rename="camel"):
    key: str
    name: str
    kind: str
    team_set: str
    is_captain: bool
    member_count: int
    capacity: int | None
    joined_at: datetime


class MyTeams(msgspec.Struct, rename="camel"):
    """My teams now, one per team set at most."""

    items: list[MyTeam]


class LeaveOut(msgspec.Struct, rename="camel"):
    team_key: str
    left: Annotated[bool, Meta(description="false: I was not in the team (nothing changed)")]
