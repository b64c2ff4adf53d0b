"""Tables of wager challenges: the challenge with its escrow, and one entry per member."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Date,
    Integer,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check, Unique
from piccolo.table import Table


class Challenge(Table, tablename="challenges"):
    """Config (versioned) plus the escrow: stakes held, and what settlement did with them."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    key = Varchar(length=64)
    version = Integer()
    state = Varchar(length=16)  # draft, live, cancelled
    campaign_key = Varchar(length=64)
    timezone = Varchar(length=64)
    stake = Integer()
    start_date = Date()
    days = Integer()
    required = Integer()
    makeups_count = Boolean(default=True)
    join_opens_at = Timestamptz()
    join_closes_at = Timestamptz()
    ends_at = Timestamptz()
    max_entrants = Integer(null=True, default=None)
    platform_cut_pct = Integer(default=0)
    no_winner = Varchar(length=16)  # refund, tenant
    config = JSONB()
    entrants = Integer(default=0)
    escrow = BigInt(default=0)  # stakes held and not yet paid out
    staked_total = BigInt(default=0)
    paid_out = BigInt(default=0)
    platform_cut = BigInt(default=0)
    outcome = Varchar(length=16, null=True, default=None)
    settled_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    challenges_unique_key = Unique(["tenant_id", "key"])
    challenges_escrow_not_negative = Check("escrow >= 0")
    challenges_conserved = Check("staked_total = escrow + paid_out + platform_cut")


class ChallengeEntry(Table, tablename="challenge_entries"):
    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    challenge_id = BigInt()
    member_id = BigInt()
    stake = Integer()
    status = Varchar(length=16)  # active, won, lost, refunded
    checkins = Integer(null=True, default=None)
    payout = Integer(default=0)
    stake_entry_id = BigInt()  # the ledger debit that took the stake
    joined_at = Timestamptz()
    settled_at = Timestamptz(null=True, default=None)
    challenge_entries_one_per_member = Unique(["tenant_id", "challenge_id", "member_id"])
