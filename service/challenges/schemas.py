"""Wire types of wager challenges: config, the member's list with progress, settlement."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import AwareDatetime
from service.core.constraints import Key as Key


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator input: unknown fields are an error, not silently dropped."""


class ChallengeIn(Strict):
    """A wager challenge on a check-in campaign. Each save bumps the version; once someone
    joined, the terms (stake, days, requirement, split) are locked."""

    campaign: Annotated[
        str, Meta(min_length=1, max_length=64, description="Check-in campaign key.")
    ]
    stake: Annotated[int, Meta(ge=1, le=10_000_000, description="Points each entrant stakes.")]
    start_date: Annotated[date, Meta(description="First day, in the campaign's time zone.")]
    days: Annotated[int, Meta(ge=1, le=366)]
    required: Annotated[int, Meta(ge=1, le=366, description="Check-ins needed to finish.")]
    join_opens_at: AwareDatetime
    join_closes_at: Annotated[
        AwareDatetime, Meta(description="At the latest when the first day begins.")
    ]
    state: Literal["draft", "live", "cancelled"] = "draft"
    title: Annotated[str, Meta(max_length=64)] = ""
    rules_text: Annotated[str, Meta(max_length=2000)] = ""
    makeups_count: Annotated[bool, Meta(description="Whether make-up days count.")] = True
    max_entrants: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    platform_cut_pct: Annotated[
        int, Meta(ge=0, le=100, description="Percent of the losers' pool the platform keeps.")
    ] = 0
    no_winner: Annotated[
        Literal["refund", "tenant"],
        Meta(description="If nobody finishes: refund every stake, or the pool goes to the tenant."),
    ] = "refund"


class ChallengeAdminOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    config: ChallengeIn
    status: str
    entrants: int
    escrow: int
    staked_total: int
    paid_out: int
    platform_cut: int
    outcome: str | None
    settled_at: datetime | None
    updated_at: datetime


class Progress(msgspec.Struct, rename="camel"):
    checked_days: int
    required: int
    days: int
    days_elapsed: int
    days_left: int
    finished: bool
    still_possible: bool


class MyEntry(msgspec.Struct, rename="camel"):
    stake: int
    status: Annotated[str, Meta(description="active, won, lost or refunded")]
    payout: int
    joined_at: datetime
    progress: Progress


class ChallengeView(msgspec.Struct, rename="camel"):
    key: str
    title: str
    rules_text: str
    campaign: str
    status: Annotated[str, Meta(description="upcoming, open, running, ended, settled or cancelled")]
    stake: int
    start_date: date
    end_date: date
    days: int
    required: int
    makeups_count: bool
    join_opens_at: datetime
    join_closes_at: datetime
    max_entrants: int | None
    entrants: int
    pool: int
    platform_cut_pct: int
    no_winner: str
    me: MyEntry | None


class ChallengeList(msgspec.Struct, rename="camel"):
    open: list[ChallengeView]
    joined: list[ChallengeView]
    finished: list[ChallengeView]


class JoinOut(msgspec.Struct, rename="camel"):
    challenge: str
    stake: int
    entrants: int
    joined_at: datetime
    balance_after: int | None
    replayed: bool


class SettlementOut(msgspec.Struct, rename="camel"):
    challenge: str
    outcome: str
    entrants: int
    winners: int
    staked_total: int
    paid_out: int
    platform_cut: int
    settled_at: datetime
    replayed: bool


class SettleIn(Strict):
    cancel: Annotated[bool, Meta(description="Cancel instead: every stake is refunded.")] = False
