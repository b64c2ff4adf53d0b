"""Hypothesis state machine over earn / spend / expire / reverse / review, on real PostgreSQL.

Invariants after every step: balance = sum of entries = sum of lot remainders; never negative;
after expiry runs, only unexpired lots hold anything; each spend drew from lots in FIFO order
(checked against a plain Python model); a reversal takes back exactly what was left of the
credit's own lots; the level equals the model's. Between expiry-job runs (the clock moves by
hours, the job runs only when drawn), every balance anyone is shown - the card, and the
balance_after of each credit, spend and reversal - is the model's spendable balance at that
instant: the unexpired lots.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from service.core import tenancy
from service.core.clock import FixedClock
from service.core.errors import DomainError
from service.core.uow import unit_of_work
from service.points import rules as prules
from service.points import service as points
from service.runtime import open_context
from tests.conftest import make_settings

START = datetime(2026, 1, 1, tzinfo=UTC)
LADDER = {
    "levels": [
        {"name": "L0", "threshold": 0},
        {"name": "L1", "threshold": 100},
        {"name": "L2", "threshold": 300},
    ],
    "validity": {"mode": "forever"},
}


class LedgerMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    ctx = None
    servers: dict[str, str]

    def __init__(self) -> None:
        super().__init__()
        self.clock: FixedClock = self.ctx.clock  # type: ignore[union-attr]
        self.clock.set(START)
        self.tenant_id, self.member_id = self.run(self._setup())
        # model: lot id -> [amount, remaining, expires_at, credit entry id]
        self.lots: dict[int, list] = {}
        self.credits: dict[int, int] = {}  # credit entry id -> currency flag (points=1)
        self.reversed: set[int] = set()
        self.growth = 0
        self.level = 0

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    async def _setup(self) -> tuple[int, int]:
        ctx = self.ctx
        async with ctx.db.transaction() as conn:  # type: ignore[union-attr]
            t = await tenancy.create_tenant(conn, "sm" + secrets.token_hex(5), "sm", START)
            await tenancy.update_tenant_settings(
                conn,
                t.id,
                {
                    "points": {
                        "expiry": {"mode": "days", "days": 30},
                        "reversalShortfall": "partial",
                        "unknownMember": "create",
                    }
                },
            )
            await points.repo.put_ladder(conn, t.id, LADDER, START)
            mid = await conn.fetchval(
                "INSERT INTO members (tenant_id, nickname, avatar_url, created_at) "
                "VALUES ($1, '', '', $2) RETURNING id",
                t.id,
                START,
            )
        return t.id, mid

    # ------------------------------------------------------------------ steps

    @rule(amount=st.integers(1, 200))
    def earn(self, amount: int) -> None:
        async def go():  # type: ignore[no-untyped-def]
            async with unit_of_work(self.ctx) as uow:  # type: ignore[union-attr]
                conn = uow.conn
                e = await points.credit(
                    uow, self.tenant_id, self.member_id, "points", amount, reason="earn"
                )
                lot = await conn.fetchval("SELECT id FROM point_lots WHERE entry_id=$1", e.id)
            return e, lot

        # The credit writes the expiry of the member's due lots first.
        self._expire_model()
        e, lot = self.run(go())
        self.lots[lot] = [amount, amount, e.expires_at, e.id]
        self.credits[e.id] = 1
        assert e.balance_after == self._spendable()

    @rule(amount=st.integers(1, 150))
    def earn_growth(self, amount: int) -> None:
        async def go():  # type: ignore[no-untyped-def]
            async with unit_of_work(self.ctx) as uow:  # type: ignore[union-attr]
                return await points.credit(
                    uow, self.tenant_id, self.member_id, "growth", amount, reason="earn"
                )

        e = self.run(go())
        self.credits[e.id] = 0
        self.growth += amount
        self.level = max(self.level, self._index(self.growth))

    def _spendable(self) -> int:
        return sum(lot.remaining for lot in self._live())

    @staticmethod
    def _index(growth: int) -> int:
        return 2 if growth >= 300 else 1 if growth >= 100 else 0

    def _live(self) -> list[prules.Lot]:
        now = self.clock.now()
        return [
            prules.Lot(i, v[1], v[2])
            for i, v in self.lots.items()
            if v[1] > 0 and (v[2] is None or v[2] > now)
        ]

    @rule(amount=st.integers(1, 300))
    def spend(self, amount: int) -> None:
        live = self._live()
        available = sum(lot.remaining for lot in live)

        async def go():  # type: ignore[no-untyped-def]
            async with unit_of_work(self.ctx) as uow:  # type: ignore[union-attr]
                conn = uow.conn
                e = await points.debit(uow, self.tenant_id, self.member_id, amount, reason="spend")
                allocs = await conn.fetch(
                    "SELECT lot_id, amount FROM lot_allocations WHERE entry_id=$1 ORDER BY lot_id",
                    e.id,
                )
            return e, allocs

        if amount > available:
            with pytest.raises(DomainError) as err:
                self.run(go())
            assert err.value.code == "INSUFFICIENT_POINTS"
            return
        # The debit expires due lots first (model: they drop out of `live` already).
        self._expire_model()
        e, allocs = self.run(go())
        expected = sorted(prules.allocate(live, amount))
        assert sorted((r["lot_id"], r["amount"]) for r in allocs) == expected
        for lot_id, take in expected:
            self.lots[lot_id][1] -= take
        assert e.balance_after == self._spendable()

    def _expire_model(self) -> None:
        now = self.clock.now()
        for v in self.lots.values():
            if v[2] is not None and v[2] <= now:
                v[1] = 0

    @rule(hours=st.integers(1, 40 * 24))
    def advance(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule()
    def expire(self) -> None:
        async def go():  # type: ignore[no-untyped-def]
            async with unit_of_work(self.ctx) as uow:  # type: ignore[union-attr]
                return await points.expire_member(uow, self.tenant_id, self.member_id, "points")

        now = self.clock.now()
        due = sum(v[1] for v in self.lots.values() if v[2] is not None and v[2] <= now)
        assert self.run(go()) == due
        self._expire_model()

    @precondition(lambda self: any(e not in self.reversed for e in self.credits))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        entry_id = data.draw(
            st.sampled_from(sorted(e for e in self.credits if e not in self.reversed))
        )

        async def go():  # type: ignore[no-untyped-def]
            async with unit_of_work(self.ctx) as uow:  # type: ignore[union-attr]
                return await points.reverse(uow, self.tenant_id, entry_id)

        if self.credits[entry_id]:
            self._expire_model()  # a points reversal writes due expiries first
        rev = self.run(go())
        self.reversed.add(entry_id)
        if self.credits[entry_id]:
            left = sum(v[1] for v in self.lots.values() if v[3] == entry_id)
            credited = sum(v[0] for v in self.lots.values() if v[3] == entry_id)
            assert -rev.delta == left and rev.shortfall == credited - left
            for v in self.lots.values():
                if v[3] == entry_id:
                    v[1] = 0
            assert rev.balance_after == self._spendable()
        else:
            self.growth += rev.delta
            self.level = self._index(self.growth)

    # ------------------------------------------------------------------ invariants

    async def _card(self):  # type: ignore[no-untyped-def]
        async with self.ctx.db.connection() as conn:  # type: ignore[union-attr]
            return await points.member_card(self.ctx, conn, self.tenant_id, self.member_id)

    @invariant()
    def books_balance(self) -> None:
        async def go():  # type: ignore[no-untyped-def]
            async with self.ctx.db.connection() as conn:  # type: ignore[union-attr]
                return await conn.fetchrow(
                    "SELECT (SELECT COALESCE(balance, 0) FROM point_accounts WHERE tenant_id=$1 "
                    "AND member_id=$2 AND currency='points') AS bal, "
                    "(SELECT COALESCE(sum(delta), 0) FROM ledger_entries WHERE tenant_id=$1 AND "
                    "member_id=$2 AND currency='points') AS entries, "
                    "(SELECT COALESCE(sum(remaining), 0) FROM point_lots WHERE tenant_id=$1 AND "
                    "member_id=$2 AND currency='points') AS lots, "
                    "(SELECT level_index FROM member_levels WHERE tenant_id=$1 AND member_id=$2) "
                    "AS level",
                    self.tenant_id,
                    self.member_id,
                )

        row = self.run(go())
        # What the member is shown now, whether or not the expiry job has run.
        card = self.run(self._card())
        assert card.points == self._spendable()
        bal = row["bal"] or 0
        assert bal == row["entries"] == row["lots"] >= 0
        assert bal == sum(v[1] for v in self.lots.values())
        assert (row["level"] or 0) == self.level


@pytest.mark.timeout(600)
def test_ledger_state_machine(servers) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    clock = FixedClock(START)
    cm = open_context(make_settings(servers), clock=clock)
    ctx = loop.run_until_complete(cm.__aenter__())
    try:
        LedgerMachine.loop = loop
        LedgerMachine.ctx = ctx
        LedgerMachine.TestCase.settings = settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        LedgerMachine.TestCase().runTest()
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()


def test_model_allocation_is_fifo() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    lots = [
        prules.Lot(1, 10, None),
        prules.Lot(2, 5, t0 + timedelta(days=5)),
        prules.Lot(3, 5, t0 + timedelta(days=1)),
        prules.Lot(4, 5, t0 + timedelta(days=1)),
    ]
    assert prules.allocate(lots, 12) == [(3, 5), (4, 5), (2, 2)]
    with pytest.raises(ValueError):
        prules.allocate(lots, 26)
