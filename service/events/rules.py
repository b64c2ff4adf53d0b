"""Pure rules of event ingestion: which rules an event triggers and what each one credits.

Nothing here does I/O or reads the clock. The single-event path and the batch path plan with
the same function (``plan_event``), from the member's state (level multiplier, what the daily
caps already counted) passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from service.events.schemas import EventIn, ReverseEffect, RuleIn
from service.points import rules as prules

MAX_EFFECT = 100_000_000  # the most one event may credit through one rule


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule, parsed once (cached per process)."""

    key: str
    spec: RuleIn
    conditions: list[prules.Condition]


@dataclass(frozen=True, slots=True)
class CapKey:
    """A daily-cap counter: how much ``rule`` credited ``member_id`` on local ``day``."""

    rule: str
    member_id: int
    day: date


@dataclass(frozen=True, slots=True)
class PlannedCredit:
    """What one rule credits for one event (``amount`` 0: nothing is written)."""

    rule: str
    currency: str
    amount: int
    capped: bool
    cap_key: CapKey | None


@dataclass(slots=True)
class EventPlan:
    credits: list[PlannedCredit] = field(default_factory=list)
    reversals: list[tuple[str, str]] = field(default_factory=list)  # (rule, original event id)


def triggered(rules: list[Rule], event: EventIn) -> list[Rule]:
    """The live rules of the event's type whose window and conditions hold."""
    out = []
    for r in rules:
        spec = r.spec
        if spec.state != "live":
            continue
        if (spec.starts_at and event.occurred_at < spec.starts_at) or (
            spec.ends_at and event.occurred_at >= spec.ends_at
        ):
            continue
        if prules.all_hold(r.conditions, event.attributes):
            out.append(r)
    return out


def cap_keys(rules: list[Rule], event: EventIn, member_id: int, tz: ZoneInfo) -> list[CapKey]:
    """The cap counters the event's triggered rules touch."""
    day = prules.local_day(event.occurred_at, tz)
    return [
        CapKey(r.key, member_id, day)
        for r in triggered(rules, event)
        if r.spec.cap_per_member_per_day is not None
        and not isinstance(r.spec.effect, ReverseEffect)
    ]


def needs_member_state(rules: list[Rule], event: EventIn, has_ladder: bool) -> bool:
    """True when the plan depends on the member's state: a daily cap, or a level multiplier
    of points while the tenant has a ladder."""
    for r in triggered(rules, event):
        eff = r.spec.effect
        if isinstance(eff, ReverseEffect):
            continue
        if r.spec.cap_per_member_per_day is not None:
            return True
        if has_ladder and eff.currency == "points" and eff.apply_level_multiplier:
            return True
    return False


def plan_event(
    rules: list[Rule],
    event: EventIn,
    member_id: int,
    multiplier_pct: int,
    used: dict[CapKey, int],
    tz: ZoneInfo,
) -> EventPlan:
    """Plan one event of one member. ``used``: what each cap counter holds so far; it is
    raised by what this plan credits (so a batch plans its events in order)."""
    plan = EventPlan()
    for r in triggered(rules, event):
        spec, eff = r.spec, r.spec.effect
        if isinstance(eff, ReverseEffect):
            original = event.attributes.get(eff.original_event_id_attribute)
            if isinstance(original, str | int):
                plan.reversals.append((r.key, str(original)))
            continue
        amount = prules.effect_amount(
            eff.mode,
            eff.amount,
            prules.parse_value(eff.unit) or prules.parse_value(1),  # type: ignore[arg-type]
            prules.parse_value(event.value),
        )
        if eff.currency == "points" and eff.apply_level_multiplier:
            amount = prules.apply_multiplier(amount, multiplier_pct)
        # No single effect may exceed MAX_EFFECT: a runaway value (1e12 yuan, a tiny unit)
        # is clamped rather than overflowing the ledger's 64-bit integers.
        capped = amount > MAX_EFFECT
        amount = min(amount, MAX_EFFECT)
        key = None
        if spec.cap_per_member_per_day is not None:
            key = CapKey(r.key, member_id, prules.local_day(event.occurred_at, tz))
            allowed = prules.capped(amount, spec.cap_per_member_per_day, used.get(key, 0))
            capped = capped or allowed < amount
            amount = allowed
            used[key] = used.get(key, 0) + amount
        plan.credits.append(PlannedCredit(r.key, eff.currency, amount, capped, key))
    return plan
