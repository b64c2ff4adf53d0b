"""Property: for random event sequences delivered in random batches (some twice), the progress
of every criterion kind and the badges earned equal a plain Python model."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.badges import repository as repo
from service.badges import rules
from service.badges import service as badges
from service.core import tenancy
from service.core.outbox import Event
from tests.conftest import DEFAULT_NOW

pytestmark = pytest.mark.asyncio

RUN = uuid.uuid4().hex[:6]
MEMBERS = [11, 12, 13]
SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)

# key -> (criterion as an operator writes it, repeat, window)
DEFINITIONS: dict[str, tuple[dict, str, dict | None]] = {
    "checkins": ({"kind": "eventCount", "eventType": "checkin.done", "count": 3}, "once", None),
    "orders": ({"kind": "eventCount", "eventType": "order.paid", "count": 2}, "once", None),
    "spend": ({"kind": "valueSum", "eventType": "order.paid", "value": 150}, "once", None),
    "first-spin": ({"kind": "firstTime", "eventType": "wheel.spun"}, "once", None),
    "streak": ({"kind": "checkinStreak", "days": 4, "campaign": "daily"}, "once", None),
    "any-streak": ({"kind": "checkinStreak", "days": 5}, "once", None),
    "level": ({"kind": "levelReached", "level": 2}, "once", None),
    "earner": ({"kind": "totalEarned", "currency": "points", "amount": 30}, "once", None),
    "winner": ({"kind": "challengeFinished", "count": 2}, "once", None),
    "finisher": ({"kind": "challengeFinished", "outcome": "any", "count": 2}, "once", None),
    "joined": ({"kind": "memberJoined"}, "once", None),
    "collector": ({"kind": "badgeEarned", "badge": "x"}, "once", None),
    "red": ({"kind": "boardRank", "board": "weekly", "top": 2}, "once", None),
    "weekly": ({"kind": "eventCount", "eventType": "checkin.done", "count": 2}, "weekly", None),
    "daily": ({"kind": "eventCount", "eventType": "wheel.spun", "count": 2}, "daily", None),
    "window": (
        {"kind": "eventCount", "eventType": "checkin.done", "count": 2},
        "once",
        {"startsAt": "2026-11-22T00:00:00+08:00", "endsAt": "2026-11-25T00:00:00+08:00"},
    ),
}

TYPES = [
    "checkin.done",
    "member.event",
    "wheel.spun",
    "level.up",
    "points.credited",
    "challenge.won",
    "challenge.lost",
    "member.joined",
    "badge.earned",
    "red-black.published",
]
event_st = st.tuples(
    st.sampled_from(MEMBERS),
    st.sampled_from(TYPES),
    st.integers(0, 20),  # a value the payload draws from
    st.integers(0, 10 * 24),  # hours after START
    st.booleans(),  # a variant (campaign, brand type, board...)
)
scenario_st = st.tuples(
    st.lists(event_st, min_size=1, max_size=40), st.randoms(use_true_random=False), st.booleans()
)


def make_event(tenant_id: int, raw: tuple) -> Event:
    m, type_, v, hours, alt = raw
    payload: dict = {
        "checkin.done": {"campaign": "other" if alt else "daily", "streak": v % 7 + 1},
        "member.event": {"type": "order.refunded" if alt else "order.paid", "value": v * 10},
        "wheel.spun": {},
        "level.up": {"from": 0, "to": v % 4},
        "points.credited": {"currency": "points", "amount": v},
        "challenge.won": {"challenge": "c"},
        "challenge.lost": {"challenge": "c"},
        "member.joined": {},
        "badge.earned": {"key": "y" if alt else "x"},
        "red-black.published": {
            "boardKey": "monthly" if alt else "weekly",
            "red": [MEMBERS[(v + i) % 3] for i in range(v % 4)],
        },
    }[type_]
    member = None if type_ == "red-black.published" else m
    return Event(0, uuid.uuid4(), tenant_id, type_, member, payload, START + timedelta(hours=hours))


def model_period(repeat: str, window: dict | None, at: datetime) -> str | None:
    if window is not None and not (
        datetime.fromisoformat(window["startsAt"]) <= at < datetime.fromisoformat(window["endsAt"])
    ):
        return None
    local = at.astimezone(SH)
    if repeat == "daily":
        return local.strftime("%Y-%m-%d")
    if repeat == "weekly":
        return local.strftime("%G-W%V")
    return ""


def model(events: list[Event]) -> tuple[dict, set]:
    """(current per (badge, member, period), earned (badge, member, period)) by plain reading."""
    uniq = list({e.event_id: e for e in events}.values())
    cur: dict[tuple[str, int, str], int] = defaultdict(int)
    for key, (c, repeat, window) in DEFINITIONS.items():
        for e in uniq:
            p = model_period(repeat, window, e.occurred_at)
            if p is None:
                continue
            k, t, pl = c["kind"], e.type, e.payload
            if k == "boardRank":
                if t == "red-black.published" and pl["boardKey"] == c["board"]:
                    for m in pl["red"][: c["top"]]:
                        cur[(key, m, p)] = 1
                continue
            m = e.member_id
            if k == "eventCount" and c["eventType"] == "order.paid":
                if t == "member.event" and pl["type"] == "order.paid":
                    cur[(key, m, p)] += 1
            elif k == "eventCount" and t == c["eventType"]:
                cur[(key, m, p)] += 1
            elif k == "valueSum" and t == "member.event" and pl["type"] == "order.paid":
                if pl["value"] > 0:
                    cur[(key, m, p)] += pl["value"]
            elif k == "firstTime" and t == c["eventType"]:
                cur[(key, m, p)] = 1
            elif k == "checkinStreak" and t == "checkin.done":
                if c.get("campaign") in (None, pl["campaign"]):
                    cur[(key, m, p)] = max(cur[(key, m, p)], pl["streak"])
            elif k == "levelReached" and t == "level.up":
                cur[(key, m, p)] = max(cur[(key, m, p)], pl["to"])
            elif k == "totalEarned" and t == "points.credited":
                cur[(key, m, p)] += pl["amount"]
            elif k == "challengeFinished" and t in ("challenge.won", "challenge.lost"):
                if c.get("outcome", "won") == "any" or t == "challenge.won":
                    cur[(key, m, p)] += 1
            elif (k == "memberJoined" and t == "member.joined") or (
                k == "badgeEarned" and t == "badge.earned" and pl["key"] == c["badge"]
            ):
                cur[(key, m, p)] = 1
    targets = {
        key: c.get(
            "count", c.get("value", c.get("days", c.get("level", c.get("amount", c.get("top", 1)))))
        )
        for key, (c, _, _) in DEFINITIONS.items()
    }
    earned = {(k, m, p) for (k, m, p), v in cur.items() if v >= targets[k]}
    return dict(cur), earned


async def test_progress_matches_a_python_model(ctx, client):
    loop = asyncio.get_running_loop()
    counter = iter(range(10_000))

    async def run_one(scenario) -> None:  # type: ignore[no-untyped-def]
        raw, rnd, redeliver = scenario
        async with ctx.db.transaction() as conn:
            t = await tenancy.create_tenant(conn, f"bprop{RUN}{next(counter)}", "p", DEFAULT_NOW)
        specs = []
        async with ctx.db.transaction() as conn:
            for key, (c, repeat, window) in DEFINITIONS.items():
                config = {
                    "name": key,
                    "criteria": [c],
                    "repeat": repeat,
                    "timezone": "Asia/Shanghai",
                }
                if window:
                    config["window"] = window
                row = await repo.put_definition(conn, t.id, key, config, True, DEFAULT_NOW)
                specs.append(
                    (rules.spec_from(row["id"], t.id, key, config, "Asia/Shanghai"), config)
                )
            # Delivered by hand below; the backfill job of other tests must not replay them.
            await conn.execute(
                "UPDATE badge_definitions SET backfill_due = false WHERE tenant_id = $1", t.id
            )
        events = [make_event(t.id, r) for r in raw]
        shuffled = list(events)
        rnd.shuffle(shuffled)
        i = 0
        while i < len(shuffled):
            n = rnd.randint(1, 8)
            batch = shuffled[i : i + n]
            for b in [batch, batch] if redeliver and rnd.random() < 0.4 else [batch]:
                for spec, config in specs:
                    async with ctx.db.transaction() as conn:
                        await badges.apply(ctx, conn, spec, config, b)
            i += n
        want_cur, want_earned = model(events)
        async with ctx.db.connection() as conn:
            rows = await conn.fetch(
                "SELECT d.key, p.member_id, p.period_id, p.current FROM badge_progress p "
                "JOIN badge_definitions d ON d.id = p.badge_id WHERE d.tenant_id = $1",
                t.id,
            )
            earned = await conn.fetch(
                "SELECT d.key, m.member_id, m.period_id FROM member_badges m "
                "JOIN badge_definitions d ON d.id = m.badge_id WHERE d.tenant_id = $1",
                t.id,
            )
        got = {(r["key"], r["member_id"], r["period_id"]): r["current"] for r in rows}
        assert {k: v for k, v in got.items() if v} == {k: v for k, v in want_cur.items() if v}
        assert {(r["key"], r["member_id"], r["period_id"]) for r in earned} == want_earned

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(scenario_st)
    @example(
        # Streaks and levels of one member in one batch: raised, never added up.
        (
            [
                (11, "checkin.done", 2, 1, False),
                (11, "checkin.done", 3, 2, False),
                (11, "level.up", 1, 3, False),
                (11, "level.up", 2, 4, False),
            ],
            random.Random(1),
            True,
        )
    )
    def check(scenario) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(run_one(scenario), loop).result(timeout=120)

    await asyncio.to_thread(check)
