"""Reminders: the tenant's config, members' one-time grants, scheduling per occasion (from
events and a periodic scan), and the sender worker.

A reminder is a row unique per (member, kind, occasion): scheduling the same occasion again
does nothing, so no member gets the same reminder twice. Sending spends one of the member's
grants for the kind's template (a grant is one "allow" tapped in wx.requestSubscribeMessage);
without one the reminder is recorded as ``no_grant`` and never sent. A grant spent on a
reminder stays bound to it through retries, so a retry never spends a second one.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import structlog

from service.checkins import service as checkins
from service.core import outbox
from service.core.constraints import validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.outbox import Event
from service.core.tenancy import find_wechat_app
from service.core.uow import UnitOfWork
from service.points import service as points
from service.reminders import repository as repo
from service.reminders import rules
from service.reminders.schemas import (
    ReminderConfigIn,
    ReminderConfigOut,
    ReminderOut,
    ReminderPage,
    SubscriptionsIn,
    SubscriptionsOut,
    TemplateGrants,
)
from service.reminders.senders import SENDERS, Message
from service.webhooks import rules as webhook_rules
from service.webhooks import service as webhooks

log = structlog.get_logger("engage.reminders")

SUBSCRIBER = "reminders"
EVENT_TYPES = ("prize.shipped", "pk.settled")
LEASE = timedelta(minutes=2)

register_codes(
    {
        "REMINDERS_NOT_CONFIGURED": (
            404,
            "未配置提醒",
            "Reminders are not configured for this tenant.",
        ),
    }
)


async def put_config(uow: UnitOfWork, tenant_id: int, data: ReminderConfigIn) -> ReminderConfigOut:
    """Validated as a whole (422 VALIDATION_FAILED with every problem)."""
    ctx, conn = uow.ctx, uow.conn
    problems: list[dict[str, str]] = []
    for kind, template in data.templates.items():
        for key, code, problem in rules.template_problems(kind, template.fields):
            problems.append(
                {
                    "source": "body",
                    "path": f"templates.{kind}.fields.{key}",
                    "code": code,
                    "problem": problem,
                }
            )
    if data.sender == "wechat":
        app = await find_wechat_app(conn, data.app_id) if data.app_id else None
        if app is None or app["tenant_id"] != tenant_id:
            problems.append(
                {
                    "source": "body",
                    "path": "appId",
                    "code": "APP_UNKNOWN",
                    "problem": "name a registered appId",
                }
            )
    if data.sender == "webhook":
        if not data.webhook_url:
            problems.append(
                {"source": "body", "path": "webhookUrl", "code": "REQUIRED", "problem": "required"}
            )
        else:
            problems += [
                {**p, "path": "webhookUrl"}
                for p in await webhooks.target_problems(ctx, data.webhook_url)
            ]
        secret_problem = (
            webhook_rules.secret_problem(data.webhook_secret) if data.webhook_secret else "required"
        )
        if secret_problem:
            problems.append(
                {
                    "source": "body",
                    "path": "webhookSecret",
                    "code": "SECRET_INVALID",
                    "problem": secret_problem,
                }
            )
    if problems:
        raise validation_failed(problems)
    row = await repo.put_config(conn, tenant_id, msgspec.to_builtins(data), ctx.clock.now())
    return _config_out(row)


def _config_out(row: asyncpg.Record) -> ReminderConfigOut:
    cfg = msgspec.convert(row["config"], ReminderConfigIn)
    return ReminderConfigOut(
        sender=cfg.sender,
        templates={str(k): v for k, v in cfg.templates.items()},
        checkin_remind_at=cfg.checkin_remind_at,
        points_expiring_days=cfg.points_expiring_days,
        updated_at=row["updated_at"],
        app_id=cfg.app_id,
        webhook_url=cfg.webhook_url,
        quiet_hours=cfg.quiet_hours,
    )


async def get_config(ctx: Context, tenant_id: int) -> ReminderConfigOut:
    async with ctx.db.connection() as conn:
        row = await repo.get_config(conn, tenant_id)
    if row is None:
        raise DomainError("REMINDERS_NOT_CONFIGURED")
    return _config_out(row)


async def _subscriptions(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> SubscriptionsOut:
    row = await repo.get_config(conn, tenant_id)
    kinds: dict[str, list[str]] = {}
    for kind, t in ((row["config"] or {}).get("templates", {}) if row else {}).items():
        kinds.setdefault(t["templateId"], []).append(kind)
    available = {
        r["template_id"]: r["available"]
        for r in await repo.available_grants(conn, tenant_id, member_id)
    }
    ids = sorted(set(kinds) | set(available))
    return SubscriptionsOut(
        [TemplateGrants(t, available.get(t, 0), sorted(kinds.get(t, []))) for t in ids]
    )


async def record_grants(
    uow: UnitOfWork, tenant_id: int, member_id: int, data: SubscriptionsIn
) -> SubscriptionsOut:
    """One grant per ``accept`` in the client's wx.requestSubscribeMessage result."""
    accepted = sorted(t for t, choice in data.results.items() if choice == "accept")
    await repo.add_grants(uow.conn, tenant_id, member_id, accepted, uow.ctx.clock.now())
    return await _subscriptions(uow.conn, tenant_id, member_id)


async def my_subscriptions(ctx: Context, tenant_id: int, member_id: int) -> SubscriptionsOut:
    async with ctx.db.connection() as conn:
        return await _subscriptions(conn, tenant_id, member_id)


async def list_reminders(
    ctx: Context, tenant_id: int, member_id: int | None, limit: int
) -> ReminderPage:
    async with ctx.db.connection() as conn:
        rows = await repo.list_recent(conn, tenant_id, member_id, limit)
    return ReminderPage(
        [
            ReminderOut(
                id=r["id"],
                member_id=r["member_id"],
                kind=r["kind"],
                occasion=r["occasion"],
                status=r["status"],
                attempts=r["attempts"],
                created_at=r["created_at"],
                not_before=r["not_before"],
                sent_at=r["sent_at"],
                last_error=r["last_error"],
            )
            for r in rows
        ]
    )


def _reminder(tenant_id: int, member_id: int, kind: str, occasion: str, values: dict) -> dict:
    return {
        "tenant_id": tenant_id,
        "member_id": member_id,
        "kind": kind,
        "occasion": occasion[:128],
        "values": values,
    }


async def on_events(ctx: Context, events: list[Event]) -> None:
    """Outbox subscriber: ``prize.shipped`` and ``pk.settled`` schedule reminders for tenants
    that configured the kind, in the transaction that moves this subscriber's outbox cursor
    (and idempotent per occasion, so a re-handed event adds nothing)."""
    async with ctx.db.transaction() as conn:
        await outbox.advance_cursor(conn, SUBSCRIBER, events[-1])
        configs: dict[int, dict[str, Any]] = {}
        rows = []
        for ev in events:
            if ev.member_id is None:
                continue
            if ev.tenant_id not in configs:
                row = await repo.get_config(conn, ev.tenant_id)
                configs[ev.tenant_id] = (row["config"] if row else None) or {}
            templates = configs[ev.tenant_id].get("templates", {})
            p = ev.payload
            if ev.type == "prize.shipped" and "prize.shipped" in templates:
                values = {
                    "prize": p.get("name") or p.get("prizeKey", ""),
                    "carrier": p.get("carrier", ""),
                    "trackingNo": p.get("trackingNo", ""),
                }
                occasion = f"award:{p.get('awardId', ev.event_id)}"
                rows.append(
                    _reminder(ev.tenant_id, ev.member_id, "prize.shipped", occasion, values)
                )
            elif ev.type == "pk.settled" and "pk.result" in templates:
                pk = p.get("pkKey") or p.get("pkId") or str(ev.event_id)
                values = {"pk": p.get("title") or pk, "result": p.get("result", "")}
                rows.append(_reminder(ev.tenant_id, ev.member_id, "pk.result", f"pk:{pk}", values))
        await repo.schedule(conn, rows, ctx.clock.now())


async def scan(ctx: Context) -> int:
    """Periodic: schedule streak-at-risk reminders past each tenant's chosen local time, and
    points-expiring reminders (one per member per first expiry day). Returns rows added."""
    now = ctx.clock.now()
    added = 0
    async with ctx.db.connection() as conn:
        tenants = await repo.configured_tenants(conn)
    for t in tenants:
        cfg = msgspec.convert(t["config"], ReminderConfigIn)
        tz = ZoneInfo(t["timezone"])
        rows = []
        async with ctx.db.transaction() as conn:
            if "checkin.streak_at_risk" in cfg.templates and rules.past_local_time(
                now, tz, rules.parse_hhmm(cfg.checkin_remind_at)
            ):
                today = rules.local_day(now, tz)
                # Useless once the day is over (the streak has broken): quiet hours that
                # outlast the day drop it instead of sending it in the morning.
                day_ends = rules.end_of_day(today, tz).isoformat()
                for campaign, member_id, streak in await checkins.streaks_at_risk(
                    ctx, conn, t["tenant_id"], today
                ):
                    values = {
                        "campaign": campaign,
                        "streak": streak,
                        "deadline": "23:59",
                        "expiresAt": day_ends,
                    }
                    rows.append(
                        _reminder(
                            t["tenant_id"],
                            member_id,
                            "checkin.streak_at_risk",
                            f"{campaign}:{today.isoformat()}",
                            values,
                        )
                    )
            if "points.expiring" in cfg.templates:
                for member_id, amount, first in await points.expiring_soon(
                    conn, t["tenant_id"], now, timedelta(days=cfg.points_expiring_days)
                ):
                    day = rules.local_day(first, tz).isoformat()
                    rows.append(
                        _reminder(
                            t["tenant_id"],
                            member_id,
                            "points.expiring",
                            f"expiry:{day}",
                            {"points": amount, "expiresOn": day},
                        )
                    )
            # Scanned kinds recur daily for many members: only members who can be sent one
            # (an unused grant) get a row; one who allows it later is found by the next scan.
            for kind in {r["kind"] for r in rows}:
                template_id = cfg.templates[kind].template_id
                candidates = [r["member_id"] for r in rows if r["kind"] == kind]
                allowed = await repo.members_with_grants(
                    conn, t["tenant_id"], template_id, candidates
                )
                rows = [r for r in rows if r["kind"] != kind or r["member_id"] in allowed]
            added += await repo.schedule(conn, rows, now)
    return added


async def send_due(ctx: Context, batch: int = 100, rounds: int = 20, parallel: int = 10) -> int:
    """Send what is due; returns reminders handled. Quiet hours postpone, a missing grant
    ends a reminder as ``no_grant``, WeChat's answer decides the rest (see rules). Up to
    ``parallel`` sends are in flight at once (a 20:00 streak reminder goes to many members)."""
    handled = 0
    gate = asyncio.Semaphore(parallel)
    configs: dict[int, tuple[ReminderConfigIn, ZoneInfo]] = {}

    async def one(r: asyncpg.Record) -> None:
        async with gate:
            await _send_one(ctx, r, configs)

    for _ in range(rounds):
        now = ctx.clock.now()
        async with ctx.db.transaction() as conn:
            due = await repo.claim_due(conn, now, now + LEASE, batch)
        for failure in await asyncio.gather(*(one(r) for r in due), return_exceptions=True):
            if isinstance(failure, BaseException):
                # Left leased: it is tried again once the lease ends, like after a crash.
                log.warning("reminder send failed", error=repr(failure))
        handled += len(due)
        if len(due) < batch:
            break
    return handled


async def _send_one(
    ctx: Context, r: asyncpg.Record, configs: dict[int, tuple[ReminderConfigIn, ZoneInfo]]
) -> None:
    now = ctx.clock.now()
    tenant_id = r["tenant_id"]
    if tenant_id not in configs:
        async with ctx.db.connection() as conn:
            row = await repo.get_config(conn, tenant_id)
            tz_name = await repo.tenant_timezone(conn, tenant_id)
        cfg = msgspec.convert(row["config"], ReminderConfigIn) if row else ReminderConfigIn()
        configs[tenant_id] = (cfg, ZoneInfo(tz_name))
    cfg, tz = configs[tenant_id]
    template = cfg.templates.get(r["kind"])
    async with ctx.db.transaction() as conn:
        if template is None:
            await repo.finish(conn, r["id"], "failed", "the kind is no longer configured", now)
            return
        q = cfg.quiet_hours
        release = rules.release_at(
            now,
            tz,
            rules.parse_hhmm(q.start) if q else None,
            rules.parse_hhmm(q.end) if q else None,
        )
        expires = (r["values"] or {}).get("expiresAt")
        if expires and release >= datetime.fromisoformat(expires):
            await repo.finish(conn, r["id"], "expired", "the occasion passed in quiet hours", now)
            return
        if release > now:
            await repo.postpone(conn, r["id"], release, None, attempted=False)
            return
        if r["grant_id"] is None:
            grant = await repo.consume_grant(
                conn, tenant_id, r["member_id"], template.template_id, r["id"], now
            )
            if grant is None:
                await repo.finish(conn, r["id"], "no_grant", "no grant for the template", now)
                return
    msg = Message(
        reminder_id=r["id"],
        tenant_id=tenant_id,
        member_id=r["member_id"],
        kind=r["kind"],
        template_id=template.template_id,
        page=template.page,
        data=rules.render(template.fields, r["values"] or {}),
    )
    result = await SENDERS[cfg.sender].send(ctx, msgspec.to_builtins(cfg), msg)
    done = ctx.clock.now()
    async with ctx.db.transaction() as conn:
        if result.outcome == "retry" and r["attempts"] + 1 < rules.MAX_ATTEMPTS:
            next_at = done + rules.retry_delay(r["attempts"] + 1, ctx.rng.random())
            await repo.postpone(conn, r["id"], next_at, result.error, attempted=True)
            return
        status = {"sent": "sent", "refused": "refused"}.get(result.outcome, "failed")
        await repo.finish(conn, r["id"], status, result.error, done)
    if status != "sent":
        log.warning("reminder not sent", reminder=r["id"], status=status, error=result.error)
