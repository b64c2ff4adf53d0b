"""Tables of the wheel: wheels and their config versions, stock, member state, draws, prizes."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Bytea,
    Date,
    Integer,
    SmallInt,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check, Unique
from piccolo.table import Table


class Wheel(Table, tablename="wheels"):
    """One wheel per tenant and key. The seed is secret until the wheel ends; its SHA-256 is
    published from the first save, so the seed can never change afterwards."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    key = Varchar(length=64)
    version = Integer(default=1)
    layout_version = Integer(default=1)
    config = JSONB(default="{}")
    seed = Bytea()
    seed_hash = Varchar(length=64)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    wheels_unique_key = Unique(["tenant_id", "key"])


class WheelVersion(Table, tablename="wheel_versions"):
    """Every saved config, so any draw can be recomputed against the prize table it used."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    version = Integer()
    layout_version = Integer()
    config = JSONB(default="{}")
    created_at = Timestamptz()
    wheel_versions_unique = Unique(["wheel_id", "version"])


class WheelPrizeStock(Table, tablename="wheel_prize_stock"):
    """PostgreSQL's final word on total stock: a win of a limited prize increments ``issued``
    in the draw's transaction, and the check refuses the one that would oversell."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    prize_key = Varchar(length=64)
    total = Integer(null=True, default=None)
    issued = Integer(default=0)
    wheel_prize_stock_unique = Unique(["wheel_id", "prize_key"])
    wheel_prize_stock_within_total = Check("total IS NULL OR issued <= total")


class WheelPrizeDay(Table, tablename="wheel_prize_days"):
    """The same guard for daily stock, one row per prize and campaign-local day."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    prize_key = Varchar(length=64)
    day = Date()
    daily_limit = Integer()
    issued = Integer(default=0)
    wheel_prize_days_unique = Unique(["wheel_id", "prize_key", "day"])
    wheel_prize_days_within_limit = Check("issued <= daily_limit")


class WheelMember(Table, tablename="wheel_members"):
    """A member's state on one wheel. ``spins`` counts the member's draws (numbered 1..spins,
    unique per member): a spin planned from a state another spin changed meanwhile collides
    on that number and fails as a whole, so caps, free spins, pity and per-prize caps are
    exact under concurrency (service/wheel/service.py, "the spin")."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    member_id = BigInt()
    spins = Integer(default=0)
    day = Date(null=True, default=None)
    spins_day = Integer(default=0)
    free_used_day = Integer(default=0)
    pity = Integer(default=0)
    wins = JSONB(default="{}")
    updated_at = Timestamptz()
    wheel_members_unique = Unique(["wheel_id", "member_id"])


class WheelDraw(Table, tablename="wheel_draws"):
    """The audit log: one row per spin with every input needed to recompute it."""

    id = BigSerial(primary_key=True)
    spin_id = UUID(unique=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    member_id = BigInt()
    spin_no = Integer()
    prize_key = Varchar(length=64)
    slot_index = SmallInt()
    kind = Varchar(length=16)
    value = BigInt(default=0)
    table_version = Integer()
    layout_version = Integer()
    word_index = SmallInt(default=-1)
    random_word = BigInt(null=True, default=None)
    random_value = BigInt(null=True, default=None)
    weight_total = BigInt(default=0)
    stock_seen = JSONB(default="{}")
    pity = Boolean(default=False)
    fallback = Boolean(default=False)
    free = Boolean(default=False)
    cost = Integer(default=0)
    day = Date()
    created_at = Timestamptz()
    wheel_draws_one_per_spin = Unique(["wheel_id", "member_id", "spin_no"])


class WheelCouponCode(Table, tablename="wheel_coupon_codes"):
    """A pool of codes per coupon prize; each is issued once (member and draw set together)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    prize_key = Varchar(length=64)
    code = Varchar(length=128)
    member_id = BigInt(null=True, default=None)
    draw_id = BigInt(null=True, default=None)
    uploaded_at = Timestamptz()
    issued_at = Timestamptz(null=True, default=None)
    wheel_coupon_codes_unique = Unique(["wheel_id", "prize_key", "code"])


class WheelAward(Table, tablename="wheel_awards"):
    """A prize a member won (anything but "nothing"), with its fulfilment state.

    Points and growth are ``issued`` at once; coupons are ``issued`` with their code; physical
    prizes go ``won`` -> ``claimed`` (contact given) -> ``shipped``. The contact is personal
    data: it is masked everywhere except the one operator read used for shipping.
    """

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    wheel_id = BigInt()
    draw_id = BigInt(unique=True)
    member_id = BigInt()
    prize_key = Varchar(length=64)
    kind = Varchar(length=16)
    name = Varchar(length=64)
    value = BigInt(default=0)
    coupon_code = Varchar(length=128, null=True, default=None)
    state = Varchar(length=16)
    contact = JSONB(null=True, default=None)
    shipment = JSONB(null=True, default=None)
    won_at = Timestamptz()
    claimed_at = Timestamptz(null=True, default=None)
    shipped_at = Timestamptz(null=True, default=None)
    wheel_awards_coupon_has_code = Check("kind <> 'coupon' OR coupon_code IS NOT NULL")


class CouponGrant(Table, tablename="coupon_grants"):
    """A code handed out from a coupon prize's pool outside a draw (the ritual's welcome
    gift): one row per member per grant ``source``, so a grant happens once. ``owed``: no code
    could be given when it was due (``reason``: poolEmpty, poolUnknown); the rest of the gift
    was granted."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    source = Varchar(length=128)
    wheel_key = Varchar(length=64)
    wheel_id = BigInt(null=True, default=None)
    prize_key = Varchar(length=64)
    code = Varchar(length=128, null=True, default=None)
    state = Varchar(length=16)
    reason = Varchar(length=32, null=True, default=None)
    created_at = Timestamptz()
    issued_at = Timestamptz(null=True, default=None)
    coupon_grants_once = Unique(["tenant_id", "member_id", "source"])
