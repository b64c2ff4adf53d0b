"""Wire types of the wheel (camelCase JSON): config, member view, spins, audit, prizes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import AwareDatetime, ImageUrl, constrained
from service.wheel.rules import MAX_WEIGHT

Key = constrained(
    str,
    "A wheel or prize key: 1-64 of A-Z a-z 0-9 _ . -",
    examples=["iphone"],
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9_.\-]+$",
)
STOCK_MAX = 1_000_000_000
PrizeKind = Literal["points", "growth", "coupon", "physical", "nothing"]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator and member input: unknown fields are an error, not silently dropped."""


class PrizeIn(Strict):
    """One slot of the wheel. Limits here and the whole-config rules are reported together
    (422 lists every problem of one PUT)."""

    key: Key
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    kind: Annotated[
        PrizeKind,
        Meta(
            description="points/growth: credited through the ledger; coupon: a code from the "
            "prize's pool; physical: claimed with an address, then shipped; nothing: thank you."
        ),
    ]
    weight: Annotated[
        int,
        Meta(ge=0, le=MAX_WEIGHT, description="Integer weight; odds are weight / total weight."),
    ]
    value: Annotated[
        int, Meta(ge=0, le=10_000_000, description="Points or growth credited; 0 for other kinds.")
    ] = 0
    image_url: ImageUrl = ""
    total_stock: Annotated[
        Annotated[int, Meta(ge=0, le=STOCK_MAX)] | None, Meta(description="Absent: unlimited.")
    ] = None
    daily_stock: Annotated[
        Annotated[int, Meta(ge=0, le=STOCK_MAX)] | None,
        Meta(description="Wins per campaign-local day; absent: no daily limit."),
    ] = None
    per_member_cap: Annotated[
        Annotated[int, Meta(ge=1, le=STOCK_MAX)] | None,
        Meta(description="Wins of this prize per member; absent: no cap."),
    ] = None


class PityIn(Strict):
    """保底: after `afterSpins` spins without any of `prizeKeys`, the next spin gives one of
    them (drawn by their weights among those in stock)."""

    after_spins: Annotated[int, Meta(ge=1, le=1_000_000)]
    prize_keys: list[Key]


class WheelIn(Strict):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    prizes: Annotated[list[PrizeIn], Meta(min_length=1, max_length=50)]
    consolation_prize: Annotated[
        Key | None,
        Meta(
            description="The prize given when the drawn one is out of stock (must be "
            "unlimited: nothing, points or growth)."
        ),
    ] = None
    description: Annotated[str, Meta(max_length=2000, description="Rules shown to members.")] = ""
    state: Annotated[
        Literal["draft", "live", "ended"],
        Meta(description="draft: hidden; live: open within the window; ended: closed early."),
    ] = "draft"
    timezone: Annotated[str, Meta(max_length=64)] = "Asia/Shanghai"
    min_level: Annotated[
        int, Meta(ge=0, le=1000, description="Lowest level index that may spin.")
    ] = 0
    cost_points: Annotated[
        int, Meta(ge=0, le=10_000_000, description="Points per paid spin (0: no paid spins).")
    ] = 0
    free_spins_per_day: Annotated[int, Meta(ge=0, le=1000)] = 0
    max_spins_per_day: Annotated[int, Meta(ge=1, le=100_000)] | None = None
    max_spins_per_campaign: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    out_of_stock: Annotated[
        Literal["redraw", "consolation"],
        Meta(
            description="redraw: draw among prizes in stock; consolation: an out-of-stock "
            "draw gives the consolation prize."
        ),
    ] = "redraw"
    pity: PityIn | None = None
    show_stock: Annotated[bool, Meta(description="Show members how many are left.")] = False


class PrizeStats(msgspec.Struct, rename="camel"):
    slot_index: int
    key: str
    nominal_probability_pct: float
    probability_after_stock_out_pct: float
    total_stock: int | None
    issued: int
    remaining: int | None
    remaining_in_redis: int | None
    coupon_codes: int | None = None
    coupon_codes_left: int | None = None


class WheelOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    layout_version: int
    status: Annotated[str, Meta(description="draft, upcoming, open or ended")]
    seed_commitment: Annotated[str, Meta(description="SHA-256 of the server seed, hex.")]
    seed: Annotated[str | None, Meta(description="The server seed, hex, once ended.")]
    config: WheelIn
    prizes: list[PrizeStats]
    spins: int
    updated_at: datetime


class PrizeView(msgspec.Struct, rename="camel"):
    slot_index: int
    key: str
    name: str
    image_url: str
    kind: str
    value: int
    remaining: int | None = None


class WheelView(msgspec.Struct, rename="camel"):
    key: str
    name: str
    description: str
    status: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    layout_version: int
    prizes: list[PrizeView]
    cost_points: int
    free_spins_per_day: int
    free_spins_left_today: int
    spins_left_today: Annotated[int | None, Meta(description="null: no cap")]
    spins_left_in_campaign: Annotated[int | None, Meta(description="null: no cap")]
    min_level: int
    eligible: bool
    guaranteed_in: Annotated[
        int | None, Meta(description="Spins until the pity rule guarantees a prize.")
    ]
    my_spins: int
    seed_commitment: str
    seed: str | None


class WonPrize(msgspec.Struct, rename="camel"):
    slot_index: int
    key: str
    name: str
    image_url: str
    kind: str
    value: int
    award_id: int | None
    coupon_code: str | None
    state: str | None


class SpinOut(msgspec.Struct, rename="camel"):
    spin_id: str
    spin_no: int
    slot_index: int
    layout_version: int
    prize: WonPrize
    free: bool
    cost_points: int
    pity: bool
    free_spins_left_today: int
    spins_left_today: int | None
    replayed: Annotated[
        bool,
        Meta(description="True on a replay of an Idempotency-Key: the first spin's answer again."),
    ] = False


class DrawOut(msgspec.Struct, rename="camel"):
    id: int
    spin_id: str
    member_id: int
    spin_no: int
    prize_key: str
    slot_index: int
    table_version: int
    word_index: Annotated[int, Meta(description="Which 52-bit word of the HMAC was used.")]
    random_word: int | None
    random_value: Annotated[int | None, Meta(description="word mod weight total")]
    weight_total: int
    stock_seen: dict[str, Any]
    pity: bool
    fallback: bool
    free: bool
    cost_points: int
    created_at: datetime


class DrawsPage(msgspec.Struct, rename="camel"):
    seed_commitment: str
    seed: str | None
    scheme: str
    items: list[DrawOut]
    next_cursor: str | None
    tables: Annotated[
        dict[str, Any], Meta(description="Config of each table version used on this page.")
    ]


class SimulateIn(Strict):
    draws: Annotated[int, Meta(ge=1, le=100_000)]


class SimulatedPrize(msgspec.Struct, rename="camel"):
    key: str
    count: int
    share_pct: float


class SimulateOut(msgspec.Struct, rename="camel"):
    draws: int
    items: list[SimulatedPrize]


class CodesIn(Strict):
    codes: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=128)]],
        Meta(min_length=1, max_length=10_000),
    ]


class CodesOut(msgspec.Struct, rename="camel"):
    added: int
    duplicates: int
    codes: int
    codes_left: int


class AddressIn(Strict):
    province: Annotated[str, Meta(min_length=1, max_length=32)]
    city: Annotated[str, Meta(min_length=1, max_length=32)]
    detail: Annotated[str, Meta(min_length=4, max_length=200)]
    district: Annotated[str, Meta(max_length=32)] = ""
    postcode: Annotated[str, Meta(pattern=r"^(\d{6})?$")] = ""


class ClaimIn(Strict):
    name: Annotated[str, Meta(min_length=1, max_length=32)]
    phone: Annotated[str, Meta(pattern=r"^(\+?86)?1[3-9]\d{9}$", examples=["13800138000"])]
    address: AddressIn


class ShipIn(Strict):
    carrier: Annotated[str, Meta(min_length=1, max_length=64)]
    tracking_no: Annotated[str, Meta(min_length=1, max_length=64)]


class AwardOut(msgspec.Struct, rename="camel"):
    id: int
    wheel_key: str
    prize_key: str
    name: str
    kind: str
    value: int
    coupon_code: str | None
    state: Annotated[str, Meta(description="issued, won (claim it), claimed or shipped")]
    won_at: datetime
    claimed_at: datetime | None
    shipped_at: datetime | None
    contact: Annotated[
        dict[str, Any] | None, Meta(description="Masked except in the operator's shipping read.")
    ]
    shipment: dict[str, Any] | None
    member_id: int


class AwardsPage(msgspec.Struct, rename="camel"):
    items: list[AwardOut]
    next_cursor: str | None
