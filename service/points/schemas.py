"""Wire types of the ledger, levels and the points policy (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import ImageUrl, Reason

Currency = Literal["points", "growth"]
# Free text (``活动补偿``, ``manual.goodwill``): 1-64 characters, no control characters.
ReasonCode = Reason
Note = Annotated[str, Meta(max_length=500)]
Amount = Annotated[int, Meta(ge=-10_000_000, le=10_000_000)]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator input: unknown fields are an error, not silently dropped."""


class EntryOut(msgspec.Struct, rename="camel"):
    id: int
    currency: str
    kind: Annotated[str, Meta(description="credit, debit, expire or reverse")]
    delta: int
    balance_after: int
    reason: str
    note: str
    source_ref: str | None
    reverses_entry_id: int | None
    shortfall: Annotated[int, Meta(description="On a reversal: what could not be clawed back.")]
    expires_at: datetime | None
    created_at: datetime


class LedgerPage(msgspec.Struct, rename="camel"):
    items: list[EntryOut]
    next_cursor: str | None


class AdjustIn(Strict):
    """A manual credit (amount > 0) or debit (amount < 0)."""

    currency: Currency
    amount: Amount
    reason: ReasonCode
    note: Note = ""


class AdjustOut(msgspec.Struct, rename="camel"):
    entry: EntryOut
    balance: int
    replayed: bool


class ReverseIn(Strict):
    entry_id: Annotated[int, Meta(ge=1)]
    reason: ReasonCode = "reversal"
    note: Note = ""


class Privilege(Strict):
    code: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_.\-]+$")]
    title: Annotated[str, Meta(min_length=1, max_length=64)]
    description: Annotated[str, Meta(max_length=500)] = ""
    icon_url: ImageUrl = ""


class LevelIn(Strict):
    name: Annotated[str, Meta(min_length=1, max_length=32)]
    threshold: Annotated[int, Meta(ge=0, description="Growth needed to reach this level.")]
    points_multiplier_pct: Annotated[
        int, Meta(ge=100, le=1000, description="Points from event rules x this / 100.")
    ] = 100
    privileges: list[Privilege] = []
    badge_url: ImageUrl = ""


class Validity(Strict):
    mode: Literal["forever", "rolling"] = "forever"
    days: Annotated[int, Meta(ge=1, le=3660)] | None = None


class LadderIn(Strict):
    levels: Annotated[list[LevelIn], Meta(min_length=1, max_length=50)]
    validity: Validity = msgspec.field(default_factory=Validity)


class LadderOut(msgspec.Struct, rename="camel"):
    version: int
    levels: list[LevelIn]
    validity: Validity
    updated_at: datetime


class ExpiryIn(Strict):
    mode: Literal["never", "days", "end_of_month", "end_of_year"] = "never"
    days: Annotated[int, Meta(ge=1, le=3660)] | None = None
    years_after: Annotated[int, Meta(ge=0, le=5)] = 1


class PolicyIn(Strict):
    """How points behave for this tenant. Changes apply to credits made after them."""

    expiry: ExpiryIn = msgspec.field(default_factory=ExpiryIn)
    reversal_shortfall: Annotated[
        Literal["partial", "refuse"],
        Meta(
            description="When a reversed credit was already spent: take what is left and "
            "record the shortfall (partial), or refuse with 409 (refuse)."
        ),
    ] = "partial"
    unknown_member: Annotated[
        Literal["create", "reject"],
        Meta(
            description="An event or adjustment for an unknown externalId creates the member "
            "(create) or answers 404 MEMBER_NOT_FOUND (reject)."
        ),
    ] = "create"
