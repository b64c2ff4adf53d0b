"""Brand events in, rewards out: validate and store rules; ingest events in batches.

A batch is one transaction with a fixed number of statements whatever its size: members are
resolved in bulk, events deduped by the brand's eventId in one insert, and all credits applied
through the ledger's bulk path. Ingesting the same event twice changes nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec

from service.core.constraints import register_check, validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.http import ErrorBody
from service.core.uow import UnitOfWork
from service.events import repository as repo
from service.events.schemas import (
    EffectOut,
    EventIn,
    EventResult,
    IngestOut,
    ReverseEffect,
    RuleIn,
    RuleOut,
)
from service.members import service as members
from service.points import rules as prules
from service.points import service as points

register_codes(
    {
        "ORIGINAL_EVENT_UNKNOWN": (
            409,
            "原事件尚未收到，请稍后重发",
            "The original event has not arrived yet; send this one again later.",
        ),
        "MEMBER_ERASED": (
            410,
            "该会员的个人信息已删除",
            "The member's personal data was erased (privacy): events for this externalId are "
            "refused and never re-create the member; do not resend them.",
        ),
    }
)

FUTURE_SLACK_S = 300  # brand clocks drift; an event a few minutes "ahead" is accepted
MAX_EFFECT = 100_000_000  # the most one event may credit through one rule


def rule_problems(rule: RuleIn) -> list[dict]:
    problems = [
        {"path": "conditions", "problem": p}
        for p in prules.condition_problems(
            [prules.Condition(c.attribute, c.op, c.value) for c in rule.conditions]
        )
    ]
    if rule.starts_at and rule.ends_at and rule.ends_at <= rule.starts_at:
        problems.append({"path": "endsAt", "problem": "must be after startsAt"})
    if isinstance(rule.effect, ReverseEffect) and rule.cap_per_member_per_day is not None:
        problems.append({"path": "capPerMemberPerDay", "problem": "a reversal has no cap"})
    return problems


register_check(RuleIn, rule_problems)


async def put_rule(uow: UnitOfWork, tenant_id: int, key: str, rule: RuleIn) -> RuleOut:
    ctx, conn = uow.ctx, uow.conn
    problems = rule_problems(rule)
    if problems:
        raise validation_failed(problems)
    version = await repo.put_rule(
        conn, tenant_id, key, rule.event_type, msgspec.to_builtins(rule), ctx.clock.now()
    )
    uow.after_commit(functools.partial(ctx.caches.changed, RULES_CACHE, tenant_id))
    return RuleOut(key, version, ctx.clock.now(), rule)


def _rule_out(row: Any) -> RuleOut:
    return RuleOut(
        row["key"], row["version"], row["updated_at"], msgspec.convert(row["config"], RuleIn)
    )


async def get_rule(conn: asyncpg.Connection, tenant_id: int, key: str) -> RuleOut:
    row = await repo.get_rule(conn, tenant_id, key)
    if row is None:
        raise DomainError("RULE_NOT_FOUND", details={"key": key})
    return _rule_out(row)


async def list_rules(conn: asyncpg.Connection, tenant_id: int) -> list[RuleOut]:
    return [_rule_out(r) for r in await repo.list_rules(conn, tenant_id)]


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    spec: RuleIn
    conditions: list[prules.Condition]


RULES_CACHE = "events.rules"
RULES_CACHE_TTL_S = 5.0


async def _rules_by_type(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int
) -> dict[str, list[_Rule]]:
    """Rules cached per process; a change reaches every process within a second (the rule's
    writer publishes it, see service.core.cache)."""

    async def load() -> dict[str, list[_Rule]]:
        by_type: dict[str, list[_Rule]] = {}
        for row in await repo.list_rules(conn, tenant_id):
            spec = msgspec.convert(row["config"], RuleIn)
            by_type.setdefault(spec.event_type, []).append(
                _Rule(
                    row["key"],
                    spec,
                    [prules.Condition(c.attribute, c.op, c.value) for c in spec.conditions],
                )
            )
        return by_type

    return await ctx.caches.get(RULES_CACHE, RULES_CACHE_TTL_S).get(tenant_id, load)


def _error(code: str, details: dict | None = None) -> ErrorBody:
    err = DomainError(code, details=details)
    return ErrorBody(err.code, err.localized_message("en"), err.details)


async def ingest(uow: UnitOfWork, tenant_id: int, events: list[EventIn]) -> IngestOut:
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    policy = await points.policy_of(ctx, conn, tenant_id)
    results: list[EventResult] = []
    seen: set[str] = set()
    candidates: list[tuple[int, EventIn]] = []
    for e in events:
        res = EventResult(e.event_id, "applied")
        results.append(res)
        if e.event_id in seen:
            res.status = "duplicate"
            continue
        seen.add(e.event_id)
        if (e.occurred_at - now).total_seconds() > FUTURE_SLACK_S:
            res.status, res.error = (
                "rejected",
                _error(
                    "EVENT_IN_FUTURE",
                    {
                        "occurredAt": e.occurred_at.isoformat(),
                        "receivedAt": now.isoformat(),
                        "latestAccepted": (now + timedelta(seconds=FUTURE_SLACK_S)).isoformat(),
                        "slackSeconds": FUTURE_SLACK_S,
                    },
                ),
            )
            continue
        candidates.append((len(results) - 1, e))
    wanted = sorted({e.external_id for _, e in candidates})
    # An erased member is never re-created by events (their externalId stays taken): each of
    # their events is rejected with MEMBER_ERASED, the same on every resend.
    ids, erased = await members.resolve_for_events(
        uow, tenant_id, wanted, policy.unknown_member == "create"
    )
    known: list[tuple[int, EventIn, int]] = []
    for i, e in candidates:
        mid = ids.get(e.external_id)
        if e.external_id in erased:
            results[i].status = "rejected"
            results[i].error = _error("MEMBER_ERASED", {"externalId": e.external_id})
        elif mid is None:
            results[i].status = "rejected"
            results[i].error = _error("MEMBER_NOT_FOUND", {"externalId": e.external_id})
        else:
            known.append((i, e, mid))
    return await _apply_known(uow, tenant_id, policy, results, known)


async def apply_member_events(
    uow: UnitOfWork,
    tenant_id: int,
    events: list[tuple[int, EventIn]],
) -> IngestOut:
    """Public: run the tenant's event rules for events of members known by id, as if the
    brand had posted them (other features raise events such as ``referral.joined`` this way,
    so the operator's existing rules reward them). ``events`` are (member id, event); the
    event's ``external_id`` is not used. A repeated ``event_id`` changes nothing (duplicate).
    Runs in the caller's transaction."""
    policy = await points.policy_of(uow.ctx, uow.conn, tenant_id)
    results = [EventResult(e.event_id, "applied") for _, e in events]
    known = [(i, e, mid) for i, (mid, e) in enumerate(events)]
    return await _apply_known(uow, tenant_id, policy, results, known)


async def _apply_known(
    uow: UnitOfWork,
    tenant_id: int,
    policy: Any,
    results: list[EventResult],
    known: list[tuple[int, EventIn, int]],
) -> IngestOut:
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    new_ids = await repo.insert_member_events(
        conn,
        tenant_id,
        [
            (
                e.event_id,
                mid,
                e.type,
                None if e.value is None else repr(e.value),
                e.attributes,
                e.occurred_at,
            )
            for _, e, mid in known
        ],
        now,
    )
    fresh: list[tuple[int, EventIn, int]] = []
    for i, e, mid in known:
        if e.event_id in new_ids:
            fresh.append((i, e, mid))
        else:
            results[i].status = "duplicate"
    if not fresh:
        return _summary(results)

    by_type = await _rules_by_type(ctx, conn, tenant_id)
    multipliers = await points.level_multiplier_pcts(
        ctx, conn, tenant_id, sorted({m for _, _, m in fresh})
    )
    # Daily caps: lock the counters of every (rule, member, local day) this batch touches.
    cap_keys = set()
    for _, e, mid in fresh:
        for r in by_type.get(e.type, ()):
            if r.spec.cap_per_member_per_day is not None:
                cap_keys.add((r.key, mid, prules.local_day(e.occurred_at, policy.tz)))
    used = await repo.lock_usage(conn, tenant_id, sorted(cap_keys, key=str)) if cap_keys else {}
    used_added: dict[tuple[str, int, Any], int] = {}
    credits: list[points.Credit] = []
    credit_slots: list[tuple[int, EffectOut]] = []
    reversals: list[tuple[int, str, str]] = []
    for i, e, mid in fresh:
        for r in by_type.get(e.type, ()):
            spec = r.spec
            if spec.state != "live":
                continue
            if (spec.starts_at and e.occurred_at < spec.starts_at) or (
                spec.ends_at and e.occurred_at >= spec.ends_at
            ):
                continue
            if not prules.all_hold(r.conditions, e.attributes):
                continue
            eff = spec.effect
            if isinstance(eff, ReverseEffect):
                original = e.attributes.get(eff.original_event_id_attribute)
                if isinstance(original, str | int):
                    reversals.append((i, r.key, str(original)))
                continue
            amount = prules.effect_amount(
                eff.mode,
                eff.amount,
                prules.parse_value(eff.unit) or prules.parse_value(1),  # type: ignore[arg-type]
                prules.parse_value(e.value),
            )
            if eff.currency == "points" and eff.apply_level_multiplier:
                amount = prules.apply_multiplier(amount, multipliers.get(mid, 100))
            # No single effect may exceed MAX_EFFECT: a runaway value (1e12 yuan, a tiny unit)
            # is clamped rather than overflowing the ledger's 64-bit integers.
            was_capped = amount > MAX_EFFECT
            amount = min(amount, MAX_EFFECT)
            if spec.cap_per_member_per_day is not None:
                ck = (r.key, mid, prules.local_day(e.occurred_at, policy.tz))
                so_far = used.get(ck, 0) + used_added.get(ck, 0)
                allowed = prules.capped(amount, spec.cap_per_member_per_day, so_far)
                was_capped = was_capped or allowed < amount
                amount = allowed
                if amount > 0:
                    used_added[ck] = used_added.get(ck, 0) + amount
            effect = EffectOut(r.key, "credit", eff.currency, amount, None, was_capped)
            results[i].effects.append(effect)
            if amount > 0:
                credits.append(
                    points.Credit(
                        mid,
                        eff.currency,
                        amount,
                        f"rule:{r.key}",
                        "",
                        f"event:{e.event_id}",
                        f"ev:{e.event_id}:{r.key}:{eff.currency}",
                        key_is_new=True,  # the event was recorded as new just above
                    )
                )
                credit_slots.append((i, effect))
    if used_added:
        await repo.add_usage(
            conn, tenant_id, [(k[0], k[1], k[2], v) for k, v in used_added.items()]
        )
    if credits:
        entries = await points.apply_credits(uow, tenant_id, credits)
        for (_, effect), entry in zip(credit_slots, entries, strict=True):
            effect.entry_id = entry.id
    for i, rule_key, original in reversals:
        await _reverse_event(uow, tenant_id, results[i], rule_key, original)
    for i, e, mid in fresh:
        if results[i].status == "applied":
            uow.emit(
                tenant_id=tenant_id,
                type="member.event",
                member_id=mid,
                payload={
                    "type": e.type,
                    "value": e.value,
                    "eventId": e.event_id,
                    "attributes": e.attributes,
                },
                occurred_at=e.occurred_at,
            )
    return _summary(results)


async def ingest_one(uow: UnitOfWork, tenant_id: int, event: EventIn) -> IngestOut:
    """One event (not a batch): its rejection is the request's error (and nothing changes)."""
    out = await ingest(uow, tenant_id, [event])
    err = out.results[0].error
    if err is not None:
        raise DomainError(err.code, details=err.details)
    return out


async def _reverse_event(
    uow: UnitOfWork,
    tenant_id: int,
    result: EventResult,
    rule_key: str,
    original: str,
) -> None:
    conn = uow.conn
    try:
        if not await repo.event_known(conn, tenant_id, original):
            # The refund arrived before its order (brand back ends retry out of order).
            # Reject it and forget it, so its retry is applied once the order is in; applying
            # it now would reverse nothing and the order's points would stay.
            raise DomainError("ORIGINAL_EVENT_UNKNOWN", details={"originalEventId": original})
        # A savepoint: a refused reversal must not undo the rest of the batch.
        async with uow.savepoint():
            for entry_id in await points.credits_from_source(conn, tenant_id, f"event:{original}"):
                rev = await points.reverse(
                    uow,
                    tenant_id,
                    entry_id,
                    reason=f"rule:{rule_key}",
                    note=f"event {original}",
                )
                result.effects.append(
                    EffectOut(rule_key, "reverse", rev.currency, rev.delta, rev.id)
                )
    except DomainError as exc:
        result.effects.clear()
        result.status = "rejected"
        result.error = ErrorBody(exc.code, exc.localized_message("en"), exc.details)
        # Forget the event so the brand can send it again once the situation allows.
        await repo.forget_event(conn, tenant_id, result.event_id)


def _summary(results: list[EventResult]) -> IngestOut:
    return IngestOut(
        sum(r.status == "applied" for r in results),
        sum(r.status == "duplicate" for r in results),
        sum(r.status == "rejected" for r in results),
        results,
    )
