"""Wire types of brand events and the rules that turn them into points and growth."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import EVENT_BATCH_MAX, AwareDatetime, ExternalId, constrained
from service.core.http import ErrorBody

EventType = Annotated[
    str, Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.\-]*$", examples=["order.paid"])
]
RuleKey = constrained(
    str,
    "A rule key: 1-64 of a-z 0-9 _ . -",
    min_length=1,
    max_length=64,
    pattern=r"^[a-z0-9][a-z0-9_.\-]*$",
)
AttrName = Annotated[str, Meta(min_length=1, max_length=64)]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class EventIn(Strict):
    """One thing a member did at the brand, posted by the brand's back end."""

    event_id: Annotated[
        str,
        Meta(
            min_length=1, max_length=128, description="The brand's unique id; a repeat is ignored."
        ),
    ]
    external_id: ExternalId
    type: EventType
    occurred_at: AwareDatetime
    value: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    attributes: Annotated[dict[AttrName, Any], Meta(max_length=50)] = {}


EventBatch = Annotated[
    list[EventIn],
    Meta(min_length=1, max_length=EVENT_BATCH_MAX, description="1 to 1,000 events."),
]


class EffectOut(msgspec.Struct, rename="camel"):
    rule: str
    kind: str
    currency: str
    amount: int
    entry_id: int | None = None
    capped: bool = False


class EventResult(msgspec.Struct, rename="camel"):
    event_id: str
    status: Annotated[str, Meta(description="applied, duplicate or rejected")]
    effects: list[EffectOut] = []
    error: ErrorBody | None = None


class IngestOut(msgspec.Struct, rename="camel"):
    applied: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class ConditionIn(Strict):
    attribute: AttrName
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"]
    value: Any = None


class CreditEffect(Strict, tag="credit", tag_field="kind"):
    currency: Literal["points", "growth"]
    mode: Literal["fixed", "per_unit"] = "fixed"
    amount: Annotated[int, Meta(ge=1, le=10_000_000)] = 1
    unit: Annotated[float, Meta(gt=0, description="per_unit: value per step, e.g. 1 (yuan)")] = 1
    apply_level_multiplier: Annotated[
        bool, Meta(description="Multiply points by the member's level multiplier.")
    ] = True


class ReverseEffect(Strict, tag="reverse", tag_field="kind"):
    """Reverse every credit an earlier event made (a refund reverses the order's points)."""

    original_event_id_attribute: AttrName = "originalEventId"


class RuleIn(Strict):
    event_type: EventType
    effect: CreditEffect | ReverseEffect
    conditions: Annotated[list[ConditionIn], Meta(max_length=20)] = []
    cap_per_member_per_day: Annotated[int, Meta(ge=1)] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    state: Literal["live", "paused"] = "live"
    description: Annotated[str, Meta(max_length=500)] = ""


class RuleOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    updated_at: datetime
    rule: RuleIn
