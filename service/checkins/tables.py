"""Tables of check-ins: campaigns, one row per member per local day, and streak state."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, BigSerial, Date, Integer, Timestamptz, Varchar
from piccolo.constraints import Check, Unique
from piccolo.table import Table


class CheckinCampaign(Table, tablename="checkin_campaigns"):
    """A versioned campaign config; ``config`` is the operator's document as accepted."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    key = Varchar(length=64)
    version = Integer()
    state = Varchar(length=16)  # draft, live, ended
    timezone = Varchar(length=64)
    starts_at = Timestamptz()
    ends_at = Timestamptz(null=True, default=None)
    config = JSONB()
    created_at = Timestamptz()
    updated_at = Timestamptz()
    checkin_campaigns_unique_key = Unique(["tenant_id", "key"])


class Checkin(Table, tablename="checkins"):
    """One row per member per campaign per local day: the unique key is the guard that makes
    a check-in happen once whatever the client does."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    campaign_id = BigInt()
    member_id = BigInt()
    day = Date()
    kind = Varchar(length=8)  # daily, makeup
    streak = Integer()  # the streak this check-in reached when it was made
    reward_points = Integer(default=0)
    reward_growth = Integer(default=0)
    milestone = Integer(null=True, default=None)
    cost = Integer(default=0)
    created_at = Timestamptz()
    checkins_one_per_day = Unique(["tenant_id", "campaign_id", "member_id", "day"])
    checkins_kind = Check("kind IN ('daily', 'makeup')")


class CheckinStreak(Table, tablename="checkin_streaks"):
    """Per member and campaign: the streak state, and the row every change of the member in
    the campaign locks first, so check-ins and make-ups of one member serialize."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    campaign_id = BigInt()
    member_id = BigInt()
    last_day = Date(null=True, default=None)
    current_streak = Integer(default=0)
    longest_streak = Integer(default=0)
    total_days = Integer(default=0)
    updated_at = Timestamptz()
    checkin_streaks_unique = Unique(["tenant_id", "campaign_id", "member_id"])
