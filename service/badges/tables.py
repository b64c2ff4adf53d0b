"""Tables of badges: definitions, per-criterion progress, earned badges, titles, the audit log."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table


class BadgeDefinition(Table, tablename="badge_definitions"):
    """A versioned badge definition; ``config`` is the operator's document as accepted.

    ``backfill_due`` is set when the criteria change and cleared by the backfill job once
    history was replayed. A definition the subscriber fails on is parked by core parking
    (``parked_definitions``, feature ``badges``), not here.
    """

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    key = Varchar(length=64)
    version = Integer()
    config = JSONB()
    backfill_due = Boolean(default=True)
    backfilled_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    badge_definitions_unique_key = Unique(["tenant_id", "key"])


class BadgeProgress(Table, tablename="badge_progress"):
    """Per badge, member, period ('' for once-only badges) and criterion: the running value."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    badge_id = BigInt()
    member_id = BigInt()
    period_id = Varchar(length=16)
    criterion = Integer()
    current = BigInt(default=0)
    updated_at = Timestamptz()
    badge_progress_unique = Unique(["badge_id", "member_id", "period_id", "criterion"])


class BadgeEventApplied(Table, tablename="badge_events_applied"):
    """The dedup guard: an outbox event counts once per badge however often it is delivered."""

    id = BigSerial(primary_key=True)
    badge_id = BigInt()
    event_id = UUID()
    badge_events_applied_unique = Unique(["badge_id", "event_id"])


class MemberBadge(Table, tablename="member_badges"):
    """One earned badge per member per period: the unique key makes earning happen once."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    badge_id = BigInt()
    member_id = BigInt()
    period_id = Varchar(length=16)
    source = Varchar(length=16)  # event, backfill, manual
    source_event_id = UUID(null=True, default=None)
    earned_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    # 1, then +1 on each re-award after a revoke: events carry it, so a revoke withdraws the
    # ceremonies of the award it revoked only.
    award_no = Integer(default=1)
    member_badges_unique = Unique(["badge_id", "member_id", "period_id"])


class MemberTitle(Table, tablename="member_titles"):
    """A title (头衔) a member holds; ``expires_at`` for titles held until a date."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    title = Varchar(length=32)
    source = Varchar(length=64)  # badge:<key>
    gained_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)
    member_titles_unique = Unique(["tenant_id", "member_id", "title"])


class MemberShownTitle(Table, tablename="member_shown_titles"):
    """The title a member chose to show (one per member)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    title = Varchar(length=32)
    updated_at = Timestamptz()
    member_shown_titles_unique = Unique(["tenant_id", "member_id"])


class BadgeAudit(Table, tablename="badge_audit"):
    """Every manual award and revoke: who, whom, which badge, why."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    badge_id = BigInt()
    member_id = BigInt()
    action = Varchar(length=16)  # award, revoke
    reason = Text()
    actor = Varchar(length=64)
    at = Timestamptz()
