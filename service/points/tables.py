"""Tables of the ledger: accounts, entries, lots and their allocations, levels, rules, events."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    Integer,
    SmallInt,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check, Unique
from piccolo.table import Table


class PointAccount(Table, tablename="point_accounts"):
    """One balance row per member and currency, changed in the same transaction as entries."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    currency = Varchar(length=16)
    balance = BigInt(default=0)
    earned_total = BigInt(default=0)
    updated_at = Timestamptz()
    point_accounts_unique = Unique(["tenant_id", "member_id", "currency"])
    point_accounts_balance_not_negative = Check("balance >= 0")


class LedgerEntry(Table, tablename="ledger_entries"):
    """Append-only: every change of a balance, with why and where from."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    currency = Varchar(length=16)
    kind = Varchar(length=16)  # credit, debit, expire, reverse
    delta = BigInt()
    balance_after = BigInt()
    reason = Varchar(length=64)
    note = Varchar(length=500, default="")
    source_ref = Varchar(length=200, null=True, default=None)
    idempotency_key = Varchar(length=300, null=True, default=None)
    reverses_entry_id = BigInt(null=True, default=None)
    shortfall = BigInt(default=0)
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    ledger_entries_unique_idem = Unique(["tenant_id", "idempotency_key"])
    # A reversal of a credit that was spent entirely moves nothing but is still recorded, so
    # that the credit counts as reversed and the shortfall is on the books.
    ledger_entries_delta_not_zero = Check("delta <> 0 OR kind = 'reverse'")


class PointLot(Table, tablename="point_lots"):
    """What one credit added, and how much of it is still there."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    currency = Varchar(length=16)
    entry_id = BigInt()
    amount = BigInt()
    remaining = BigInt()
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    point_lots_remaining_in_range = Check("remaining >= 0 AND remaining <= amount")


class LotAllocation(Table, tablename="lot_allocations"):
    """Which lots a debit, expiry or reversal drew from, and how much from each."""

    id = BigSerial(primary_key=True)
    entry_id = BigInt()
    lot_id = BigInt()
    amount = BigInt()
    lot_allocations_positive = Check("amount > 0")


class LevelLadder(Table, tablename="level_ladders"):
    id = BigSerial(primary_key=True)
    tenant_id = Integer(unique=True)
    version = Integer()
    config = JSONB()
    updated_at = Timestamptz()


class MemberLevel(Table, tablename="member_levels"):
    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    level_index = SmallInt(default=0)
    since = Timestamptz()
    review_at = Timestamptz(null=True, default=None)
    member_levels_unique = Unique(["tenant_id", "member_id"])
