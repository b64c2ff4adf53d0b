"""The unit of work: one transaction and everything tied to whether it commits.

Every write to PostgreSQL goes through one ``UnitOfWork``. It owns the connection and the
transaction, collects the domain events to emit (written in ONE insert just before commit),
the idempotency record of an HTTP request (written in the same transaction as the effect),
work to run once the transaction committed (Redis marks, waking the outbox dispatcher) and
work to undo if it did not (stock taken in Redis goes back). Feature code never commits,
never rolls back, and never catches ``BaseException`` to compensate: it registers a hook.

How to use it (the HTTP boundary does this for you, see ``service.core.http``)::

    async with unit_of_work(ctx) as uow:      # BEGIN
        result = await service.do(uow, ...)   # statements on uow.conn, uow.emit(...)
    # COMMIT happened here; after-commit hooks ran; on an exception: ROLLBACK, undo hooks ran

A mutating route receives a ``RequestUnit`` (a Litestar dependency) and makes one call::

    return await work.respond(service.spin, member.tenant_id, member.member_id, key)

CLI commands and jobs use ``unit_of_work(ctx)`` directly.

**Single-statement units** (the hot durable writes: check-in, spin, credit, brand event). A
write whose whole effect is ONE SQL statement (data-modifying CTEs or one server-side
function; its events inlined with ``outbox.insert_sql``) needs no BEGIN/COMMIT: PostgreSQL
runs a lone statement atomically in its own implicit transaction. ``unit_of_work(ctx,
single_statement=True)`` hands out a connection WITHOUT an explicit transaction: reads before
the write are plain autocommit statements, the one write statement is the commit point, and
the hooks work as usual. In this mode ``emit``, ``before_commit`` and ``savepoint`` are
programming errors (they would need a second statement). A feature function written for it
also works unchanged inside an ordinary transactional unit (e.g. when an Idempotency-Key must
be recorded with the effect).

**The commit point.** In a single-statement unit only the feature knows when its write
statement returned, i.e. committed. It says so with ``uow.committed()`` right after that
statement: from then on the on_rollback hooks are dropped (what they would undo is
committed: a calendar bit, stock taken in Redis), and if anything raises afterwards (an
error in the code after the write, encoding the answer, a cancellation) the after-commit
hooks registered so far still run before the exception goes on. In a transactional unit
``committed()`` does nothing: the real COMMIT decides. A ``transactional()`` block that
committed is the unit's commit point too.

**Waking the outbox dispatcher.** A statement that wrote outbox rows itself (an inlined
``outbox.insert_sql``, the ledger function) calls ``uow.wake_dispatcher()``: the dispatcher
is woken once after the commit, however many times it is called.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from service.core import outbox

if TYPE_CHECKING:
    from service.core.context import Context

log = structlog.get_logger("engage.uow")

Hook = Callable[[], Awaitable[Any]]


class UnitOfWork:
    """One open transaction (``conn``) plus what to do when it commits or rolls back.

    Attributes: ``ctx`` the process context, ``conn`` the connection inside the transaction.
    Events are buffered by ``emit`` and written in one statement at commit (or on ``flush``).
    """

    __slots__ = (
        "_after_commit",
        "_before_commit",
        "_events",
        "_on_rollback",
        "_write_committed",
        "conn",
        "ctx",
        "single_statement",
    )

    def __init__(
        self, ctx: Context, conn: asyncpg.Connection, *, single_statement: bool = False
    ) -> None:
        self.ctx = ctx
        self.conn = conn
        #: True when ``conn`` has no explicit transaction: the unit's one write statement is
        #: its own transaction (see the module docstring).
        self.single_statement = single_statement
        self._events: list[outbox.OutboxRow] = []
        self._before_commit: list[Hook] = []
        self._after_commit: list[Hook] = []
        self._on_rollback: list[Hook] = []
        #: single-statement mode: the write statement returned (``committed``)
        self._write_committed = False

    # -- what the transaction carries ---------------------------------------------------------

    def emit(
        self,
        *,
        tenant_id: int,
        type: str,
        occurred_at: datetime,
        member_id: int | None = None,
        payload: dict[str, Any] | None = None,
        event_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Queue one domain event; it is written with the others in one insert at commit."""
        self._require_transaction("emit (inline the events with outbox.insert_sql)")
        eid = event_id or uuid.uuid4()
        self._events.append(
            outbox.OutboxRow(tenant_id, eid, type, member_id, payload or {}, occurred_at)
        )
        return eid

    def before_commit(self, hook: Hook) -> None:
        """Run ``hook`` inside the transaction, after the feature's work, before the events."""
        self._require_transaction("before_commit")
        self._before_commit.append(hook)

    def after_commit(self, hook: Hook) -> None:
        """Run ``hook`` once the transaction committed (Redis marks, cache refresh).

        A failing hook is logged, not raised: the change is committed and the client is told
        so; whatever the hook maintains must be repairable (a rebuild command)."""
        self._after_commit.append(hook)

    def on_rollback(self, hook: Hook) -> None:
        """Run ``hook`` if the transaction does not commit (give back what Redis handed out)."""
        self._on_rollback.append(hook)

    def committed(self) -> None:
        """The commit point of a single-statement unit: call it right after the unit's write
        statement returned (it committed by itself). The on_rollback hooks are dropped (their
        work is committed, nothing to give back) and the after-commit hooks run even if
        something raises later. Idempotent. In a transactional unit it does nothing: the
        unit's COMMIT decides (a later failure still rolls everything back)."""
        if not self.single_statement:
            return
        self._write_committed = True
        self._on_rollback.clear()

    def wake_dispatcher(self) -> None:
        """The unit's statements wrote outbox rows: wake the outbox dispatcher once the unit
        committed. Idempotent: one wake per unit however many calls (and none on rollback)."""
        if self._wake not in self._after_commit:
            self._after_commit.append(self._wake)

    async def _wake(self) -> None:
        self.ctx.dispatcher.wake()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[UnitOfWork]:
        """A nested transaction: if its block raises, its statements AND the events and hooks
        it registered are undone, and the outer transaction goes on."""
        self._require_transaction("savepoint")
        marks = (len(self._events), len(self._after_commit), len(self._on_rollback))
        try:
            async with self.conn.transaction():
                yield self
        except BaseException:
            del self._events[marks[0] :]
            del self._after_commit[marks[1] :]
            undo = self._on_rollback[marks[2] :]
            del self._on_rollback[marks[2] :]
            for hook in reversed(undo):
                await _quietly(hook, "rollback compensation failed")
            raise

    @asynccontextmanager
    async def transactional(self) -> AsyncIterator[UnitOfWork]:
        """The rare path of a single-statement write that needs more than one statement (e.g.
        a member to create first): an ordinary transaction on the SAME connection (no second
        pool connection), as a transactional unit. It is the unit's write: its events are
        written at the end of the block, and once it committed that is the unit's commit
        point (``committed``): its after-commit hooks run with this unit's, even if something
        raises after the block, and this unit's on_rollback hooks are dropped. If the block
        raises, its statements and hooks are undone (its on_rollback hooks run) and this
        unit's own hooks are left to its end. On a transactional unit, yields the unit."""
        if not self.single_statement:
            yield self
            return
        inner = UnitOfWork(self.ctx, self.conn)
        try:
            async with self.conn.transaction():
                yield inner
                await inner._commit_work()
        except BaseException:
            await inner._rolled_back()
            raise
        self._after_commit.extend(inner._after_commit)
        inner._after_commit.clear()
        self.committed()

    async def flush(self) -> None:
        """Write the queued events now (one statement); done for you at commit."""
        if self._events:
            rows, self._events = self._events, []
            await outbox.write(self.conn, rows)
            self.wake_dispatcher()

    def _require_transaction(self, what: str) -> None:
        if self.single_statement:
            raise RuntimeError(
                f"{what} needs a transactional unit of work, not a single-statement one"
            )

    # -- the boundary -------------------------------------------------------------------------

    async def _commit_work(self) -> None:
        for hook in self._before_commit:
            await hook()
        self._before_commit.clear()
        await self.flush()

    async def _committed(self) -> None:
        hooks, self._after_commit = self._after_commit, []
        self._on_rollback.clear()
        for hook in hooks:
            await _quietly(hook, "after-commit work failed")

    async def _rolled_back(self) -> None:
        hooks, self._on_rollback = self._on_rollback, []
        self._after_commit.clear()
        self._events.clear()
        for hook in reversed(hooks):
            await _quietly(hook, "rollback compensation failed")


async def _quietly(hook: Hook, what: str) -> None:
    try:
        await hook()
    except Exception as exc:
        log.warning(what, hook=getattr(hook, "__qualname__", repr(hook)), error=repr(exc))


@asynccontextmanager
async def unit_of_work(
    ctx: Context, *, single_statement: bool = False
) -> AsyncIterator[UnitOfWork]:
    """Open a transaction; commit when the block exits cleanly, roll back on any exception.

    The one place that reacts to every way out of a transaction (including cancellation):
    compensations registered with ``on_rollback`` run here, so features never catch
    ``BaseException`` themselves. With ``single_statement=True`` no explicit transaction is
    opened (the block's one write statement is atomic by itself; see the module docstring)."""
    async with ctx.db.connection() as conn:
        uow = UnitOfWork(ctx, conn, single_statement=single_statement)
        if single_statement:
            try:
                yield uow
            except BaseException:
                if uow._write_committed:
                    await uow._committed()  # the write stays: its after-commit work runs
                else:
                    await uow._rolled_back()
                raise
            await uow._committed()
            return
        try:
            async with conn.transaction():
                yield uow
                await uow._commit_work()
        except BaseException:
            await uow._rolled_back()
            raise
        await uow._committed()
