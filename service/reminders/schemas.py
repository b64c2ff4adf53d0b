"""Wire types of reminders: the tenant's config, a member's grants, the reminder log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import HttpUrl

HHMM = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Local HH:MM.")]
TemplateId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator input: unknown fields are an error, not silently dropped."""


class Out(msgspec.Struct, rename="camel", omit_defaults=True):
    pass


class TemplateIn(Strict):
    """A subscription-message template for one reminder kind."""

    template_id: TemplateId
    fields: Annotated[
        dict[str, Annotated[str, Meta(max_length=200)]],
        Meta(
            min_length=1,
            max_length=10,
            description="WeChat field key (`thing1`, `time2`, `number3` ...) to a text with "
            "`{variable}` placeholders of the kind. Values are cut to WeChat's limit of the "
            "field type (`thing` 20 characters, `phrase` 5, `character_string` 32 ...).",
        ),
    ]
    page: Annotated[str, Meta(max_length=256, description="Mini-program page opened.")] = ""


class QuietHours(Strict):
    start: HHMM
    end: HHMM


class ReminderConfigIn(Strict):
    """Which reminders a tenant sends, how, and when. A kind without a template is off."""

    sender: Annotated[
        Literal["wechat", "webhook", "log"],
        Meta(
            description="`wechat`: subscription message through WeChat's send API; "
            "`webhook`: a signed POST (Standard Webhooks) to `webhookUrl`; `log`: only logged "
            "(development)."
        ),
    ] = "log"
    app_id: Annotated[
        str | None,
        Meta(description="The mini-program whose openids and secret are used (wechat)."),
    ] = None
    webhook_url: HttpUrl | None = None
    webhook_secret: Annotated[str, Meta(max_length=128)] | None = None
    templates: dict[
        Literal["checkin.streak_at_risk", "points.expiring", "prize.shipped", "pk.result"],
        TemplateIn,
    ] = {}
    quiet_hours: Annotated[
        QuietHours | None,
        Meta(description="Held back in this window of the tenant's time zone."),
    ] = None
    checkin_remind_at: Annotated[
        HHMM, Meta(description="Local time of the streak-at-risk reminder.")
    ] = "20:00"
    points_expiring_days: Annotated[int, Meta(ge=1, le=90)] = 7


class ReminderConfigOut(Out):
    sender: str
    templates: dict[str, TemplateIn]
    checkin_remind_at: str
    points_expiring_days: int
    updated_at: datetime
    app_id: str | None = None
    webhook_url: str | None = None
    quiet_hours: QuietHours | None = None


class SubscriptionsIn(Strict):
    """The result object of ``wx.requestSubscribeMessage``: template id to the member's
    choice. Each ``accept`` is one grant (one message); other choices record nothing."""

    results: Annotated[
        dict[TemplateId, Literal["accept", "reject", "ban", "filter"]],
        Meta(min_length=1, max_length=20),
    ]


class TemplateGrants(Out):
    template_id: str
    available: int
    kinds: list[str] = []


class SubscriptionsOut(Out):
    templates: list[TemplateGrants]


class ReminderOut(Out):
    id: int
    member_id: int
    kind: str
    occasion: str
    status: Annotated[
        str,
        Meta(
            description="`pending`, `sent`, `no_grant` (the member gave no consent: never "
            "sent), `refused` (WeChat says consent is gone), `expired` (the occasion passed "
            "during quiet hours), `failed`."
        ),
    ]
    attempts: int
    created_at: datetime
    not_before: datetime
    sent_at: datetime | None = None
    last_error: str | None = None


class ReminderPage(Out):
    items: list[ReminderOut]
