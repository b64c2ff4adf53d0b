"""Webhooks: endpoint config, the outbox subscriber that queues deliveries, and the worker
that signs (Standard Webhooks, via the ``standardwebhooks`` package) and sends them.

Delivery is at least once: a delivery is queued durably in PostgreSQL when the dispatcher hands
the event over (queueing is idempotent per endpoint and event, so a re-handed event is not
queued twice), sent by the worker, and marked delivered only after a 2xx. A crash between the
send and the mark sends it again with the same ``webhook-id``. Deliveries of one member to one
endpoint go out one after another in commit order; a failing one holds the member's later ones
back until it succeeds or is given up (about 12-16 hours of retries, see ``rules``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import structlog
from standardwebhooks.webhooks import Webhook as Signer

from service.core import cursors, outbox
from service.core.clock import monotonic, wall_now
from service.core.constraints import validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.outbox import Event
from service.core.uow import UnitOfWork
from service.webhooks import repository as repo
from service.webhooks import rules
from service.webhooks.schemas import DeliveryOut, DeliveryPage, WebhookIn, WebhookList, WebhookOut

log = structlog.get_logger("engage.webhooks")

SUBSCRIBER = "webhooks"
USER_AGENT = "Engage-Webhooks/1"
_encoder = msgspec.json.Encoder()

register_codes(
    {
        "WEBHOOK_NOT_FOUND": (404, "Webhook 不存在", "No such webhook in this tenant."),
        "WEBHOOK_DELIVERY_NOT_FOUND": (
            404,
            "投递记录不存在",
            "No such delivery for this webhook.",
        ),
    }
)


class TargetRefused(Exception):
    """The target resolves to an address webhooks may not reach (SSRF protection)."""


async def resolve(host: str, port: int, limit_s: float) -> list[str]:
    """The addresses ``host`` resolves to now (an IP literal resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=limit_s
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _port(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


async def target_problems(ctx: Context, url: str) -> list[dict[str, str]]:
    """Problems of a target URL on save: malformed, or (unless private targets are allowed)
    resolving to a private address. A name that does not resolve now is accepted: it is
    checked again, after resolution, before every send."""
    problem = rules.url_problem(url)
    if problem:
        return [{"source": "body", "path": "url", "code": "URL_INVALID", "problem": problem}]
    if ctx.settings.webhook_allow_private:
        return []
    parts = urlsplit(url)
    try:
        addresses = await resolve(
            parts.hostname or "", _port(parts), ctx.settings.webhook_timeout_s
        )
    except (OSError, TimeoutError):
        return []
    for address in addresses:
        refused = rules.address_problem(address)
        if refused:
            return [
                {"source": "body", "path": "url", "code": "TARGET_NOT_PUBLIC", "problem": refused}
            ]
    return []


def _out(row: asyncpg.Record, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        key=row["key"],
        url=row["url"],
        event_types=list(row["event_types"]),
        description=row["description"],
        enabled=row["enabled"],
        consecutive_failures=row["consecutive_failures"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
        failing_since=row["failing_since"],
        secret=secret,
    )


def _delivery_out(row: asyncpg.Record) -> DeliveryOut:
    return DeliveryOut(
        id=row["id"],
        webhook_id=row["msg_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        member_id=row["member_id"],
        last_attempt_at=row["last_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        latency_ms=row["last_latency_ms"],
        delivered_at=row["delivered_at"],
    )


async def put_webhook(uow: UnitOfWork, tenant_id: int, key: str, data: WebhookIn) -> WebhookOut:
    """Create or replace an endpoint (422 VALIDATION_FAILED lists every problem). The secret is
    in the answer only when this call generated or set it."""
    ctx, conn = uow.ctx, uow.conn
    problems = await target_problems(ctx, data.url)
    if data.secret is not None:
        secret_problem = rules.secret_problem(data.secret)
        if secret_problem:
            problems.append(
                {
                    "source": "body",
                    "path": "secret",
                    "code": "SECRET_INVALID",
                    "problem": secret_problem,
                }
            )
    if problems:
        raise validation_failed(problems)
    existing = await repo.get(conn, tenant_id, key, lock=True)
    secret = data.secret
    if secret is None and existing is None:
        secret = rules.new_secret(ctx.rng)
    row = await repo.upsert(
        conn,
        tenant_id,
        key,
        data.url,
        list(dict.fromkeys(data.event_types)),
        secret,
        data.description,
        data.enabled,
        ctx.clock.now(),
    )
    if existing is not None and not existing["enabled"] and data.enabled:
        # Re-enabled after a fix: what was held back is due now, not at its backed-off time.
        await repo.make_pending_due(conn, row["id"], ctx.clock.now())
    return _out(row, secret)


async def get_webhook(ctx: Context, tenant_id: int, key: str) -> WebhookOut:
    async with ctx.db.connection() as conn:
        row = await repo.get(conn, tenant_id, key)
    if row is None:
        raise DomainError("WEBHOOK_NOT_FOUND", details={"key": key})
    return _out(row)


async def list_webhooks(ctx: Context, tenant_id: int) -> WebhookList:
    async with ctx.db.connection() as conn:
        rows = await repo.list_for_tenant(conn, tenant_id)
    return WebhookList([_out(r) for r in rows])


async def delete_webhook(ctx: Context, tenant_id: int, key: str) -> None:
    async with ctx.db.transaction() as conn:
        if not await repo.delete(conn, tenant_id, key):
            raise DomainError("WEBHOOK_NOT_FOUND", details={"key": key})


async def _webhook_id(conn: asyncpg.Connection, tenant_id: int, key: str) -> int:
    row = await repo.get(conn, tenant_id, key)
    if row is None:
        raise DomainError("WEBHOOK_NOT_FOUND", details={"key": key})
    return int(row["id"])


async def list_deliveries(
    ctx: Context, tenant_id: int, key: str, cursor: str | None, limit: int
) -> DeliveryPage:
    """The delivery log, newest first: status, attempts, last error, latency."""
    before = cursors.decode("d", cursor)
    async with ctx.db.connection() as conn:
        webhook_id = await _webhook_id(conn, tenant_id, key)
        rows = await repo.list_deliveries(conn, webhook_id, before, limit + 1)
    items = [_delivery_out(r) for r in rows[:limit]]
    more = len(rows) > limit
    return DeliveryPage(items, cursors.encode("d", items[-1].id) if more and items else None)


async def redeliver(uow: UnitOfWork, tenant_id: int, key: str, delivery_id: int) -> DeliveryOut:
    """Queue a delivery again (due now, same webhook-id and body); the worker sends it."""
    webhook_id = await _webhook_id(uow.conn, tenant_id, key)
    row = await repo.requeue(uow.conn, webhook_id, delivery_id, uow.ctx.clock.now())
    if row is None:
        raise DomainError("WEBHOOK_DELIVERY_NOT_FOUND", details={"id": delivery_id})
    return _delivery_out(row)


def _body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    return _encoder.encode(
        {
            "type": event_type,
            "timestamp": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": data,
        }
    ).decode()


async def on_events(ctx: Context, events: list[Event]) -> None:
    """Outbox subscriber: queue one delivery per (enabled endpoint, matching event), in the
    events' commit order, in the transaction that also moves this subscriber's outbox cursor
    past them (so the queue and the position never disagree). Queueing is idempotent per
    endpoint and event besides, for events handed over again (dead-letter replays)."""
    tenants = sorted({e.tenant_id for e in events})
    async with ctx.db.transaction() as conn:
        await outbox.advance_cursor(conn, SUBSCRIBER, events[-1])
        hooks = await repo.enabled_for_tenants(conn, tenants)
        if not hooks:
            return
        by_tenant: dict[int, list[asyncpg.Record]] = defaultdict(list)
        for h in hooks:
            by_tenant[h["tenant_id"]].append(h)
        # The brand's member id next to ours, so a CRM can match its customer: one query for
        # the whole batch.
        external = await repo.external_ids(
            conn, sorted({e.member_id for e in events if e.member_id is not None})
        )
        rows: list[dict[str, Any]] = []
        for ev in events:
            for h in by_tenant.get(ev.tenant_id, ()):
                if not rules.matches(list(h["event_types"]), ev.type):
                    continue
                data = {
                    "eventId": str(ev.event_id),
                    "memberId": ev.member_id,
                    "externalId": external.get(ev.member_id) if ev.member_id else None,
                    **ev.payload,
                }
                rows.append(
                    {
                        "tenant_id": ev.tenant_id,
                        "webhook_id": h["id"],
                        "event_id": str(ev.event_id),
                        "msg_id": "msg_" + ev.event_id.hex,
                        "event_type": ev.type,
                        "member_id": ev.member_id,
                        "body": _body(ev.type, ev.occurred_at, data),
                    }
                )
        await repo.enqueue(conn, rows, ctx.clock.now())


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: int | None


async def send(ctx: Context, url: str, secret: str, msg_id: str, body: str) -> Attempt:
    """One signed POST. The host is resolved here and every address checked (unless private
    targets are allowed); the request then goes to the checked address itself, with the
    original Host header and TLS server name, so a second DNS answer cannot redirect it.
    Redirects are not followed. Only a 2xx counts as delivered."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    timeout = ctx.settings.webhook_timeout_s
    try:
        addresses = await resolve(host, _port(parts), timeout)
    except (OSError, TimeoutError) as exc:
        return Attempt(False, None, f"DNS resolution failed: {type(exc).__name__}", None)
    if not addresses:
        return Attempt(False, None, "DNS resolution returned no address", None)
    if not ctx.settings.webhook_allow_private:
        for address in addresses:
            refused = rules.address_problem(address)
            if refused:
                return Attempt(False, None, f"target refused: {refused}", None)
    address = addresses[0]
    ip_host = f"[{address}]" if ":" in address else address
    netloc = f"{ip_host}:{parts.port}" if parts.port else ip_host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    # Receivers check webhook-timestamp against their own clock (the Standard Webhooks
    # libraries allow 5 minutes), so it is the real wall clock, never the dev-shifted one
    # (under /admin/v1/dev/clock a receiver would reject "Message timestamp too new" while
    # the log says delivered).
    signed_at = wall_now(ctx.clock)
    signature = Signer(secret).sign(msg_id, signed_at, body)
    headers = {
        "host": parts.netloc.rsplit("@", 1)[-1],
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": signature,
    }
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    client: httpx.AsyncClient = ctx.http_client
    started = monotonic()
    try:
        resp = await client.post(
            pinned,
            content=body.encode(),
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            extensions=extensions,
        )
    except httpx.TimeoutException:
        return Attempt(False, None, f"timed out after {timeout:g} s", _ms(started))
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:300], _ms(started))
    latency = _ms(started)
    if 200 <= resp.status_code < 300:
        return Attempt(True, resp.status_code, None, latency)
    return Attempt(False, resp.status_code, f"HTTP {resp.status_code}", latency)


def _ms(started: float) -> int:
    return int((monotonic() - started) * 1000)


def disable_policy(ctx: Context) -> rules.DisablePolicy:
    return rules.DisablePolicy(
        ctx.settings.webhook_disable_after_failures,
        timedelta(hours=ctx.settings.webhook_disable_after_h),
    )


async def _record(ctx: Context, claimed: asyncpg.Record, result: Attempt, now: datetime) -> None:
    async with ctx.db.transaction() as conn:
        if result.ok:
            await repo.record_success(
                conn,
                claimed["id"],
                claimed["webhook_id"],
                result.status_code or 200,
                result.latency_ms or 0,
                now,
            )
            return
        attempts = claimed["attempts"] + 1
        next_at = (
            now + rules.retry_delay(attempts, ctx.rng) if attempts < rules.MAX_ATTEMPTS else None
        )
        run = await repo.record_failure(
            conn,
            claimed["id"],
            claimed["webhook_id"],
            result.status_code,
            result.error or "failed",
            result.latency_ms,
            now,
            next_at,
        )
        if run is None:  # the endpoint was deleted while this attempt was under way
            return
        if run["enabled"] and rules.should_disable(
            run["consecutive_failures"], run["failing_since"], now, disable_policy(ctx)
        ):
            reason = (
                f"disabled after {run['consecutive_failures']} failed attempts in a row since "
                f"{run['failing_since'].astimezone(UTC):%Y-%m-%d %H:%M} UTC; last: "
                f"{rules.describe_failure(result.status_code, result.error)}"
            )
            await repo.disable(conn, claimed["webhook_id"], reason, now)
            log.warning("webhook disabled", webhook_id=claimed["webhook_id"], reason=reason)


async def _attempt(ctx: Context, claimed: asyncpg.Record) -> None:
    c = claimed
    result = await send(ctx, c["url"], c["secret"], c["msg_id"], c["body"])
    await _record(ctx, c, result, ctx.clock.now())


async def deliver_due(ctx: Context, batch: int = 50, rounds: int = 20) -> int:
    """Send what is due (the worker inside ``serve`` calls this every second); returns the
    number of attempts made. Each round sends at most one delivery per (endpoint, member),
    concurrently."""
    total = 0
    for _ in range(rounds):
        now = ctx.clock.now()
        async with ctx.db.transaction() as conn:
            claimed = await repo.claim_due(conn, now, now + timedelta(seconds=rules.LEASE_S), batch)
        if not claimed:
            break

        outcomes = await asyncio.gather(
            *(_attempt(ctx, c) for c in claimed), return_exceptions=True
        )
        for failure in outcomes:
            if isinstance(failure, BaseException):
                # Left leased: sent again once the lease ends (at least once), like after a crash.
                log.warning("webhook attempt not recorded", error=repr(failure))
        total += len(claimed)
    return total


async def send_test(ctx: Context, tenant_id: int, key: str) -> DeliveryOut:
    """Send a ``webhook.test`` event now (even to a disabled endpoint) and answer its log
    entry. It is not retried and does not count towards disabling."""
    now = ctx.clock.now()
    event_id = uuid.UUID(int=ctx.rng.getrandbits(128), version=4)
    async with ctx.db.transaction() as conn:
        webhook_id = await _webhook_id(conn, tenant_id, key)
        body = _body(rules.TEST_EVENT_TYPE, now, {"eventId": str(event_id), "test": True})
        await repo.enqueue(
            conn,
            [
                {
                    "tenant_id": tenant_id,
                    "webhook_id": webhook_id,
                    "event_id": str(event_id),
                    "msg_id": "msg_" + event_id.hex,
                    "event_type": rules.TEST_EVENT_TYPE,
                    "member_id": None,
                    "body": body,
                }
            ],
            now,
        )
        delivery_id = await repo.delivery_id(conn, webhook_id, str(event_id))
        claimed = await repo.claim_one(
            conn, delivery_id, now, now + timedelta(seconds=rules.LEASE_S)
        )
    assert claimed is not None
    result = await send(ctx, claimed["url"], claimed["secret"], claimed["msg_id"], body)
    async with ctx.db.transaction() as conn:
        await repo.record_test(
            conn, delivery_id, result.ok, result.status_code, result.error, result.latency_ms, now
        )
        row = await repo.get_delivery(conn, webhook_id, delivery_id)
    return _delivery_out(row)


LOG_RETENTION = timedelta(days=30)


async def purge_log(ctx: Context) -> int:
    """Periodic: forget finished deliveries older than 30 days (pending ones are kept)."""
    removed = 0
    while True:
        async with ctx.db.transaction() as conn:
            n = await repo.purge_finished(conn, ctx.clock.now() - LOG_RETENTION, 5000)
        removed += n
        if n < 5000:
            return removed
