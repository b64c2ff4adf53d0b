"""Tables of brand-event ingestion: the rules, the events as received, daily cap counters."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, BigSerial, Date, Integer, Timestamptz, Varchar
from piccolo.constraints import Unique
from piccolo.table import Table


class EventRule(Table, tablename="event_rules"):
    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    key = Varchar(length=64)
    event_type = Varchar(length=64)
    version = Integer()
    config = JSONB()
    updated_at = Timestamptz()
    event_rules_unique_key = Unique(["tenant_id", "key"])


class MemberEvent(Table, tablename="member_events"):
    """Brand events as received; the brand's eventId dedupes."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    event_id = Varchar(length=128)
    member_id = BigInt()
    type = Varchar(length=64)
    value = Varchar(length=64, null=True, default=None)
    attributes = JSONB(default="{}")
    occurred_at = Timestamptz()
    received_at = Timestamptz()
    member_events_unique = Unique(["tenant_id", "event_id"])


class RuleDailyUsage(Table, tablename="rule_daily_usage"):
    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    rule_key = Varchar(length=64)
    member_id = BigInt()
    day = Date()
    amount = BigInt(default=0)
    rule_daily_usage_unique = Unique(["tenant_id", "rule_key", "member_id", "day"])
