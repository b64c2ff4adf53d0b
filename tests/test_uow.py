"""The unit of work: events written at commit in one insert, after-commit and rollback hooks,
savepoints that undo their own events, and the wheel's stock given back when a spin fails."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from service.core.errors import DomainError
from service.core.uow import unit_of_work
from tests.conftest import DEFAULT_NOW

pytestmark = pytest.mark.asyncio


async def _events(ctx, tenant_id: int, type_: str) -> list[dict]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT txid, payload FROM outbox WHERE tenant_id = $1 AND type = $2 ORDER BY id",
            tenant_id,
            type_,
        )
    return [dict(r) for r in rows]


async def test_events_are_written_together_at_commit_and_hooks_run_after(ctx, tenant):
    seen: list[str] = []

    async def after() -> None:
        # Runs after COMMIT: another connection already sees the events.
        seen.append(f"after:{len(await _events(ctx, tenant.id, 'uow.test'))}")

    async def undo() -> None:
        seen.append("undo")

    async with unit_of_work(ctx) as uow:
        for i in range(3):
            uow.emit(
                tenant_id=tenant.id, type="uow.test", occurred_at=DEFAULT_NOW, payload={"i": i}
            )
        uow.after_commit(after)
        uow.on_rollback(undo)
        # Nothing is written before the commit.
        assert (
            await uow.conn.fetchval(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'uow.test'", tenant.id
            )
            == 0
        )
    rows = await _events(ctx, tenant.id, "uow.test")
    assert [r["payload"]["i"] for r in rows] == [0, 1, 2]
    assert len({r["txid"] for r in rows}) == 1
    assert seen == ["after:3"]


async def test_an_exception_rolls_back_runs_compensations_and_skips_after_commit(ctx, tenant):
    seen: list[str] = []

    async def after() -> None:
        seen.append("after")

    async def undo_a() -> None:
        seen.append("undo-a")

    async def undo_b() -> None:
        raise RuntimeError("a failing compensation does not stop the others")

    with pytest.raises(DomainError):
        async with unit_of_work(ctx) as uow:
            await uow.conn.execute(
                "UPDATE tenants SET name = 'changed-by-uow' WHERE id = $1", tenant.id
            )
            uow.emit(tenant_id=tenant.id, type="uow.rolled", occurred_at=DEFAULT_NOW)
            uow.on_rollback(undo_a)
            uow.on_rollback(undo_b)
            uow.after_commit(after)
            raise DomainError("CONFLICT")
    assert seen == ["undo-a"]
    assert await _events(ctx, tenant.id, "uow.rolled") == []
    async with ctx.db.connection() as conn:
        name = await conn.fetchval("SELECT name FROM tenants WHERE id = $1", tenant.id)
    assert name != "changed-by-uow"


async def test_cancellation_also_runs_compensations(ctx, tenant):
    seen: list[str] = []
    started = asyncio.Event()

    async def undo() -> None:
        seen.append("undo")

    async def work() -> None:
        async with unit_of_work(ctx) as uow:
            uow.on_rollback(undo)
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["undo"]


async def test_a_failed_savepoint_drops_only_its_own_events_and_hooks(ctx, tenant):
    seen: list[str] = []

    async def inner_undo() -> None:
        seen.append("inner-undo")

    async def inner_after() -> None:
        seen.append("inner-after")

    async with unit_of_work(ctx) as uow:
        uow.emit(tenant_id=tenant.id, type="uow.sp", occurred_at=DEFAULT_NOW, payload={"n": 1})
        with pytest.raises(DomainError):
            async with uow.savepoint():
                uow.emit(
                    tenant_id=tenant.id, type="uow.sp", occurred_at=DEFAULT_NOW, payload={"n": 2}
                )
                uow.on_rollback(inner_undo)
                uow.after_commit(inner_after)
                raise DomainError("CONFLICT")
        uow.emit(tenant_id=tenant.id, type="uow.sp", occurred_at=DEFAULT_NOW, payload={"n": 3})
    assert [r["payload"]["n"] for r in await _events(ctx, tenant.id, "uow.sp")] == [1, 3]
    assert seen == ["inner-undo"]


async def test_a_single_statement_unit_sends_no_begin_and_its_statement_is_atomic(ctx, tenant):
    """single_statement=True: no explicit transaction; the one write statement (events inlined
    with outbox.insert_sql) commits by itself; hooks still run; emit/savepoint are refused."""
    from service.core import outbox

    seen: list[str] = []

    async def after() -> None:
        seen.append("after")

    async def undo() -> None:
        seen.append("undo")

    row = outbox.OutboxRow(tenant.id, uuid.uuid4(), "uow.single", None, {}, DEFAULT_NOW)
    async with unit_of_work(ctx, single_statement=True) as uow:
        assert not uow.conn.is_in_transaction()
        with pytest.raises(RuntimeError):
            uow.emit(tenant_id=tenant.id, type="uow.single", occurred_at=DEFAULT_NOW)
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                pass
        uow.after_commit(after)
        uow.on_rollback(undo)
        await uow.conn.execute(
            f"WITH ev AS ({outbox.insert_sql(1)}) SELECT 1", *outbox.params([row])
        )
    assert seen == ["after"]
    assert len(await _events(ctx, tenant.id, "uow.single")) == 1

    # A statement that fails half-way writes nothing, and the rollback hooks run.
    seen.clear()
    bad = outbox.OutboxRow(tenant.id, row.event_id, "uow.single", None, {}, DEFAULT_NOW)
    fresh = outbox.OutboxRow(tenant.id, uuid.uuid4(), "uow.single", None, {}, DEFAULT_NOW)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            uow.after_commit(after)
            uow.on_rollback(undo)
            # the second row repeats an event id: the whole statement (first row too) is undone
            await uow.conn.execute(outbox.insert_sql(1), *outbox.params([fresh, bad]))
    assert seen == ["undo"]
    assert len(await _events(ctx, tenant.id, "uow.single")) == 1


async def _single_rows(ctx, tenant_id: int) -> int:  # type: ignore[no-untyped-def]
    return len(await _events(ctx, tenant_id, "uow.point"))


async def test_the_commit_point_of_a_single_statement_unit_keeps_its_work(ctx, tenant):
    """``uow.committed()`` right after the write statement: a failure after it (the code
    after the write, encoding the answer, a cancellation) runs no on_rollback hook (what it
    would undo is committed) and still runs the after-commit hooks. Without the call, or in a
    transactional unit (where the real COMMIT decides), a failure undoes as before."""
    from service.core import outbox

    seen: list[str] = []

    async def after() -> None:
        seen.append("after")

    async def undo() -> None:
        seen.append("undo")

    def row() -> outbox.OutboxRow:
        return outbox.OutboxRow(tenant.id, uuid.uuid4(), "uow.point", None, {}, DEFAULT_NOW)

    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            uow.on_rollback(undo)
            await uow.conn.execute(outbox.insert_sql(1), *outbox.params([row()]))
            uow.committed()
            uow.committed()  # idempotent
            uow.after_commit(after)
            raise RuntimeError("encoding the answer failed")
    assert seen == ["after"]
    assert await _single_rows(ctx, tenant.id) == 1

    # A cancellation after the commit point: the same.
    seen.clear()
    wrote = asyncio.Event()

    async def work() -> None:
        async with unit_of_work(ctx, single_statement=True) as uow:
            uow.on_rollback(undo)
            await uow.conn.execute(outbox.insert_sql(1), *outbox.params([row()]))
            uow.committed()
            uow.after_commit(after)
            wrote.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await wrote.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["after"]
    assert await _single_rows(ctx, tenant.id) == 2

    # In a transactional unit committed() decides nothing: the failure rolls back.
    seen.clear()
    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx) as uow:
            uow.on_rollback(undo)
            await uow.conn.execute(outbox.insert_sql(1), *outbox.params([row()]))
            uow.committed()
            uow.after_commit(after)
            raise RuntimeError("after the statement, before COMMIT")
    assert seen == ["undo"]
    assert await _single_rows(ctx, tenant.id) == 2


async def test_a_committed_transactional_block_keeps_its_after_commit_hooks(ctx, tenant):
    """``uow.transactional()`` in a single-statement unit is the unit's write: once its COMMIT
    happened, its after-commit hooks run even if the unit fails afterwards, and the unit's
    on_rollback hooks are dropped. A block that raises undoes its own hooks."""
    seen: list[str] = []

    def note(what: str):  # type: ignore[no-untyped-def]
        async def hook() -> None:
            seen.append(what)

        return hook

    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            uow.on_rollback(note("outer-undo"))
            async with uow.transactional() as tx:
                tx.emit(tenant_id=tenant.id, type="uow.tx", occurred_at=DEFAULT_NOW)
                tx.after_commit(note("inner-after"))
                tx.on_rollback(note("inner-undo"))
            raise RuntimeError("after the block committed")
    assert seen == ["inner-after"]
    assert len(await _events(ctx, tenant.id, "uow.tx")) == 1

    seen.clear()
    with pytest.raises(DomainError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            uow.on_rollback(note("outer-undo"))
            async with uow.transactional() as tx:
                tx.emit(tenant_id=tenant.id, type="uow.tx", occurred_at=DEFAULT_NOW)
                tx.after_commit(note("inner-after"))
                tx.on_rollback(note("inner-undo"))
                raise DomainError("CONFLICT")
    assert seen == ["inner-undo", "outer-undo"]
    assert len(await _events(ctx, tenant.id, "uow.tx")) == 1


async def test_wake_dispatcher_wakes_once_per_committed_unit(ctx, tenant, monkeypatch):
    wakes: list[int] = []
    monkeypatch.setattr(ctx.dispatcher, "wake", lambda: wakes.append(1))
    for single in (True, False):
        async with unit_of_work(ctx, single_statement=single) as uow:
            for _ in range(3):
                uow.wake_dispatcher()
    assert len(wakes) == 2
    with pytest.raises(DomainError):
        async with unit_of_work(ctx) as uow:
            uow.wake_dispatcher()
            raise DomainError("CONFLICT")
    assert len(wakes) == 2
    # emit + flush wakes through the same hook: still once
    async with unit_of_work(ctx) as uow:
        uow.emit(tenant_id=tenant.id, type="uow.wake", occurred_at=DEFAULT_NOW)
        uow.wake_dispatcher()
    assert len(wakes) == 3
