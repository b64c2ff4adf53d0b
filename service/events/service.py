"""Brand events in, rewards out: validate and store rules; ingest events in batches.

A batch is one transaction with a fixed number of statements whatever its size: members are
resolved in bulk, events deduped by the brand's eventId in one insert, and all credits applied
through the ledger's bulk path. Ingesting the same event twice changes nothing. A single
event is one statement in the common case (``ingest_one``).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from service.core import outbox
from service.core.constraints import register_check, validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.http import ErrorBody
from service.core.uow import UnitOfWork
from service.events import repository as repo
from service.events import rules as erules
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
from service.points import ledger
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
MAX_EFFECT = erules.MAX_EFFECT


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


RULES_CACHE = "events.rules"
RULES_CACHE_TTL_S = 5.0


async def _rules_by_type(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int
) -> dict[str, list[erules.Rule]]:
    """Rules cached per process; a change reaches every process within a second (the rule's
    writer publishes it, see service.core.cache)."""

    async def load() -> dict[str, list[erules.Rule]]:
        by_type: dict[str, list[erules.Rule]] = {}
        for row in await repo.list_rules(conn, tenant_id):
            spec = msgspec.convert(row["config"], RuleIn)
            by_type.setdefault(spec.event_type, []).append(
                erules.Rule(
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


def _future_details(e: EventIn, now: datetime) -> dict[str, Any]:
    """EVENT_IN_FUTURE: the time sent, the time received and the latest time accepted."""
    return {
        "occurredAt": e.occurred_at.isoformat(),
        "receivedAt": now.isoformat(),
        "latestAccepted": (now + timedelta(seconds=FUTURE_SLACK_S)).isoformat(),
        "slackSeconds": FUTURE_SLACK_S,
    }


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
            res.status, res.error = "rejected", _error("EVENT_IN_FUTURE", _future_details(e, now))
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
        conn, tenant_id, [_received(e, mid) for _, e, mid in known], now
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
    keys = {
        k
        for _, e, mid in fresh
        for k in erules.cap_keys(by_type.get(e.type, []), e, mid, policy.tz)
    }
    used = await repo.lock_usage(conn, tenant_id, sorted(keys, key=str)) if keys else {}
    before = dict(used)
    credits: list[points.Credit] = []
    credit_slots: list[EffectOut] = []
    reversals: list[tuple[int, str, str]] = []
    for i, e, mid in fresh:
        plan = erules.plan_event(
            by_type.get(e.type, []), e, mid, multipliers.get(mid, 100), used, policy.tz
        )
        for c in plan.credits:
            effect = EffectOut(c.rule, "credit", c.currency, c.amount, None, c.capped)
            results[i].effects.append(effect)
            if c.amount > 0:
                credits.append(_credit(e, mid, c))
                credit_slots.append(effect)
        reversals.extend((i, rule, original) for rule, original in plan.reversals)
    added = {k: used[k] - before.get(k, 0) for k in used if used[k] != before.get(k, 0)}
    if added:
        await repo.add_usage(conn, tenant_id, added)
    if credits:
        entries = await points.apply_credits(uow, tenant_id, credits)
        for effect, entry in zip(credit_slots, entries, strict=True):
            effect.entry_id = entry.id
    for i, rule_key, original in reversals:
        await _reverse_event(uow, tenant_id, results[i], rule_key, original)
    for i, e, mid in fresh:
        if results[i].status == "applied":
            uow.emit(**_member_event(tenant_id, e, mid))
    return _summary(results)


def _received(e: EventIn, member_id: int | None) -> repo.ReceivedEvent:
    return repo.ReceivedEvent(
        event_id=e.event_id,
        member_id=member_id,
        type=e.type,
        value=None if e.value is None else repr(e.value),
        attributes=e.attributes,
        occurred_at=e.occurred_at,
    )


def _credit(e: EventIn, member_id: int, c: erules.PlannedCredit) -> points.Credit:
    return points.Credit(
        member_id,
        c.currency,
        c.amount,
        f"rule:{c.rule}",
        "",
        f"event:{e.event_id}",
        f"ev:{e.event_id}:{c.rule}:{c.currency}",
        key_is_new=True,  # the event was recorded as new in the same transaction
    )


def _member_event(tenant_id: int, e: EventIn, member_id: int | None) -> dict[str, Any]:
    """The ``member.event`` outbox event of an applied event (``uow.emit`` keywords)."""
    return {
        "tenant_id": tenant_id,
        "type": "member.event",
        "member_id": member_id,
        "payload": {
            "type": e.type,
            "value": e.value,
            "eventId": e.event_id,
            "attributes": e.attributes,
        },
        "occurred_at": e.occurred_at,
    }


async def ingest_one(uow: UnitOfWork, tenant_id: int, event: EventIn) -> IngestOut:
    """One event (not a batch): its rejection is the request's error (and nothing changes).

    The common case is ONE statement (``SINGLE_SQL``): the member found by externalId, the
    event recorded as new (dedupe by eventId), the daily-cap counters moved (guarded), the
    ledger posting and the ``member.event`` outbox row. Before it, at most one read of the
    member's state, only when the plan depends on it (a daily cap; a level multiplier while
    the tenant has a ladder). Rare cases take a transaction (``uow.transactional()``): an
    unknown member to create, a reversal by event, a cap counter moved by a concurrent request
    three times in a row."""
    if not uow.single_statement:
        return await _ingest_one_tx(uow, tenant_id, event)
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    if (event.occurred_at - now).total_seconds() > FUTURE_SLACK_S:
        raise DomainError("EVENT_IN_FUTURE", details=_future_details(event, now))
    policy = await points.policy_of(ctx, conn, tenant_id)
    rules = (await _rules_by_type(ctx, conn, tenant_id)).get(event.type, [])
    if any(isinstance(r.spec.effect, ReverseEffect) for r in erules.triggered(rules, event)):
        async with uow.transactional() as tx:
            return await _ingest_one_tx(tx, tenant_id, event)
    ladder = await points.ladder_of(ctx, conn, tenant_id)
    for _ in range(3):
        out = await _ingest_one_statement(uow, tenant_id, event, rules, policy, ladder, now)
        if out is not None:
            return out
    async with uow.transactional() as tx:
        return await _ingest_one_tx(tx, tenant_id, event)


async def _ingest_one_tx(uow: UnitOfWork, tenant_id: int, event: EventIn) -> IngestOut:
    out = await ingest(uow, tenant_id, [event])
    err = out.results[0].error
    if err is not None:
        raise DomainError(err.code, details=err.details)
    return out


# $1 tenant, $2 externalId, $3-$7 the event, $8 now, $9 ledger postings, $10-$13 the cap
# counters (rule, day, amount read or -1 when there was no row, amount to add), $14-$19 the
# member.event outbox row (its member taken from the statement).
SINGLE_SQL = (
    "WITH m AS (SELECT id FROM members WHERE tenant_id = $1 AND external_id = $2 "
    "AND erased_at IS NULL), "
    "fresh AS (INSERT INTO member_events (tenant_id, event_id, member_id, type, value, "
    "attributes, occurred_at, received_at) SELECT $1, $3, m.id, $4, $5, $6, $7, $8 FROM m "
    "ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING member_id), "
    "caps AS (SELECT * FROM unnest($10::text[], $11::date[], $12::bigint[], $13::bigint[]) "
    "AS c(r, d, seen, add)), "
    # A counter moved since it was read: no row here, and the guard below fails the statement.
    "cap_up AS (UPDATE rule_daily_usage u SET amount = u.amount + caps.add FROM fresh, caps "
    "WHERE u.tenant_id = $1 AND u.rule_key = caps.r AND u.member_id = fresh.member_id "
    "AND u.day = caps.d AND caps.seen >= 0 AND u.amount = caps.seen RETURNING 1), "
    "cap_new AS (INSERT INTO rule_daily_usage (tenant_id, rule_key, member_id, day, amount) "
    "SELECT $1, caps.r, fresh.member_id, caps.d, caps.add FROM fresh, caps WHERE caps.seen < 0 "
    "ON CONFLICT DO NOTHING RETURNING 1), "
    "led AS (SELECT CASE WHEN (SELECT count(*) FROM cap_up) + (SELECT count(*) FROM cap_new) "
    f"= cardinality($10::text[]) THEN {ledger.call_sql('$1', '$8', '$9', 'fresh.member_id')} "
    "WHEN engage_conflict() THEN NULL END AS entries FROM fresh), "
    f"ev AS ({outbox.insert_sql(14, each='fresh', member='fresh.member_id')}) "
    "SELECT (SELECT id FROM m) AS member_id, (SELECT member_id FROM fresh) AS fresh_member, "
    "(SELECT entries FROM led) AS entries"
)

STATE_SQL = (
    "SELECT m.id, (SELECT level_index FROM member_levels l WHERE l.tenant_id = $1 "
    "AND l.member_id = m.id) AS level_index, ARRAY(SELECT coalesce(u.amount, -1) "
    "FROM unnest($3::text[], $4::date[]) WITH ORDINALITY AS c(r, d, o) "
    "LEFT JOIN rule_daily_usage u ON u.tenant_id = $1 AND u.rule_key = c.r "
    "AND u.member_id = m.id AND u.day = c.d ORDER BY c.o) AS used "
    "FROM members m WHERE m.tenant_id = $1 AND m.external_id = $2 AND m.erased_at IS NULL"
)


async def _ingest_one_statement(
    uow: UnitOfWork,
    tenant_id: int,
    event: EventIn,
    rules: list[erules.Rule],
    policy: Any,
    ladder: Any,
    now: Any,
) -> IngestOut | None:
    """One try of the one-statement path; None when a cap counter moved meanwhile."""
    ctx, conn = uow.ctx, uow.conn
    member_id, pct, seen = 0, 100, {}
    keys = erules.cap_keys(rules, event, 0, policy.tz)
    if erules.needs_member_state(rules, event, ladder is not None):
        row = await conn.fetchrow(
            STATE_SQL,
            tenant_id,
            event.external_id,
            [k.rule for k in keys],
            [k.day for k in keys],
        )
        if row is None:
            return await _unknown_member(uow, tenant_id, event, policy)
        member_id = row["id"]
        keys = erules.cap_keys(rules, event, member_id, policy.tz)
        seen = dict(zip(keys, row["used"], strict=True))
        if ladder is not None and row["level_index"] is not None:
            levels = ladder[0].levels
            pct = levels[min(row["level_index"], len(levels) - 1)].points_multiplier_pct
    used = {k: max(v, 0) for k, v in seen.items()}
    plan = erules.plan_event(rules, event, member_id, pct, used, policy.tz)
    expires = await points.expiry_at(ctx, conn, tenant_id, "points", now)
    postings = [
        points.credit_posting(_credit(event, member_id, c), expires)
        for c in plan.credits
        if c.amount > 0
    ]
    for p in postings:
        p.member_id = None  # the statement's member
    member_event = outbox.OutboxRow(event_id=uuid.uuid4(), **_member_event(tenant_id, event, None))
    r = _received(event, None)
    try:
        with ledger.refusals():
            row = await conn.fetchrow(
                SINGLE_SQL,
                tenant_id,
                event.external_id,
                r.event_id,
                r.type,
                r.value,
                r.attributes,
                r.occurred_at,
                now,
                postings,
                [k.rule for k in keys],
                [k.day for k in keys],
                [seen[k] for k in keys],
                [used[k] - max(seen[k], 0) for k in keys],
                *outbox.params([member_event]),
            )
    except asyncpg.SerializationError:
        return None
    if row["member_id"] is None:  # the statement wrote nothing: the transactional path
        return await _unknown_member(uow, tenant_id, event, policy)
    uow.committed()  # the one statement committed: the unit's commit point
    result = EventResult(event.event_id, "applied")
    if row["fresh_member"] is None:
        result.status = "duplicate"
        return _summary([result])
    entries = iter(ledger.entries_of(row["entries"]))
    for c in plan.credits:
        entry = next(entries) if c.amount > 0 else None
        result.effects.append(
            EffectOut(c.rule, "credit", c.currency, c.amount, entry.id if entry else None, c.capped)
        )
    uow.wake_dispatcher()
    return _summary([result])


async def _unknown_member(
    uow: UnitOfWork, tenant_id: int, event: EventIn, policy: Any
) -> IngestOut:
    """No live member of this externalId: the batch path (in a transaction) creates it
    (policy ``create``) or refuses the event as unknown (MEMBER_NOT_FOUND) or as erased
    (MEMBER_ERASED, whatever the policy)."""
    del policy  # the batch path reads it again
    async with uow.transactional() as tx:
        return await _ingest_one_tx(tx, tenant_id, event)


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
