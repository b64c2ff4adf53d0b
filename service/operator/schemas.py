"""Shapes of the operator's lists: API keys and the member lookup card."""

from __future__ import annotations

from datetime import datetime

import msgspec

from service.me.schemas import MeOut
from service.points.schemas import EntryOut
from service.wheel.schemas import AwardOut


class ApiKeyOut(msgspec.Struct, rename="camel"):
    key_id: str
    prefix: str
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyList(msgspec.Struct, rename="camel"):
    items: list[ApiKeyOut]


class MemberCard(msgspec.Struct, rename="camel"):
    member: MeOut
    prizes: list[AwardOut]
    ledger: list[EntryOut]


class MemberHit(msgspec.Struct, rename="camel"):
    id: int
    external_id: str | None
    nickname: str
    member_no: int | None
    joined_at: datetime


class MemberHits(msgspec.Struct, rename="camel"):
    items: list[MemberHit]
