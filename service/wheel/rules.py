"""Pure rules of the wheel: the prize table, fair random words, the draw, pity, validation.

The draw here is the reference implementation: ``service/lua/wheel_draw.lua`` runs the same
algorithm atomically next to the stock counters, and ``verify`` recomputes every logged draw
with :func:`draw`. A test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Random words are 52 bits: Redis Lua numbers are doubles, exact up to 2^53, so the script can
# compare and reduce them without rounding. One HMAC-SHA256 block gives four words.
WORD_BITS = 52
WORD_SPACE = 1 << WORD_BITS
WORDS_PER_BLOCK = 4
# Weights are bounded so that the rejection zone stays negligible: W <= 2^31 rejects a word
# with probability below 2^-21, and needing a second block is below 2^-84.
MAX_WEIGHT = 1_000_000
MAX_TOTAL_WEIGHT = 1 << 31

KINDS = ("points", "growth", "coupon", "physical", "nothing")
RULES = ("redraw", "consolation")


@dataclass(frozen=True, slots=True)
class Prize:
    key: str
    name: str
    image_url: str
    kind: str
    value: int
    weight: int
    total: int | None  # None: unlimited
    daily: int | None  # None: no daily limit
    member_cap: int | None  # None: no per-member cap

    @property
    def limited(self) -> bool:
        return self.total is not None or self.daily is not None


@dataclass(frozen=True, slots=True)
class PrizeTable:
    prizes: tuple[Prize, ...]
    out_of_stock: str  # "redraw" or "consolation"
    consolation: int  # index into prizes
    pity_after: int | None  # spins without a pity prize before the next one is forced
    pity: frozenset[int]  # indexes of the pity prizes

    def index_of(self, key: str) -> int:
        for i, p in enumerate(self.prizes):
            if p.key == key:
                return i
        raise KeyError(key)


def table_from_config(config: dict[str, Any]) -> PrizeTable:
    """Build the table from a stored (camelCase, validated) config."""
    prizes = tuple(
        Prize(
            p["key"],
            p["name"],
            p.get("imageUrl", ""),
            p["kind"],
            int(p.get("value", 0)),
            int(p["weight"]),
            p.get("totalStock"),
            p.get("dailyStock"),
            p.get("perMemberCap"),
        )
        for p in config["prizes"]
    )
    keys = [p.key for p in prizes]
    pity = config.get("pity") or None
    return PrizeTable(
        prizes,
        config.get("outOfStock", "redraw"),
        keys.index(config["consolationPrize"]),
        int(pity["afterSpins"]) if pity else None,
        frozenset(keys.index(k) for k in pity["prizeKeys"]) if pity else frozenset(),
    )


def layout_of(config: dict[str, Any]) -> list[tuple[str, str, str, str, int]]:
    """What the client draws on the wheel; a change bumps the layout version."""
    return [
        (p["key"], p["name"], p.get("imageUrl", ""), p["kind"], int(p.get("value", 0)))
        for p in config["prizes"]
    ]


# ----------------------------------------------------------------------------- fairness


def commitment(seed: bytes) -> str:
    """What is published before the wheel starts: SHA-256 of the server seed, hex."""
    return hashlib.sha256(seed).hexdigest()


def words(seed: bytes, member_id: int, spin_no: int, block: int = 0) -> list[int]:
    """The random words of one spin: HMAC-SHA256(seed, "member:spin:block") cut into 52-bit
    words. Nothing in the message is the server's free choice: the member is who spins and
    the spin number is the member's count of spins on this wheel, with no gaps."""
    digest = hmac.new(seed, f"{member_id}:{spin_no}:{block}".encode(), hashlib.sha256).digest()
    return [int.from_bytes(digest[8 * i : 8 * i + 8], "big") >> 12 for i in range(4)]


def pick(weights: Sequence[int], candidates: Sequence[int], ws: Sequence[int]) -> Pick | None:
    """Map words to a candidate with probability weight / total, exactly.

    Rejection sampling: a word is used only below the largest multiple of the total weight
    that fits in 2^52, so every residue is equally likely (no modulo bias). None when every
    word was rejected (then the caller asks for the next block).
    """
    total = sum(weights[i] for i in candidates)
    limit = (WORD_SPACE // total) * total
    for j, x in enumerate(ws):
        if x < limit:
            v = x % total
            acc = 0
            for i in candidates:
                acc += weights[i]
                if v < acc:
                    return Pick(i, j, x, v, total)
    return None


@dataclass(frozen=True, slots=True)
class Pick:
    index: int
    word_index: int
    word: int
    value: int
    total: int


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    word_index: int  # -1 when no random word was needed (nothing drawable: consolation)
    word: int | None
    value: int | None
    weight_total: int
    fallback: bool  # the consolation prize replaced an out-of-stock one
    forced: bool  # the pity rule chose the candidates


def draw(
    table: PrizeTable,
    available: Sequence[bool],
    force_pity: bool,
    ws: Sequence[int],
) -> Outcome | None:
    """One draw given what was in stock (``available`` per prize, the member's caps included).

    - pity due and a pity prize available: pick among the available pity prizes;
    - rule ``redraw``: pick among the available prizes (the same odds as redrawing until an
      available one comes up);
    - rule ``consolation``: pick among all prizes; an unavailable pick becomes the consolation.
    Returns None when every word was rejected (ask again with the next block).
    """
    weights = [p.weight for p in table.prizes]
    n = len(table.prizes)
    forced = False
    candidates: list[int] = []
    if force_pity and table.pity:
        candidates = [i for i in range(n) if i in table.pity and available[i] and weights[i] > 0]
        forced = bool(candidates)
    if not forced:
        if table.out_of_stock == "redraw":
            candidates = [i for i in range(n) if available[i] and weights[i] > 0]
        else:
            candidates = [i for i in range(n) if weights[i] > 0]
    if not candidates:
        return Outcome(table.consolation, -1, None, None, 0, True, False)
    got = pick(weights, candidates, ws)
    if got is None:
        return None
    if not available[got.index]:
        return Outcome(
            table.consolation, got.word_index, got.word, got.value, got.total, True, forced
        )
    return Outcome(got.index, got.word_index, got.word, got.value, got.total, False, forced)


def draw_with_blocks(
    table: PrizeTable,
    available: Sequence[bool],
    force_pity: bool,
    seed: bytes,
    member_id: int,
    spin_no: int,
) -> tuple[Outcome, int]:
    """``draw`` over as many HMAC blocks as needed; returns the outcome and the block used."""
    block = 0
    while True:
        out = draw(table, available, force_pity, words(seed, member_id, spin_no, block))
        if out is not None:
            return out, block
        block += 1


def pity_due(table: PrizeTable, pity_count: int) -> bool:
    """After ``afterSpins`` spins without a pity prize, the next spin gives one."""
    return table.pity_after is not None and pity_count >= table.pity_after


def next_pity_count(table: PrizeTable, pity_count: int, won_index: int) -> int:
    return 0 if won_index in table.pity else pity_count + 1


def available_for(
    table: PrizeTable,
    remaining_total: Sequence[int | None],
    remaining_daily: Sequence[int | None],
    member_wins: dict[str, int],
    also_unavailable: frozenset[str] = frozenset(),
) -> list[bool]:
    """Which prizes a member can win now (stock left today and overall, own cap not reached)."""
    out = []
    for i, p in enumerate(table.prizes):
        ok = p.key not in also_unavailable
        ok = ok and (remaining_total[i] is None or remaining_total[i] > 0)  # type: ignore[operator]
        ok = ok and (remaining_daily[i] is None or remaining_daily[i] > 0)  # type: ignore[operator]
        ok = ok and (p.member_cap is None or member_wins.get(p.key, 0) < p.member_cap)
        out.append(ok)
    return out


# ----------------------------------------------------------------------------- odds, simulation


def nominal_probabilities(table: PrizeTable) -> list[float]:
    total = sum(p.weight for p in table.prizes)
    return [p.weight / total if total else 0.0 for p in table.prizes]


def probabilities_after_stock_out(table: PrizeTable) -> list[float]:
    """Odds once every limited prize is gone: ``redraw`` spreads over the unlimited prizes,
    ``consolation`` hands the limited prizes' share to the consolation prize."""
    n = len(table.prizes)
    unlimited = [i for i in range(n) if not table.prizes[i].limited]
    if table.out_of_stock == "redraw":
        total = sum(table.prizes[i].weight for i in unlimited)
        if total == 0:
            return [1.0 if i == table.consolation else 0.0 for i in range(n)]
        return [table.prizes[i].weight / total if i in unlimited else 0.0 for i in range(n)]
    total = sum(p.weight for p in table.prizes)
    lost = sum(table.prizes[i].weight for i in range(n) if i not in unlimited)
    out = [table.prizes[i].weight / total if i in unlimited else 0.0 for i in range(n)]
    out[table.consolation] += lost / total
    return out


def simulate(
    table: PrizeTable,
    remaining_total: Sequence[int | None],
    remaining_daily: Sequence[int | None],
    n: int,
    rng: random.Random,
) -> list[int]:
    """What N more spins by distinct members would hand out from the stock left now
    (no pity: distinct members have no losing streaks). Counts per prize."""
    tot = list(remaining_total)
    day = list(remaining_daily)
    counts = [0] * len(table.prizes)
    for _ in range(n):
        avail = available_for(table, tot, day, {})
        ws = [rng.getrandbits(WORD_BITS) for _ in range(WORDS_PER_BLOCK)]
        out = draw(table, avail, False, ws)
        while out is None:
            ws = [rng.getrandbits(WORD_BITS) for _ in range(WORDS_PER_BLOCK)]
            out = draw(table, avail, False, ws)
        i = out.index
        counts[i] += 1
        if tot[i] is not None:
            tot[i] -= 1  # type: ignore[operator]
        if day[i] is not None:
            day[i] -= 1  # type: ignore[operator]
    return counts


# ----------------------------------------------------------------------------- validation


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


Add = Callable[[str, str], None]  # add(path, problem)


def config_problems(
    config: dict[str, Any],
    *,
    issued: dict[str, int] | None = None,
    previous: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[dict[str, str]]:
    """Every problem of a wheel config (camelCase dict), so the operator fixes all at once.

    ``issued`` (prize key -> wins so far) refuses a total stock below what was already won;
    ``previous``/``now`` refuse reopening a wheel that has ended (its seed is public).
    """
    problems: list[dict[str, str]] = []

    def add(path: str, problem: str) -> None:
        problems.append({"path": path, "problem": problem})

    _schedule_problems(config, add)
    _prize_problems(config, issued, add)
    _consolation_problems(config, add)
    _pity_problems(config, add)
    if (
        previous is not None
        and now is not None
        and status_of(previous, now) == "ended"
        and status_of(config, now) != "ended"
    ):
        add("state", "the wheel has ended and its seed is public; start a new wheel key")
    return problems


def _schedule_problems(config: dict[str, Any], add: Add) -> None:
    """Dates, time zone, cost, free spins, caps, level."""
    starts, ends = parse_dt(config["startsAt"]), parse_dt(config["endsAt"])
    if ends <= starts:
        add("endsAt", "must be after startsAt")
    if not _zone_ok(config.get("timezone", "Asia/Shanghai")):
        add("timezone", "unknown time zone")
    if config.get("costPoints", 0) < 0:
        add("costPoints", "must not be negative")
    if config.get("freeSpinsPerDay", 0) < 0:
        add("freeSpinsPerDay", "must not be negative")
    if config.get("costPoints", 0) == 0 and config.get("freeSpinsPerDay", 0) == 0:
        add("costPoints", "set a cost per spin or free spins per day, or nobody can spin")
    for f in ("maxSpinsPerDay", "maxSpinsPerCampaign"):
        if config.get(f) is not None and config[f] < 1:
            add(f, "must be at least 1 (leave it out for no cap)")
    if config.get("minLevel", 0) < 0:
        add("minLevel", "must not be negative")


def _prize_problems(config: dict[str, Any], issued: dict[str, int] | None, add: Add) -> None:
    """Keys, weights, stock, caps and values of each prize; the total weight."""
    prizes = config["prizes"]
    keys = [p["key"] for p in prizes]
    total_weight = 0
    for i, p in enumerate(prizes):
        at = f"prizes[{i}]"
        if keys.index(p["key"]) != i:
            add(f"{at}.key", f"key {p['key']!r} repeats")
        w = p["weight"]
        if w < 0:
            add(f"{at}.weight", "must not be negative")
        elif w > MAX_WEIGHT:
            add(f"{at}.weight", f"must be at most {MAX_WEIGHT}")
        else:
            total_weight += w
        for f in ("totalStock", "dailyStock"):
            if p.get(f) is not None and p[f] < 0:
                add(f"{at}.{f}", "stock must not be negative (leave it out for unlimited)")
        if p.get("perMemberCap") is not None and p["perMemberCap"] < 1:
            add(f"{at}.perMemberCap", "must be at least 1 (leave it out for no cap)")
        kind, value = p["kind"], p.get("value", 0)
        if kind in ("points", "growth") and value < 1:
            add(f"{at}.value", f"a {kind} prize needs a value of at least 1")
        if kind == "nothing" and value != 0:
            add(f"{at}.value", "a 'nothing' prize has no value")
        if value < 0:
            add(f"{at}.value", "must not be negative")
        total = p.get("totalStock")
        if issued and total is not None and total >= 0 and issued.get(p["key"], 0) > total:
            add(
                f"{at}.totalStock",
                f"{issued[p['key']]} already won; the total cannot go below that",
            )
    if total_weight == 0:
        add("prizes", "weights are all zero: nothing can be drawn")
    if total_weight > MAX_TOTAL_WEIGHT:
        add("prizes", f"weights add up to more than {MAX_TOTAL_WEIGHT}")


def _consolation_problems(config: dict[str, Any], add: Add) -> None:
    """The consolation prize exists and can always be given."""
    keys = [p["key"] for p in config["prizes"]]
    prizes = config["prizes"]
    cons = config.get("consolationPrize")
    if not cons:
        add("consolationPrize", "no consolation prize: name the prize given when stock runs out")
    elif cons not in keys:
        add("consolationPrize", f"no prize with key {cons!r}")
    else:
        p = prizes[keys.index(cons)]
        if any(p.get(f) is not None for f in ("totalStock", "dailyStock", "perMemberCap")):
            add("consolationPrize", "the consolation prize must be unlimited (no stock or cap)")
        if p["kind"] not in ("nothing", "points", "growth"):
            add("consolationPrize", "the consolation prize must be nothing, points or growth")


def _pity_problems(config: dict[str, Any], add: Add) -> None:
    """The pity rule names drawable prizes."""
    keys = [p["key"] for p in config["prizes"]]
    prizes = config["prizes"]
    pity = config.get("pity")
    if pity:
        if pity["afterSpins"] < 1:
            add("pity.afterSpins", "must be at least 1")
        if not pity["prizeKeys"]:
            add("pity.prizeKeys", "name at least one prize")
        for j, k in enumerate(pity["prizeKeys"]):
            if k not in keys:
                add(f"pity.prizeKeys[{j}]", f"no prize with key {k!r}")
        if all(k not in keys or prizes[keys.index(k)]["weight"] <= 0 for k in pity["prizeKeys"]):
            add("pity.prizeKeys", "the pity prizes need a positive weight")


def status_of(config: dict[str, Any], now: datetime) -> str:
    """draft (operator has not published), upcoming, open, or ended (seed revealed)."""
    state = config.get("state", "draft")
    starts, ends = parse_dt(config["startsAt"]), parse_dt(config["endsAt"])
    if state == "ended" or now >= ends:
        return "ended"
    if state == "draft":
        return "draft"
    if now < starts:
        return "upcoming"
    return "open"


def parse_dt(v: Any) -> datetime:
    """Stored configs hold ISO strings; validated input holds datetimes."""
    return v if isinstance(v, datetime) else datetime.fromisoformat(v)


# ----------------------------------------------------------------------------- personal data

_PHONE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")


def phone_ok(phone: str) -> bool:
    return bool(_PHONE.match(phone))


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def mask_contact(contact: dict[str, Any] | None) -> dict[str, Any] | None:
    """Name, phone and street masked; province and city kept (enough to plan shipping)."""
    if contact is None:
        return None
    addr = contact.get("address") or {}
    return {
        "name": mask_name(contact.get("name", "")),
        "phone": mask_phone(contact.get("phone", "")),
        "address": {
            "province": addr.get("province", ""),
            "city": addr.get("city", ""),
            "district": addr.get("district", ""),
            "detail": "****",
            "postcode": addr.get("postcode", ""),
        },
    }


# ----------------------------------------------------------------------------- verification


def available_from_seen(table: PrizeTable, stock_seen: dict[str, Any]) -> list[bool]:
    """What a logged draw saw: limited prizes with nothing left and blocked prizes (the
    member's cap reached, or PostgreSQL refused the win) were not available."""
    remaining = stock_seen.get("remaining") or {}
    blocked = set(stock_seen.get("blocked") or ())
    return [
        p.key not in blocked and (p.key not in remaining or remaining[p.key] > 0)
        for p in table.prizes
    ]


def verify_draw(
    table: PrizeTable,
    seed: bytes,
    member_id: int,
    spin_no: int,
    stock_seen: dict[str, Any],
    prize_key: str,
    random_value: int | None,
    weight_total: int,
) -> list[str]:
    """Recompute one logged draw from the seed; returns what does not match (empty: fair)."""
    avail = available_from_seen(table, stock_seen)
    # Blocks are tried in order from 0, exactly as the spin did: the server cannot skip one.
    out, _ = draw_with_blocks(
        table, avail, bool(stock_seen.get("pityDue")), seed, member_id, spin_no
    )
    problems = []
    if table.prizes[out.index].key != prize_key:
        problems.append(f"prize {prize_key!r} logged, {table.prizes[out.index].key!r} recomputed")
    if out.value != random_value:
        problems.append(f"random value {random_value} logged, {out.value} recomputed")
    if out.weight_total != weight_total:
        problems.append(f"weight total {weight_total} logged, {out.weight_total} recomputed")
    return problems


# ----------------------------------------------------------------------------- spin plan


@dataclass(frozen=True, slots=True)
class MemberSpins:
    """A member's spin counters on one wheel, as read for this spin (zeros: never spun)."""

    spins: int  # all spins so far (= the member's draws on this wheel, numbered 1..spins)
    day: date | None  # the local day the daily counters belong to
    spins_day: int
    free_used_day: int
    pity: int = 0  # spins since the last pity prize
    wins: Mapping[str, int] = field(default_factory=dict)  # wins per capped prize


@dataclass(frozen=True, slots=True)
class SpinPlan:
    """What a spin will be, decided before anything is written or drawn."""

    spin_no: int
    free: bool
    cost: int  # points debited before the draw (0 when free)
    spins_day: int  # today's spins before this one
    free_used: int  # today's free spins before this one
    free_left: int  # free spins left today after this one
    spins_left: int | None  # spins left after this one under the caps (None: no cap)


@dataclass(frozen=True, slots=True)
class SpinsLeft:
    """What a member can still do today (the member view, the launch summary)."""

    spins: int  # all spins so far
    free_left: int  # free spins left today
    today: int | None  # spins left today under the daily and campaign caps (None: no cap)
    campaign: int | None  # spins left under the campaign cap (None: no cap)


def spins_left(config: dict[str, Any], member: MemberSpins | None, today: date) -> SpinsLeft:
    """Pure: the member's spins left on ``today`` (``member`` None: never spun)."""
    same_day = member is not None and member.day == today
    spins_day = member.spins_day if member is not None and same_day else 0
    free_used = member.free_used_day if member is not None and same_day else 0
    spins = member.spins if member is not None else 0
    cap_day, cap_all = config.get("maxSpinsPerDay"), config.get("maxSpinsPerCampaign")
    left_all = None if cap_all is None else max(0, cap_all - spins)
    left_day = None if cap_day is None else max(0, cap_day - spins_day)
    if left_all is not None:
        left_day = left_all if left_day is None else min(left_day, left_all)
    free_left = max(0, int(config.get("freeSpinsPerDay", 0)) - free_used)
    return SpinsLeft(spins, free_left, left_day, left_all)


def member_spins(row: Any) -> MemberSpins | None:
    """A member's counters from a row with ``spins, day, spins_day, free_used_day`` (and
    ``pity``, ``wins`` when read); None when the row (or its left join) is empty."""
    if row is None or row["spins"] is None:
        return None
    keys = row.keys()
    return MemberSpins(
        row["spins"],
        row["day"],
        row["spins_day"] or 0,
        row["free_used_day"] or 0,
        (row["pity"] or 0) if "pity" in keys else 0,
        (row["wins"] or {}) if "wins" in keys else {},
    )


class SpinRefused(Exception):
    """A spin the rules refuse: ``code`` is the error catalogue's, ``details`` its details."""

    def __init__(self, code: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.details = details or {}


def plan_spin(config: dict[str, Any], member: MemberSpins, today: date) -> SpinPlan:
    """Pure: the spin's number, whether it is free, its cost and what is left after it.

    Raises SpinRefused WHEEL_CAP_REACHED (daily or campaign cap) or WHEEL_NO_SPINS_LEFT (no
    free spin left and the wheel sells none)."""
    same_day = member.day == today
    spins_day = member.spins_day if same_day else 0
    free_used = member.free_used_day if same_day else 0
    cap_day, cap_all = config.get("maxSpinsPerDay"), config.get("maxSpinsPerCampaign")
    if cap_day is not None and spins_day >= cap_day:
        raise SpinRefused("WHEEL_CAP_REACHED", {"cap": "day", "limit": cap_day})
    if cap_all is not None and member.spins >= cap_all:
        raise SpinRefused("WHEEL_CAP_REACHED", {"cap": "campaign", "limit": cap_all})
    free_per_day = int(config.get("freeSpinsPerDay", 0))
    free = free_used < free_per_day
    cost = 0 if free else int(config.get("costPoints", 0))
    if not free and cost <= 0:
        raise SpinRefused("WHEEL_NO_SPINS_LEFT")
    spin_no = member.spins + 1
    spins_left = None if cap_day is None else max(0, cap_day - spins_day - 1)
    if cap_all is not None:
        left_all = max(0, cap_all - spin_no)
        spins_left = left_all if spins_left is None else min(spins_left, left_all)
    return SpinPlan(
        spin_no,
        free,
        cost,
        spins_day,
        free_used,
        max(0, free_per_day - free_used - (1 if free else 0)),
        spins_left,
    )


def spin_refusal(config: dict[str, Any], status: str, level: int | None) -> SpinRefused | None:
    """Pure: why nobody (or this member, at ``level``) may spin now; None when they may.
    ``level`` None: not known yet (the level is checked once it is read)."""
    if status != "open":
        return SpinRefused("WHEEL_NOT_LIVE", {"status": status})
    min_level = int(config.get("minLevel", 0))
    if level is not None and level < min_level:
        return SpinRefused("WHEEL_LEVEL_TOO_LOW", {"minLevel": min_level, "level": level})
    return None


# ----------------------------------------------------------------------------- spin write


@dataclass(frozen=True, slots=True)
class Drawn:
    """What the stock script (service/lua/wheel_draw.lua) drew and took."""

    index: int
    word_index: int
    value: int | None
    weight_total: int
    epoch: str
    fallback: bool
    forced: bool
    remaining: list[int | None]  # per prize as the draw saw it (None: unlimited)


def blocked_prizes(table: PrizeTable, wins: Mapping[str, int], refused: set[str]) -> list[bool]:
    """Per prize: not drawable for this member (own cap reached, or PostgreSQL refused it)."""
    return [
        p.key in refused or (p.member_cap is not None and wins.get(p.key, 0) >= p.member_cap)
        for p in table.prizes
    ]


def initial_state(kind: str) -> str:
    """A won prize's fulfilment state: physical prizes wait for a claim."""
    return "won" if kind == "physical" else "issued"


@dataclass(frozen=True, slots=True)
class SpinKeys:
    """Who spins which wheel, when, and the ids made for this spin."""

    tenant_id: int
    wheel_id: int
    wheel_key: str
    table_version: int
    layout_version: int
    member_id: int
    spin_id: uuid.UUID
    award_id: int  # allocated before the draw; used only when the prize is an award
    today: date
    now: datetime


@dataclass(frozen=True, slots=True)
class MemberAdvance:
    """The member's counters after this spin (written over the row as read)."""

    spins: int
    day: date
    spins_day: int
    free_used_day: int
    pity: int
    wins: dict[str, int]


@dataclass(frozen=True, slots=True)
class SpinEvent:
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpinWrite:
    """Everything one spin writes, decided before its one statement runs: the member's
    advance, the audit row, the award, the stock counted in PostgreSQL, the ledger moves
    and the events."""

    keys: SpinKeys
    plan: SpinPlan
    drawn: Drawn
    prize: Prize
    advance: MemberAdvance
    random_word: int | None
    stock_seen: dict[str, Any]
    award_id: int | None  # None: "nothing" won, no award row
    award_state: str | None
    take_total: bool  # count one win of a prize with a total stock
    daily_limit: int | None  # count one win today of a prize with a daily stock
    credit: tuple[str, int] | None  # (currency, amount) of a points or growth prize
    events: tuple[SpinEvent, ...]

    @property
    def source_ref(self) -> str:
        return f"wheel:{self.keys.wheel_key}:{self.keys.spin_id}"


def spin_write(
    table: PrizeTable,
    keys: SpinKeys,
    member: MemberSpins,
    plan: SpinPlan,
    drawn: Drawn,
    *,
    ws: Sequence[int],
    block: int,
    blocked: Sequence[bool],
    pity_was_due: bool,
) -> SpinWrite:
    """Pure: the rows and events of one drawn spin (``ws``: the words of ``block``)."""
    prize = table.prizes[drawn.index]
    wins = dict(member.wins)
    if prize.member_cap is not None:
        wins[prize.key] = wins.get(prize.key, 0) + 1
    advance = MemberAdvance(
        plan.spin_no,
        keys.today,
        plan.spins_day + 1,
        plan.free_used + (1 if plan.free else 0),
        next_pity_count(table, member.pity, drawn.index),
        wins,
    )
    stock_seen = {
        "remaining": {p.key: drawn.remaining[i] for i, p in enumerate(table.prizes) if p.limited},
        "blocked": [p.key for i, p in enumerate(table.prizes) if blocked[i]],
        "pityDue": pity_was_due,
        "block": block,
    }
    award_id = keys.award_id if prize.kind != "nothing" else None
    return SpinWrite(
        keys,
        plan,
        drawn,
        prize,
        advance,
        ws[drawn.word_index] if drawn.word_index >= 0 else None,
        stock_seen,
        award_id,
        initial_state(prize.kind) if award_id is not None else None,
        prize.total is not None,
        prize.daily,
        (prize.kind, prize.value) if prize.kind in ("points", "growth") else None,
        spin_events(keys, plan, prize, award_id),
    )


def spin_events(
    keys: SpinKeys, plan: SpinPlan, prize: Prize, award_id: int | None
) -> tuple[SpinEvent, ...]:
    """``prize.won`` (when an award was given) then ``wheel.spun``."""
    spun = SpinEvent(
        "wheel.spun",
        {
            "wheelKey": keys.wheel_key,
            "spinId": str(keys.spin_id),
            "spinNo": plan.spin_no,
            "prizeKey": prize.key,
            "kind": prize.kind,
            "value": prize.value,
            "free": plan.free,
            "cost": plan.cost,
        },
    )
    if award_id is None:
        return (spun,)
    won = SpinEvent(
        "prize.won",
        {
            "wheelKey": keys.wheel_key,
            "spinId": str(keys.spin_id),
            "awardId": award_id,
            "prizeKey": prize.key,
            "name": prize.name,
            "kind": prize.kind,
            "value": prize.value,
        },
    )
    return (won, spun)
