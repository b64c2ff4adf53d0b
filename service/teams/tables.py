"""Tables of teams: definitions and the membership history (one row per stay in a team)."""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table

from service.core.tables import Tenant


class Team(Table, tablename="teams"):
    """A team: ``team_set`` groups teams a member may belong to one of (stores, squads...)."""

    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    key = Varchar(length=64)
    team_set = Varchar(length=64)
    kind = Varchar(length=16)
    name = Varchar(length=100)
    captain_id = BigInt(null=True, default=None)
    capacity = Integer(null=True, default=None)
    open = Boolean(default=False)
    join_code = Varchar(length=32)
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()

    teams_key_key = Unique(["tenant_id", "key"])


class TeamMembership(Table, tablename="team_memberships"):
    """One stay of a member in a team, ``[joined_at, left_at)``; ``left_at`` null while in it.

    A partial unique index (migration) keeps a member in at most one team per set at a time.
    Scores of team PKs and team boards count for the team a member was in when the event
    happened, read from these rows."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    team_id = BigInt()
    team_set = Varchar(length=64)
    member_id = BigInt()
    joined_at = Timestamptz()
    left_at = Timestamptz(null=True, default=None)
    joined_via = Varchar(length=16)
