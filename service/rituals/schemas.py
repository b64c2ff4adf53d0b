"""Wire types of the entry ritual, member numbers, invitations (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import AvatarUrl, BirthDate
from service.members.schemas import InviteOutcome
from service.points.schemas import Privilege

StepKey = Annotated[
    str, Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_\-]*$", examples=["covenant"])
]
Title = Annotated[str, Meta(min_length=1, max_length=64)]
Body = Annotated[str, Meta(max_length=20_000)]
InviteCodeStr = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=32,
        description="A member's invite code (at most 32 characters: fits a mini-program scene).",
        examples=["K7Q2M9XA"],
    ),
]
ProfileField = Literal["nickname", "avatar", "birthday", "phone"]
MemberNo = Annotated[int, Meta(ge=1, le=999_999_999_999)]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator and member input: unknown fields are an error, not silently dropped."""


class StepBase(Strict, tag_field="kind"):
    pass


class CovenantStep(StepBase, tag="covenant"):
    """The covenant (会员公约): versioned text; the version the member accepts is recorded."""

    key: StepKey
    title: Title
    text: Body
    version: Annotated[str, Meta(min_length=1, max_length=32, examples=["2026-11"])]
    required: bool = True


class ProfileStep(StepBase, tag="profile"):
    """The member introduces themselves: which fields are asked and which are required.
    A phone is only taken with the member's explicit consent (`phoneConsent: true`)."""

    key: StepKey
    title: Title
    fields: Annotated[list[ProfileField], Meta(min_length=1, max_length=4)]
    required_fields: list[ProfileField] = []
    body: Body = ""
    required: bool = True


class PrivilegesStep(StepBase, tag="privileges"):
    """A tour of the entry level's privileges and the next level's (from the level ladder)."""

    key: StepKey
    title: Title
    body: Body = ""
    required: bool = True


class SubscriptionStep(StepBase, tag="subscription"):
    """Consent to subscription messages (WeChat template ids); what the member accepted is
    recorded per template."""

    key: StepKey
    title: Title
    template_ids: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=128)]], Meta(max_length=20)
    ] = []
    body: Body = ""
    required: bool = False


class CustomStep(StepBase, tag="custom"):
    """A page of the brand's own: a title and a body the member acknowledges."""

    key: StepKey
    title: Title
    body: Body = ""
    required: bool = True


Step = CovenantStep | ProfileStep | PrivilegesStep | SubscriptionStep | CustomStep


class GiftCouponIn(Strict):
    """A coupon from a wheel's coupon pool (the wheel's coupon prize; codes uploaded with
    `POST /admin/v1/wheels/{key}/prizes/{prizeKey}/codes`). One code per member, once; an
    empty pool at completion: the rest of the gift is granted and the coupon is owed
    (`coupon.owed` event)."""

    wheel: Annotated[str, Meta(min_length=1, max_length=64, description="The wheel's key.")]
    prize: Annotated[
        str, Meta(min_length=1, max_length=64, description="The key of its coupon prize.")
    ]


class GiftIn(Strict):
    """The welcome gift, granted once when the ritual is completed."""

    points: Annotated[int, Meta(ge=0, le=10_000_000)] = 0
    growth: Annotated[int, Meta(ge=0, le=10_000_000)] = 0
    badge: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=64,
                description="A badge key (PUT /admin/v1/badges/{key}); awarded with the gift.",
            ),
        ]
        | None
    ) = None
    coupon: GiftCouponIn | None = None


class NumberFormatIn(Strict):
    """How member numbers are shown: prefix + zero-padded number (`NO.001024`)."""

    prefix: Annotated[str, Meta(max_length=16)] = "NO."
    padding: Annotated[int, Meta(ge=0, le=12)] = 6


class ReferralIn(Strict):
    """When an invitation counts (`referral.joined` is emitted): when the invitee completes
    the ritual, or on the invitee's first `order.paid` event. At most `dailyLimitPerInviter`
    invitations are rewarded per inviter per local day (further ones are recorded, not
    rewarded)."""

    trigger: Literal["ritual", "firstOrder"] = "ritual"
    daily_limit_per_inviter: Annotated[int, Meta(ge=1, le=100_000)] | None = None
    timezone: Annotated[str, Meta(max_length=64)] = "Asia/Shanghai"


class RitualIn(Strict):
    """The entry ritual: ordered steps, the welcome gift, member number format, invitations.

    `reaskOnCovenantChange`: members who completed an earlier version are asked to accept
    the covenant again when its `version` differs from the one they accepted. Otherwise a
    change never re-asks anyone who completed the ritual."""

    steps: Annotated[list[Step], Meta(min_length=1, max_length=12)]
    gift: GiftIn = msgspec.field(default_factory=GiftIn)
    member_number: NumberFormatIn = msgspec.field(default_factory=NumberFormatIn)
    referral: ReferralIn = msgspec.field(default_factory=ReferralIn)
    reask_on_covenant_change: bool = False
    title: Annotated[str, Meta(max_length=64)] = ""


class RitualOut(msgspec.Struct, rename="camel"):
    version: int
    updated_at: datetime
    ritual: RitualIn


# ---------------------------------------------------------------- the member's flow


class StepIn(Strict):
    """The data of one step; which fields apply depends on the step's kind:

    - covenant: `accept: true` and the `covenantVersion` shown;
    - profile: `nickname`, `avatarUrl`, `birthday`, `phone` (+ `phoneConsent: true`);
    - subscription: `acceptedTemplateIds` (those allowed in
      wx.requestSubscribeMessage);
    - privileges and custom: nothing (an empty object).

    `inviteCode`: a code from an invitation link, recorded if valid (never fails the step).
    """

    accept: bool | None = None
    covenant_version: Annotated[str, Meta(max_length=32)] | None = None
    nickname: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    avatar_url: AvatarUrl | None = None
    birthday: BirthDate | None = None
    phone: Annotated[str, Meta(max_length=20)] | None = None
    phone_consent: bool | None = None
    accepted_template_ids: (
        Annotated[list[Annotated[str, Meta(max_length=128)]], Meta(max_length=20)] | None
    ) = None
    invite_code: InviteCodeStr | None = None


class StepView(msgspec.Struct, rename="camel"):
    key: str
    kind: str
    title: str
    required: bool
    done: bool
    done_at: datetime | None
    body: str = ""
    text: str | None = None
    covenant_version: str | None = None
    fields: list[str] | None = None
    required_fields: list[str] | None = None
    template_ids: list[str] | None = None
    privileges: list[Privilege] | None = None
    level_name: str | None = None
    next_level_privileges: list[Privilege] | None = None
    next_level_name: str | None = None


class CouponView(msgspec.Struct, rename="camel"):
    """The welcome coupon: before completion only `wheel`/`prize`; after it `state` is
    `issued` (with `code`) or `owed` (the pool was empty; `reason`: poolEmpty, poolUnknown)."""

    wheel: str
    prize: str
    state: str | None = None
    code: str | None = None
    reason: str | None = None


class GiftView(msgspec.Struct, rename="camel"):
    points: int
    growth: int
    badge: str | None
    coupon: CouponView | None = None


class RitualView(msgspec.Struct, rename="camel"):
    """`status`: notStarted, inProgress, completed, or reacceptRequired (the covenant changed
    and the brand asks members to accept it again). `next`: the step to show, or null."""

    version: int
    title: str
    status: str
    next: str | None
    steps: list[StepView]
    gift: GiftView
    member_no: int | None
    member_number: str | None
    completed_at: datetime | None
    just_completed: bool = False
    invitation: InviteOutcome | None = None


# ---------------------------------------------------------------- member numbers


class ReservationIn(Strict):
    """Reserve a range (`from`..`to`, inclusive) or one number (`from` only)."""

    from_: Annotated[MemberNo, Meta()] = msgspec.field(name="from")
    to: MemberNo | None = None
    note: Annotated[str, Meta(max_length=200)] = ""


class ReservationOut(msgspec.Struct, rename="camel"):
    id: int
    from_: int = msgspec.field(name="from")
    to: int = 0
    note: str = ""
    assigned: int = 0
    created_at: datetime | None = None


class ReservationList(msgspec.Struct, rename="camel"):
    items: list[ReservationOut]
    next_number: int


class AssignNumberIn(Strict):
    """Give a member a reserved number by hand."""

    number: MemberNo


class MemberNumberOut(msgspec.Struct, rename="camel"):
    external_id: str
    member_no: int
    member_number: str


# ---------------------------------------------------------------- invitations


class InviteIn(Strict):
    code: InviteCodeStr


class Invitee(msgspec.Struct, rename="camel"):
    masked_nickname: str
    avatar_url: str
    state: Annotated[str, Meta(description="pending (not joined yet), joined, or capped")]
    invited_at: datetime
    joined_at: datetime | None


class InvitationsOut(msgspec.Struct, rename="camel"):
    code: str
    scene: Annotated[str, Meta(description="The mini-program scene value (<= 32 characters).")]
    invited: int
    joined: int
    invitees: list[Invitee]
    rewards_points: int
    rewards_growth: int
    next_cursor: str | None = None
