"""Wire types of login and the member profile (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from service.core.constraints import AvatarUrl, ExternalId
from service.core.http import ErrorBody

__all__ = ["ExternalId"]

AppId = Annotated[
    str,
    Meta(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$", examples=["wx1234567890abcdef"]
    ),
]
LoginCode = Annotated[str, Meta(min_length=1, max_length=256, examples=["dev:openid-alice"])]


InviteCode = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=32,
        description="An invite code from a link or a mini-program scene (`inv=K7Q2M9XA`).",
    ),
]


class WechatLoginIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    app_id: AppId
    code: LoginCode
    invite_code: InviteCode | None = None


class InviteOutcome(msgspec.Struct, rename="camel"):
    """What happened to an invite code given at login or in the ritual: `recorded` (or
    `alreadyRecorded`), else `rejected` with the error a client may show
    (INVITE_CODE_INVALID). A rejected code never fails the login or the step."""

    status: Annotated[str, Meta(description="recorded, alreadyRecorded or rejected")]
    error: ErrorBody | None = None


class RefreshIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    refresh_token: Annotated[str, Meta(min_length=10, max_length=2048)]


class MemberOut(msgspec.Struct, rename="camel"):
    id: int
    external_id: str | None
    nickname: str
    avatar_url: str
    member_no: int | None
    joined_at: datetime


class LoginOut(msgspec.Struct, rename="camel"):
    access_token: str
    expires_in: Annotated[int, Meta(description="Seconds until the access token expires.")]
    refresh_token: str
    refresh_expires_in: int
    member: MemberOut
    is_new_member: bool
    invitation: InviteOutcome | None = None


class TokenOut(msgspec.Struct, rename="camel"):
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class MintTokenIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Optional profile fields the brand knows from its own login."""

    nickname: Annotated[str, Meta(max_length=64)] | None = None
    avatar_url: AvatarUrl | None = None
    invite_code: InviteCode | None = None


class ProfileIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    nickname: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    avatar_url: AvatarUrl | None = None


def member_out(row) -> MemberOut:  # type: ignore[no-untyped-def]
    return MemberOut(
        id=row["id"],
        external_id=row["external_id"],
        nickname=row["nickname"],
        avatar_url=row["avatar_url"],
        member_no=row["member_no"],
        joined_at=row["created_at"],
    )
