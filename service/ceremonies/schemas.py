"""Wire types of ceremonies and the honour wall."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Kind = Literal["ritual", "grandPrize", "level", "badge", "title", "redList", "challenge", "pkWon"]


class Plain(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator and member input: unknown fields are an error."""


class Assets(msgspec.Struct, rename="camel"):
    icon: str
    animation: Annotated[str, Meta(description="The client's animation to play for this kind.")]


class ShareCard(msgspec.Struct, rename="camel"):
    masked_nickname: str
    member_no: int | None
    date: Annotated[str, Meta(description="Local date of the honour, YYYY-MM-DD.")]
    verification_code: Annotated[str, Meta(description="8 characters; checks a card is ours.")]


class CeremonyOut(msgspec.Struct, rename="camel"):
    id: int
    kind: Kind
    headline: str
    copy: str
    priority: int
    facts: dict[str, Any]
    assets: Assets
    share: ShareCard
    created_at: datetime
    expires_at: datetime
    played_at: datetime | None


class CeremonyGroup(msgspec.Struct, rename="camel"):
    """Honours of one business event, played as one (a group of one is a single modal)."""

    group_key: str
    ceremonies: list[CeremonyOut]


class PendingOut(msgspec.Struct, rename="camel"):
    groups: list[CeremonyGroup]
    more: Annotated[int, Meta(description="Pending ceremonies not in this answer.")]


class CeremonyPage(msgspec.Struct, rename="camel"):
    items: list[CeremonyOut]
    next_cursor: str | None


class AckOut(msgspec.Struct, rename="camel"):
    id: int
    played_at: datetime
    already_played: bool


class TemplateIn(Plain):
    headline: Annotated[str, Meta(min_length=1, max_length=120)]
    copy: Annotated[str, Meta(max_length=500)] = ""


class CeremonySettingsIn(Plain):
    """A tenant's override of one kind: templates (zh, en) and the pending expiry."""

    zh: TemplateIn | None = None
    en: TemplateIn | None = None
    expiry_days: Annotated[int, Meta(ge=1, le=365)] | None = None


class CeremonySettingsOut(msgspec.Struct, rename="camel"):
    kind: Kind
    zh: TemplateIn
    en: TemplateIn
    expiry_days: int
    overridden: bool


class WallMember(msgspec.Struct, rename="camel"):
    masked_nickname: str
    avatar_url: str
    title: str | None


class WallEntry(msgspec.Struct, rename="camel"):
    id: int
    kind: Kind
    headline: str
    member: WallMember
    facts: dict[str, Any]
    at: datetime


class WallPage(msgspec.Struct, rename="camel"):
    items: list[WallEntry]
    next_cursor: str | None


class WallPreferenceIn(Plain):
    hidden: Annotated[bool, Meta(description="True: never show me on the honour wall.")]


class WallPreferenceOut(msgspec.Struct, rename="camel"):
    hidden: bool


class WallEntryIn(Plain):
    hidden: bool
    reason: Annotated[str, Meta(max_length=500)] = ""


class WallEntryOut(msgspec.Struct, rename="camel"):
    id: int
    hidden: bool
