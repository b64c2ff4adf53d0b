"""Wire types of webhooks: the endpoint config, the delivery log, test and redelivery answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from service.core.constraints import HttpUrl, Key
from service.webhooks.rules import PATTERN_RE

__all__ = ["Key"]

EventPattern = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=PATTERN_RE,
        description="An event type (`prize.won`), a family (`badge.*`) or `*` for all.",
    ),
]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator input: unknown fields are an error, not silently dropped."""


class Out(msgspec.Struct, rename="camel", omit_defaults=True):
    pass


class WebhookIn(Strict):
    """An endpoint. Saving checks the URL (http/https, no credentials) and, unless
    ENGAGE_WEBHOOK_ALLOW_PRIVATE is set, that its host resolves to public addresses only."""

    url: HttpUrl
    event_types: Annotated[list[EventPattern], Meta(min_length=1, max_length=50)]
    secret: (
        Annotated[
            str,
            Meta(
                max_length=128,
                # The form here (so it is listed with a bad URL); the decoded length on save.
                pattern=r"^(?:whsec_)?[A-Za-z0-9+/]{32,88}={0,2}$",
                description="`whsec_` + base64 of 24..64 bytes. Omit it on creation to have one "
                "generated (shown once in the answer); omit it on update to keep the current one.",
            ),
        ]
        | None
    ) = None
    description: Annotated[str, Meta(max_length=256)] = ""
    enabled: Annotated[
        bool,
        Meta(description="`true` re-enables an endpoint that was disabled after failures."),
    ] = True


class WebhookOut(Out):
    key: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    secret: Annotated[
        str | None, Meta(description="Only in the answer that generated or set it.")
    ] = None


class WebhookList(Out):
    items: list[WebhookOut]


class DeliveryOut(Out):
    id: int
    webhook_id: Annotated[str, Meta(description="The `webhook-id` header, the same on retries.")]
    event_id: str
    event_type: str
    status: Annotated[str, Meta(description="`pending`, `delivered` or `failed` (gave up).")]
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    member_id: int | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    latency_ms: Annotated[int | None, Meta(description="Of the last attempt.")] = None
    delivered_at: datetime | None = None


class DeliveryPage(Out):
    items: list[DeliveryOut]
    next_cursor: str | None = None
