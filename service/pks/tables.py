"""Tables of team PKs: definitions, the durable live scores, and the frozen results."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    ForeignKey,
    Integer,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table

from service.core.tables import Tenant


class Pk(Table, tablename="pks"):
    """A PK definition: ``config`` is the validated operator document, ``team_ids`` the teams
    resolved when it was saved. ``settled_at`` is set once, by the settlement."""

    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    key = Varchar(length=64)
    version = Integer(default=1)
    config = JSONB(default="{}")
    team_ids = JSONB(default="[]")
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    created_at = Timestamptz()
    updated_at = Timestamptz()
    settled_at = Timestamptz(null=True, default=None)
    settled_by = Varchar(length=64, null=True, default=None)

    pks_key_key = Unique(["tenant_id", "key"])


class PkTeamScore(Table, tablename="pk_team_scores"):
    """A team's running total in a PK (sum of its members' contributions, each at least 0).
    Its row lock orders the writers of one team, so Redis gets absolute totals in order."""

    id = BigSerial(primary_key=True)
    pk_id = BigInt()
    team_id = BigInt()
    total = BigInt(default=0)
    reached_at = Timestamptz(null=True, default=None)

    pk_team_scores_key = Unique(["pk_id", "team_id"])


class PkContribution(Table, tablename="pk_contributions"):
    """What one member added to one team in one PK (a member who switched teams has a row
    per team); ``reached_at`` is the latest business time of its events."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    pk_id = BigInt()
    team_id = BigInt()
    member_id = BigInt()
    score = BigInt(default=0)
    reached_at = Timestamptz()
    events = Integer(default=0)

    pk_contributions_key = Unique(["pk_id", "team_id", "member_id"])


class PkAppliedEvent(Table, tablename="pk_applied_events"):
    """Which outbox events a PK has counted: at-least-once delivery counts once."""

    id = BigSerial(primary_key=True)
    pk_id = BigInt()
    event_id = UUID()

    pk_applied_events_key = Unique(["pk_id", "event_id"])


class PkResult(Table, tablename="pk_results"):
    """The frozen final standing of one team, written once by the settlement."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    pk_id = BigInt()
    team_id = BigInt()
    rank = Integer()
    total = BigInt()
    headcount = Integer()
    score = JSONB(default="0")
    reached_at = Timestamptz(null=True, default=None)
    mvp_member_id = BigInt(null=True, default=None)
    mvp_score = BigInt(null=True, default=None)
    winner = Integer(default=0)

    pk_results_team_key = Unique(["pk_id", "team_id"])
