"""Tables of boards: definitions, the durable per-period scores, archives and red/black boards."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table

from service.core.tables import Tenant


class Leaderboard(Table, tablename="leaderboards"):
    """A board definition: ``config`` is the validated operator document; PUTs bump ``version``."""

    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    key = Varchar(length=64)
    version = Integer(default=1)
    config = JSONB(default="{}")
    created_at = Timestamptz()
    updated_at = Timestamptz()
    # Set by the operator's archive: the board stops counting; its key and history stay.
    archived_at = Timestamptz(null=True, default=None)

    leaderboards_key_key = Unique(["tenant_id", "key"])


class BoardPeriod(Table, tablename="board_periods"):
    """A period that received scores: open until closed and archived by the close job."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    board_id = BigInt()
    period_id = Varchar(length=32)
    starts_at = Timestamptz()
    ends_at = Timestamptz(null=True, default=None)
    status = Varchar(length=16, default="open")
    closed_at = Timestamptz(null=True, default=None)
    entries = Integer(default=0)

    board_periods_period_key = Unique(["board_id", "period_id"])


class BoardScore(Table, tablename="board_scores"):
    """The durable score of one member in one period of one board (Redis is its view).

    ``reached_at`` is the latest business time of the events that made the score, so the tie
    rule (earlier reach ranks first) does not depend on the order events were delivered in.
    """

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    board_id = BigInt()
    period_id = Varchar(length=32)
    member_id = BigInt()
    score = BigInt(default=0)
    reached_at = Timestamptz()
    events = Integer(default=0)

    board_scores_member_key = Unique(["board_id", "period_id", "member_id"])


class BoardAppliedEvent(Table, tablename="board_applied_events"):
    """Which outbox events a board has counted: makes at-least-once delivery count once."""

    id = BigSerial(primary_key=True)
    board_id = BigInt()
    period_id = Varchar(length=32)
    event_id = UUID()

    board_applied_events_event_key = Unique(["board_id", "event_id"])


class BoardArchive(Table, tablename="board_archive"):
    """The final, immutable ranking of a closed period."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    board_id = BigInt()
    period_id = Varchar(length=32)
    rank = Integer()
    member_id = BigInt()
    score = BigInt()
    reached_at = Timestamptz()

    board_archive_rank_key = Unique(["board_id", "period_id", "rank"])
    board_archive_member_key = Unique(["board_id", "period_id", "member_id"])


class RedBlackBoard(Table, tablename="red_black_boards"):
    """A red/black board (红黑榜) attached to one leaderboard."""

    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    key = Varchar(length=64)
    board_id = BigInt()
    version = Integer(default=1)
    config = JSONB(default="{}")
    created_at = Timestamptz()
    updated_at = Timestamptz()

    red_black_boards_key_key = Unique(["tenant_id", "key"])
    red_black_boards_board_key = Unique(["board_id"])


class RedBlackPublication(Table, tablename="red_black_publications"):
    """One immutable revision of a period's red/black board; corrections add revisions."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    red_black_id = BigInt()
    period_id = Varchar(length=32)
    revision = Integer()
    entries = JSONB(default="[]")
    note = Text(default="")
    published_at = Timestamptz()
    published_by = Varchar(length=64)

    red_black_publications_revision_key = Unique(["red_black_id", "period_id", "revision"])


class BoardPreference(Table, tablename="board_preferences"):
    """A member's choice to never appear on black lists."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    hide_from_black = Boolean(default=False)
    updated_at = Timestamptz()

    board_preferences_member_key = Unique(["tenant_id", "member_id"])
