"""Property: for random event sequences, board ranks equal a plain Python model of the board."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.core import tenancy
from service.core.outbox import Event
from service.core.uow import unit_of_work
from service.leaderboards import rules, service, store
from service.leaderboards.schemas import LeaderboardIn
from tests.conftest import DEFAULT_NOW

pytestmark = pytest.mark.asyncio

RUN = uuid.uuid4().hex[:6]
MEMBERS = [1, 2, 3, 4, 2**40]

event_st = st.tuples(
    st.sampled_from(MEMBERS),
    st.sampled_from(["points.credited", "points.credited", "points.credited", "points.reversed"]),
    # Few distinct amounts and instants, so equal scores and same-second reaches are common.
    st.sampled_from([1, 2, 5, 50]),
    # Seconds after the board opens: mostly the first seconds, some in the next week.
    st.one_of(st.integers(0, 3), st.integers(0, 3), st.integers(0, 8 * 86400)),
    st.sampled_from([0, 0, 400, 999]),  # milliseconds: same second, maybe another instant
)
scenario_st = st.tuples(
    st.lists(event_st, min_size=4, max_size=40),
    st.randoms(use_true_random=False),
    st.booleans(),  # redeliver some batches
)


def model(events: list[Event], spec: rules.BoardSpec) -> dict[str, list[tuple[int, int]]]:
    """The board as a plain Python reading of the rules: sum per member and period, reach =
    latest event time, order (score desc, reach tick asc, member asc), zero and below off."""
    totals: dict[tuple[str, int], list] = {}
    periods: dict[str, rules.Period] = {}
    for e in events:
        delta = rules.contribution(spec, e.type, e.payload)
        p = rules.period_for(spec, e.occurred_at)
        if delta == 0 or p is None:
            continue
        periods[p.id] = p
        cur = totals.setdefault((p.id, e.member_id), [0, e.occurred_at])  # type: ignore[list-item]
        cur[0] += delta
        cur[1] = max(cur[1], e.occurred_at)
    out: dict[str, list[tuple[int, int]]] = {}
    for pid, p in periods.items():
        rows = [(m, s, at) for (q, m), (s, at) in totals.items() if q == pid and s > 0]
        rows.sort(key=lambda r: rules.sort_key(r[1], r[2], r[0], p))
        out[pid] = [(m, s) for m, s, _ in rows]
    return out


async def test_ranks_match_a_python_model(ctx, client):
    loop = asyncio.get_running_loop()
    counter = iter(range(10_000))

    async def run_one(scenario) -> None:  # type: ignore[no-untyped-def]
        raw, rnd, redeliver = scenario
        key = "prop"
        # A fresh tenant per example: examples (and shrinking) never see each other's boards.
        async with unit_of_work(ctx) as uow:
            conn = uow.conn
            t = await tenancy.create_tenant(conn, f"prop{RUN}{next(counter)}", "p", DEFAULT_NOW)
            await service.put_board(uow, t.id, key, LeaderboardIn(metric="points", period="weekly"))
        spec = await service.board_spec(ctx, t.id, key)
        events = [
            Event(
                0,
                uuid.uuid4(),
                t.id,
                type_,
                m,
                {"currency": "points", "amount": amount, "entryId": 0, "reason": "p"},
                DEFAULT_NOW + timedelta(seconds=sec, milliseconds=ms),
            )
            for m, type_, amount, sec, ms in raw
        ]
        # Deliver in a random order and random batches, some of them twice (at least once).
        shuffled = list(events)
        rnd.shuffle(shuffled)
        i = 0
        while i < len(shuffled):
            n = rnd.randint(1, 8)
            batch = shuffled[i : i + n]
            await service.on_events(ctx, batch)
            if redeliver and rnd.random() < 0.3:
                await service.on_events(ctx, batch)
            i += n
        want = model(events, spec)
        for pid in ("2026-W48", "2026-W49"):
            k = store.period_key(ctx, t.id, spec.source, spec.id, pid)
            got = [(rules.member_of(m), rules.decode_score(s)) for m, s in await store.dump(ctx, k)]
            assert got == want.get(pid, []), pid
            # "My rank" through the read path agrees with the model for every member.
            for rank, (m, score) in enumerate(want.get(pid, []), 1):
                place = await service._my_place(ctx, spec, rules.period_by_id(spec, pid), False, m)
                assert (place.rank, place.score) == (rank, score)

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(scenario_st)
    @example(
        (
            [
                (2, "points.credited", 5, 1, 0),
                (1, "points.credited", 5, 1, 999),
                (3, "points.credited", 2, 0, 0),
                (3, "points.credited", 3, 1, 400),
            ],
            random.Random(1),
            False,
        )
    )
    def check(scenario) -> None:  # type: ignore[no-untyped-def]
        # Hypothesis drives a plain function: it runs in a worker thread and hands each
        # example to the test's event loop, so shrinking works on async code.
        asyncio.run_coroutine_threadsafe(run_one(scenario), loop).result(timeout=60)

    await asyncio.to_thread(check)
