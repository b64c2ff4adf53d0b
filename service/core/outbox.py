"""Domain events: written in the transaction of the change, delivered at least once.

``emit`` writes an event on the caller's connection, so the event exists exactly when the change
does. The ``Dispatcher`` delivers events to subscribers in commit-safe order: it only reads
events of transactions older than every transaction still running (``pg_snapshot_xmin``), so an
event whose transaction commits late is never skipped. Each subscriber has a cursor in
PostgreSQL, advanced after its handler succeeds; a restart resumes from there. Handlers must be
idempotent per ``event_id`` (delivery is at least once). One process at a time dispatches
(a session advisory lock), so adding app processes does not multiply deliveries.

A subscriber that applies events to many operator definitions (boards, badges, team PKs)
isolates them with ``service.core.parking``: a definition that raises is parked alone instead
of holding back or dead-lettering everyone's events; the dispatcher runs each feature's
catch-up (``on_catch_up``) for corrected definitions before every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from service.core import parking
from service.core.errors import DEPENDENCY_ERRORS, DependencyUnavailable

if TYPE_CHECKING:
    from service.core.context import Context

log = structlog.get_logger("engage.outbox")

DISPATCH_LOCK = 0x6F757462  # "outb"
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    event_id: uuid.UUID
    tenant_id: int
    type: str
    member_id: int | None
    payload: dict[str, Any]
    occurred_at: datetime
    txid: int = 0  # the outbox position is (txid, id)


def event_of(r: Any) -> Event:
    """An Event from an outbox row (id, txid, event_id, tenant_id, type, member_id, payload,
    occurred_at)."""
    return Event(
        r["id"],
        r["event_id"],
        r["tenant_id"],
        r["type"],
        r["member_id"],
        r["payload"],
        r["occurred_at"],
        r["txid"],
    )


Handler = Callable[["Context", list[Event]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event to write: what ``write`` inserts (the outbox assigns ``id`` and ``txid``)."""

    tenant_id: int
    event_id: uuid.UUID
    type: str
    member_id: int | None
    payload: dict[str, Any]
    occurred_at: datetime


def insert_sql(first: int, *, each: str | None = None, member: str | None = None) -> str:
    """The one INSERT of outbox rows, with its six array parameters numbered from ``$first``
    (values from ``params(rows)``). Use it alone (``write``) or as a data-modifying CTE inside a
    feature's single write statement (``WITH ..., ev AS (<insert_sql(n)>) SELECT ...``), so the
    events commit exactly when the change does. Rows keep the given order.

    Inside a statement whose member is only known there (found or created by a CTE):
    ``each`` names a FROM item of the statement (e.g. ``"fresh"``, a CTE of 0 or 1 row): the
    rows are written once per row of it (none when it is empty: "only if the change
    happened"); ``member`` is an SQL expression over it (``"fresh.member_id"``) for the rows
    whose member is None."""
    n = first
    member_col = f"COALESCE(u.m, {member})" if member else "u.m"
    joined = f" CROSS JOIN {each}" if each else ""
    return (
        "INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at) "
        f"SELECT pg_current_xact_id()::text::bigint, u.t, u.e, u.ty, {member_col}, u.p, u.o "
        f"FROM unnest(${n}::int[], ${n + 1}::uuid[], ${n + 2}::text[], ${n + 3}::bigint[], "
        f"${n + 4}::jsonb[], ${n + 5}::timestamptz[]) WITH ORDINALITY AS u(t, e, ty, m, p, o, ord)"
        f"{joined} ORDER BY u.ord"
    )


def params(rows: Iterable[OutboxRow]) -> list[list[Any]]:
    """The six array parameters of ``insert_sql`` for ``rows`` (tenant, event id, type, member,
    payload, occurred_at)."""
    rows = list(rows)
    return [
        [r.tenant_id for r in rows],
        [r.event_id for r in rows],
        [r.type for r in rows],
        [r.member_id for r in rows],
        [r.payload for r in rows],
        [r.occurred_at for r in rows],
    ]


async def write(conn: asyncpg.Connection, rows: Iterable[OutboxRow]) -> None:
    """The one writer of outbox rows: every row in one statement, in the given order, in the
    caller's transaction (so the events exist exactly when the change does)."""
    rows = list(rows)
    if not rows:
        return
    await conn.execute(insert_sql(1), *params(rows))


async def emit(
    conn: asyncpg.Connection,
    *,
    tenant_id: int,
    type: str,
    occurred_at: datetime,
    member_id: int | None = None,
    payload: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write one event now on ``conn`` (outside a unit of work); returns its id.

    Inside a unit of work use ``uow.emit``: its events are written together at commit."""
    eid = event_id or uuid.uuid4()
    await write(conn, [OutboxRow(tenant_id, eid, type, member_id, payload or {}, occurred_at)])
    return eid


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means a dependency did not answer (retry later), not a bug."""
    return isinstance(exc, (DependencyUnavailable, *DEPENDENCY_ERRORS, OSError))


class Dispatcher:
    def __init__(self, batch_size: int = 500) -> None:
        self.handlers: dict[str, tuple[Handler, frozenset[str] | None]] = {}
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._attempts: dict[tuple[str, int], int] = {}
        self._drain_lock = asyncio.Lock()
        self.catch_ups: dict[str, parking.CatchUp] = {}

    def on_catch_up(self, feature: str, fn: parking.CatchUp) -> None:
        """Register how a feature replays missed events to one corrected definition
        (see service.core.parking); the dispatcher runs it before each pass."""
        self.catch_ups[feature] = fn

    def subscribe(self, name: str, handler: Handler, types: Iterable[str] | None = None) -> None:
        """Register a subscriber; ``types`` limits it to some event types (all when None)."""
        if name in self.handlers:
            raise ValueError(f"subscriber {name} registered twice")
        self.handlers[name] = (handler, frozenset(types) if types is not None else None)

    def wake(self) -> None:
        self._wake.set()

    async def drain(self, ctx: Context, settle_s: float = 5.0) -> int:
        """Deliver everything committed so far to every subscriber; returns events handled.

        An event stays undeliverable while any older transaction in the PostgreSQL cluster
        is still open (that is what makes the order safe); ``drain`` waits up to ``settle_s``
        for such events instead of returning early. The background loop passes 0.
        """
        deadline = asyncio.get_running_loop().time() + settle_s
        async with self._drain_lock:
            total = 0
            while True:
                for feature, fn in self.catch_ups.items():
                    total += await parking.catch_up(ctx, feature, fn)
                for name in self.handlers:
                    while True:
                        n, more = await self._step(ctx, name)
                        total += n
                        if not more:
                            break
                if asyncio.get_running_loop().time() >= deadline or not await self._behind(ctx):
                    return total
                await asyncio.sleep(0.05)

    async def _behind(self, ctx: Context) -> bool:
        """True when some subscriber has committed events beyond its cursor."""
        if not self.handlers:
            return False
        async with ctx.db.connection() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM outbox o JOIN outbox_cursors c "
                    "ON c.subscriber = ANY($1::text[]) "
                    "WHERE (o.txid, o.id) > (c.last_txid, c.last_id))",
                    list(self.handlers),
                )
            )

    async def _step(self, ctx: Context, name: str) -> tuple[int, bool]:
        handler, types = self.handlers[name]
        async with ctx.db.connection() as conn:
            cur = await conn.fetchrow(
                "SELECT last_txid, last_id FROM outbox_cursors WHERE subscriber = $1", name
            )
            if cur is None:
                await conn.execute(
                    "INSERT INTO outbox_cursors (subscriber, last_txid, last_id, updated_at) "
                    "VALUES ($1, 0, 0, now()) ON CONFLICT (subscriber) DO NOTHING",
                    name,
                )
                last_txid, last_id = 0, 0
            else:
                last_txid, last_id = cur["last_txid"], cur["last_id"]
            rows = await conn.fetch(
                "SELECT id, txid, event_id, tenant_id, type, member_id, payload, occurred_at "
                "FROM outbox WHERE (txid, id) > ($1, $2) "
                "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                "ORDER BY txid, id LIMIT $3",
                last_txid,
                last_id,
                self.batch_size,
            )
        if not rows:
            return 0, False
        events = [event_of(r) for r in rows]
        wanted = [e for e in events if types is None or e.type in types]
        if wanted:
            try:
                await handler(ctx, wanted)
            except Exception:
                # Find the failing event: deliver one by one up to it, then count its attempts.
                delivered_to = await self._deliver_singly(ctx, name, handler, events, types)
                if delivered_to is None:
                    return 0, False
                rows = rows[: delivered_to + 1]
        last = rows[-1]
        async with ctx.db.connection() as conn:
            await conn.execute(
                # Only forward: a dispatcher that lost its lock without knowing it can never
                # move a cursor back under the new leader.
                "UPDATE outbox_cursors SET last_txid = $2, last_id = $3, updated_at = now() "
                "WHERE subscriber = $1 AND (last_txid, last_id) < ($2, $3)",
                name,
                last["txid"],
                last["id"],
            )
        return len(rows), len(rows) == self.batch_size

    async def _deliver_singly(
        self,
        ctx: Context,
        name: str,
        handler: Handler,
        events: list[Event],
        types: frozenset[str] | None,
    ) -> int | None:
        """Returns the index of the last event passed (delivered or dead-lettered), or None."""
        passed: int | None = None
        for i, ev in enumerate(events):
            if types is not None and ev.type not in types:
                passed = i
                continue
            try:
                await handler(ctx, [ev])
                passed = i
            except Exception as exc:
                if is_outage(exc):
                    # Redis or PostgreSQL is away: not the event's fault. Stop here and retry
                    # at the next pass, without counting towards dead-lettering.
                    log.warning(
                        "event handler waiting for a dependency",
                        subscriber=name,
                        outbox_id=ev.id,
                        error=repr(exc),
                    )
                    return passed
                attempts = self._attempts.get((name, ev.id), 0) + 1
                self._attempts[(name, ev.id)] = attempts
                log.error(
                    "event handler failed",
                    subscriber=name,
                    outbox_id=ev.id,
                    type=ev.type,
                    attempt=attempts,
                    exc_info=exc,
                )
                if attempts < MAX_ATTEMPTS:
                    return passed
                async with ctx.db.connection() as conn:
                    await conn.execute(
                        "INSERT INTO outbox_dead_letters (subscriber, outbox_id, attempts, error, "
                        "created_at) VALUES ($1, $2, $3, $4, now())",
                        name,
                        ev.id,
                        attempts,
                        repr(exc)[:2000],
                    )
                self._attempts.pop((name, ev.id), None)
                passed = i
        return passed

    async def replay_dead_letters(
        self, ctx: Context, subscriber: str | None = None, tenant_id: int | None = None
    ) -> dict:
        """Deliver dead-lettered events again (after the bug that stopped them is fixed):
        every tenant's (the CLI) or one tenant's (an operator: ``tenant_id``). A letter is
        removed once its subscriber accepts the event; failures stay. Each letter is held
        (row lock, SKIP LOCKED) while it is delivered, so replays running at once never
        deliver the same letter twice. Answers ``{"replayed", "stillFailing"}``."""
        async with ctx.db.connection() as conn:
            ids = await conn.fetch(
                "SELECT d.id FROM outbox_dead_letters d JOIN outbox o ON o.id = d.outbox_id "
                "WHERE ($1::text IS NULL OR d.subscriber = $1) "
                "AND ($2::int IS NULL OR o.tenant_id = $2) ORDER BY o.txid, o.id",
                subscriber,
                tenant_id,
            )
        done = failed = 0
        for letter in ids:
            async with ctx.db.connection() as conn, conn.transaction():
                r = await conn.fetchrow(
                    "SELECT d.id AS letter, d.subscriber, o.id, o.event_id, o.tenant_id, o.type, "
                    "o.member_id, o.payload, o.occurred_at FROM outbox_dead_letters d "
                    "JOIN outbox o ON o.id = d.outbox_id WHERE d.id = $1 "
                    "FOR UPDATE OF d SKIP LOCKED",
                    letter["id"],
                )
                if r is None:
                    continue  # another replay holds it, or delivered it already
                entry = self.handlers.get(r["subscriber"])
                if entry is None:
                    failed += 1
                    continue
                ev = Event(
                    r["id"],
                    r["event_id"],
                    r["tenant_id"],
                    r["type"],
                    r["member_id"],
                    r["payload"],
                    r["occurred_at"],
                )
                try:
                    await entry[0](ctx, [ev])
                except Exception as exc:
                    log.error(
                        "dead letter still fails",
                        subscriber=r["subscriber"],
                        outbox_id=r["id"],
                        error=repr(exc),
                    )
                    failed += 1
                    continue
                await conn.execute("DELETE FROM outbox_dead_letters WHERE id = $1", r["letter"])
                done += 1
        return {"replayed": done, "stillFailing": failed}

    @staticmethod
    async def _become_leader(lock_conn: asyncpg.Connection, poll_s: float) -> None:
        """Wait until this process holds the dispatcher lock (another process may hold it)."""
        while True:
            if await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", DISPATCH_LOCK):
                return
            await asyncio.sleep(max(poll_s, 1.0))

    async def run(self, ctx: Context, poll_s: float) -> None:
        """Background loop: become the dispatching process, then drain whenever woken."""
        while True:
            lock_conn: asyncpg.Connection | None = None
            try:
                lock_conn = await asyncpg.connect(
                    ctx.settings.database_url, timeout=ctx.settings.db_timeout_s
                )
                await self._become_leader(lock_conn, poll_s)
                while True:
                    # Still the leader? After a PostgreSQL restart the session lock is gone;
                    # this raises, and the loop goes back to acquiring it.
                    await lock_conn.fetchval("SELECT 1", timeout=ctx.settings.db_timeout_s)
                    await self.drain(ctx, settle_s=0)
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), poll_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dispatcher loop error; retrying", error=repr(exc))
                await asyncio.sleep(1.0)
            finally:
                if lock_conn is not None:
                    with contextlib.suppress(Exception):
                        await lock_conn.close()


async def advance_cursor(conn: asyncpg.Connection, subscriber: str, event: Event) -> None:
    """Move ``subscriber``'s cursor to ``event`` inside the caller's transaction (forward only).

    A subscriber that turns events into rows of its own (a queue of webhook deliveries) calls
    this in the transaction that writes them: reading the events and recording their effect
    commit together, so a crash between the two cannot hand the same events over again. The
    dispatcher's own advance afterwards is then a no-op.
    """
    await conn.execute(
        "UPDATE outbox_cursors SET last_txid = $2, last_id = $3, updated_at = now() "
        "WHERE subscriber = $1 AND (last_txid, last_id) < ($2, $3)",
        subscriber,
        event.txid,
        event.id,
    )
