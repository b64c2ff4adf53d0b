"""The check-in write path of issue 10: the calendar marked with the folded rate limit BEFORE
the one write statement, taken back when it does not commit, merged on read when Redis lacks
part of it, and made equal to PostgreSQL by the rebuild; make-ups in 2 + 1 round trips; the
Idempotency-Key path (a transactional unit, the member's row locked) under a race."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from service.app import create_app
from service.checkins import rules, service, store
from tests.conftest import http_client, make_settings
from tests.test_checkins_api import CAMPAIGN, checkin, early_member, makeup, page, put_campaign, sh
from tests.test_foundation_api import assert_error
from tests.test_points_api import adjust, db_balance
from tests.test_round_trips import _measure

pytestmark = pytest.mark.asyncio


async def _campaign(ctx, tenant, key="daily"):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        c = await service.find_campaign(ctx, conn, tenant.id, key)
    assert c is not None
    return c


async def _pg_calendar(ctx, c, member_id):  # type: ignore[no-untyped-def]
    """The (calendar, make-ups) bitmaps PostgreSQL's rows make."""
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT day, kind FROM checkins WHERE campaign_id = $1 AND member_id = $2",
            c.id,
            member_id,
        )
    cal = rules.bitmap_of(c.offset(r["day"]) for r in rows)
    mk = rules.bitmap_of(c.offset(r["day"]) for r in rows if r["kind"] == "makeup")
    return cal, mk


def _same(got: tuple[bytes, bytes] | None, want: tuple[bytes, bytes]) -> bool:
    """Equal as sets of days (a bitmap may carry trailing zero bytes)."""
    assert got is not None
    return [rules.offsets_of(b) for b in got] == [rules.offsets_of(b) for b in want]


async def test_refused_makeups_take_their_marks_back(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    mid = await early_member(tenant, clock, "w-ref")
    await adjust(client, tenant, "w-ref", 40)
    for d in (20, 22):
        clock.set(sh(2026, 11, d, 9))
        assert (await checkin(client, tenant, "w-ref")).status_code == 200
    clock.set(sh(2026, 11, 23, 9))
    await page(client, tenant, "w-ref")  # the calendar is in Redis, complete
    c = await _campaign(ctx, tenant)
    # The day is checked already: the make-up bit it set is taken back, the day's bit stays.
    assert_error(await makeup(client, tenant, "w-ref", "2026-11-22"), 409, "MAKEUP_DAY_CHECKED")
    # The cost does not fit: the statement fails as a whole, both bits are taken back.
    await put_campaign(client, tenant, makeup={"perMonth": 2, "costPoints": 100, "windowDays": 7})
    assert_error(await makeup(client, tenant, "w-ref", "2026-11-21"), 409, "INSUFFICIENT_POINTS")
    raw = await store.read(ctx, tenant.id, c.id, c.epoch, mid)
    assert _same(raw, await _pg_calendar(ctx, c, mid))
    p = await page(client, tenant, "w-ref")
    days = {d["date"]: d for d in p["calendar"]}
    assert days["2026-11-21"]["checked"] is False and days["2026-11-22"]["makeup"] is False
    assert days["2026-11-22"]["checked"] is True
    assert await db_balance(ctx, tenant.id, mid) == 40 + 20
    # The quota is used: refused, its marks taken back.
    await put_campaign(client, tenant, makeup={"perMonth": 1, "costPoints": 0, "windowDays": 7})
    assert (await makeup(client, tenant, "w-ref", "2026-11-21")).status_code == 200
    assert_error(await makeup(client, tenant, "w-ref", "2026-11-19"), 409, "MAKEUP_QUOTA_USED")
    raw = await store.read(ctx, tenant.id, c.id, c.epoch, mid)
    assert _same(raw, await _pg_calendar(ctx, c, mid))
    assert rules.offsets_of(raw[1]) == [c.offset(date(2026, 11, 21))]


async def test_a_rate_limited_checkin_marks_and_writes_nothing(servers, ctx, tenant, clock):
    app = create_app(make_settings(servers, rate_member_per_min=2), clock=clock, background=False)
    async with http_client(app) as c:
        r = await c.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
        assert r.status_code == 200, r.text
        mid, headers = await tenant.member("w-429")
        assert (await c.get("/v1/checkins/daily", headers=headers)).status_code == 200
        assert (await c.get("/v1/checkins/daily", headers=headers)).status_code == 200
        refused = await c.post("/v1/checkins/daily", headers=headers)
    err = assert_error(refused, 429, "RATE_LIMITED")
    assert err["details"] == {"limit": 2, "window": "1m"}
    camp = await _campaign(ctx, tenant)
    raw = await store.read(ctx, tenant.id, camp.id, camp.epoch, mid)
    assert raw is not None and rules.offsets_of(raw[0]) == []
    async with ctx.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM checkins WHERE member_id = $1", mid) == 0


async def test_rebuild_drops_a_day_postgresql_does_not_have(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    mid, _ = await tenant.member("w-stale")
    assert (await checkin(client, tenant, "w-stale")).status_code == 200
    await page(client, tenant, "w-stale")
    c = await _campaign(ctx, tenant)
    # A mark whose write never committed and was never taken back (the process died between).
    stale = c.offset(date(2026, 11, 22))
    await store.mark(ctx, tenant.id, c.id, c.epoch, mid, stale, True)
    assert (await page(client, tenant, "w-stale"))["currentStreak"] == 2
    report = await service.rebuild(ctx, tenant.id)
    assert report["calendars"] >= 1
    assert _same(
        await store.read(ctx, tenant.id, c.id, c.epoch, mid), await _pg_calendar(ctx, c, mid)
    )
    p = await page(client, tenant, "w-stale")
    assert p["currentStreak"] == 1 and p["totalDays"] == 1


async def test_an_incomplete_calendar_is_merged_with_postgresql_on_read(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    mid, _ = await tenant.member("w-half")
    for d in (20, 21):
        clock.set(sh(2026, 11, d, 9))
        assert (await checkin(client, tenant, "w-half")).status_code == 200
    await page(client, tenant, "w-half")
    c = await _campaign(ctx, tenant)
    cal_key, mk_key = store.keys(ctx, tenant.id, c.id, c.epoch, mid)
    # Redis lost the make-up bitmap only: the next mark sets the day on the calendar key and
    # leaves the calendar incomplete; the read merges it with PostgreSQL.
    await ctx.redis.delete(mk_key)
    clock.set(sh(2026, 11, 22, 9))
    assert (await checkin(client, tenant, "w-half")).status_code == 200
    assert await store.read(ctx, tenant.id, c.id, c.epoch, mid) is None
    p = await page(client, tenant, "w-half")
    assert p["currentStreak"] == 3 and p["totalDays"] == 3
    assert _same(
        await store.read(ctx, tenant.id, c.id, c.epoch, mid), await _pg_calendar(ctx, c, mid)
    )
    # Lost entirely, with a page read and check-ins racing: the calendar still ends complete.
    await ctx.redis.delete(cal_key, mk_key)
    clock.set(sh(2026, 11, 23, 9))
    _, headers = await tenant.member("w-half")
    await asyncio.gather(
        client.get("/v1/checkins/daily", headers=headers),
        client.post("/v1/checkins/daily", headers=headers),
        client.get("/v1/checkins/daily", headers=headers),
        client.post("/v1/checkins/daily", headers=headers),
    )
    p = await page(client, tenant, "w-half")
    assert p["checkedInToday"] is True and p["currentStreak"] == 4
    assert _same(
        await store.read(ctx, tenant.id, c.id, c.epoch, mid), await _pg_calendar(ctx, c, mid)
    )


async def test_makeup_round_trips(monkeypatch, tenant, client, ctx, clock):
    await put_campaign(client, tenant, makeup={"perMonth": 5, "costPoints": 30, "windowDays": 7})
    n = [0]

    async def member_with_a_gap():  # type: ignore[no-untyped-def]
        n[0] += 1
        ext = f"w-rt-{n[0]}"
        await early_member(tenant, clock, ext)
        assert (await adjust(client, tenant, ext, 100)).status_code == 200
        assert (await checkin(client, tenant, ext)).status_code == 200
        await page(client, tenant, ext)
        return (await tenant.member(ext))[1]

    async def make_up(headers):  # type: ignore[no-untyped-def]
        return await client.post(
            "/v1/checkins/daily/makeups", headers=headers, json={"date": "2026-11-22"}
        )

    counts = await _measure(monkeypatch, make_up, member_with_a_gap)
    print("make-up round trips:", counts.pg, counts.redis)
    assert (len(counts.pg), len(counts.redis)) == (2, 1), (counts.pg, counts.redis)


async def test_concurrent_checkins_with_one_idempotency_key_and_without(tenant, client, ctx):
    await put_campaign(client, tenant)
    mid, headers = await tenant.member("w-idem")
    keyed = {**headers, "Idempotency-Key": "w-idem-checkin-1"}
    rs = await asyncio.gather(
        *[client.post("/v1/checkins/daily", headers=keyed if i % 2 else headers) for i in range(20)]
    )
    assert all(r.status_code in (200, 409) for r in rs), [r.text for r in rs]
    ok = [r.json() for r in rs if r.status_code == 200]
    # 409 only for IDEMPOTENCY_IN_FLIGHT (the same key still running); everything else 200.
    assert {r.json()["error"]["code"] for r in rs if r.status_code == 409} <= {
        "IDEMPOTENCY_IN_FLIGHT"
    }
    assert sum(not b["replayed"] for b in ok) == 1
    assert {(b["date"], b["streak"], b["reward"]["points"]) for b in ok} == {("2026-11-23", 1, 10)}
    async with ctx.db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM checkins WHERE member_id = $1", mid) == 1
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE member_id = $1 AND type = 'checkin.done'", mid
        )
    assert events == 1
    assert await db_balance(ctx, tenant.id, mid) == 10
    assert (await page(client, tenant, "w-idem"))["checkedInToday"] is True


async def test_one_member_firing_makeups_and_checkins_at_once(tenant, client, ctx, clock):
    """Every write of one member competes for the same streak row: the losers re-read and
    re-plan. Whatever each answer, the effects are exactly those answered (rows, ledger,
    events, calendar), and no answer is other than 200 or 409 CONFLICT."""
    await put_campaign(
        client,
        tenant,
        makeup={"perMonth": 31, "costPoints": 3, "windowDays": 20},
        streakRewards=[],  # every check-in pays 10 and emits one event, whatever its streak
    )
    mid = await early_member(tenant, clock, "w-herd")
    await adjust(client, tenant, "w-herd", 1000)
    _, headers = await tenant.member("w-herd")
    await page(client, tenant, "w-herd")
    days = [f"2026-11-{d:02d}" for d in range(3, 23)]
    rs = await asyncio.gather(
        *[
            client.post("/v1/checkins/daily/makeups", headers=headers, json={"date": d})
            for d in days
        ],
        *[client.post("/v1/checkins/daily", headers=headers) for _ in range(5)],
    )
    assert {r.status_code for r in rs} <= {200, 409}, [r.text for r in rs if r.status_code >= 400]
    assert {r.json()["error"]["code"] for r in rs if r.status_code == 409} <= {"CONFLICT"}
    made = {r.json()["date"] for r in rs[:20] if r.status_code == 200}
    checked = [r.json() for r in rs[20:] if r.status_code == 200]
    assert sum(not b["replayed"] for b in checked) == (1 if checked else 0)
    async with ctx.db.connection() as conn:
        got = await conn.fetch(
            "SELECT day, kind FROM checkins WHERE member_id = $1 ORDER BY day", mid
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE member_id = $1 AND type LIKE 'checkin.%'", mid
        )
    assert {r["day"].isoformat() for r in got if r["kind"] == "makeup"} == made
    assert sum(r["kind"] == "daily" for r in got) == (1 if checked else 0)
    assert events == len(got)
    assert await db_balance(ctx, tenant.id, mid) == 1000 - 3 * len(made) + 10 * len(
        [r for r in got if r["kind"] == "daily"]
    )
    p = await page(client, tenant, "w-herd")
    assert p["totalDays"] == len(got)
    c = await _campaign(ctx, tenant)
    raw = await store.read(ctx, tenant.id, c.id, c.epoch, mid)
    assert _same(raw, await _pg_calendar(ctx, c, mid))
    assert made  # (all of them land on an idle machine)


async def test_the_checkin_page_costs_one_redis_round_trip(monkeypatch, tenant, client, ctx):
    from tests.test_round_trips import counting

    await put_campaign(client, tenant)
    _, headers = await tenant.member("w-page")
    assert (await checkin(client, tenant, "w-page")).status_code == 200
    assert (await client.get("/v1/checkins/daily", headers=headers)).status_code == 200
    with counting(monkeypatch) as counts:
        r = await client.get("/v1/checkins/daily", headers=headers)
        assert r.status_code == 200 and r.json()["checkedInToday"] is True
    monkeypatch.undo()
    # one round trip: the rate limit, then one GET per calendar key (no MGET: see store.read)
    assert (len(counts.pg), counts.redis) == (0, ["pipeline[3]"]), (counts.pg, counts.redis)


async def test_a_failure_after_the_write_keeps_the_day_on_the_calendar(
    tenant, client, ctx, clock, monkeypatch
):
    """The write statement committed (single-statement unit): whatever raises after it (the
    code shaping the answer, encoding, a cancellation) leaves the day's bits on the calendar,
    equal to PostgreSQL's rows (before uow.committed() the unmark hook took them away)."""
    from service.core.uow import unit_of_work

    await put_campaign(client, tenant)
    mid = await early_member(tenant, clock, "w-after")
    await adjust(client, tenant, "w-after", 100)
    clock.set(sh(2026, 11, 20, 9))
    await page(client, tenant, "w-after")  # the calendar is in Redis, complete
    c = await _campaign(ctx, tenant)

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("after the write")

    # An error in the code after the statement (shaping the answer).
    monkeypatch.setattr(service, "_checkin_out", boom)
    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            await service.check_in(uow, tenant.id, mid, "daily")
    # A make-up, then a failure in the caller after it returned (encoding the answer).
    monkeypatch.undo()
    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            await service.make_up(uow, tenant.id, mid, "daily", date(2026, 11, 18))
            raise RuntimeError("encoding failed")
    raw = await store.read(ctx, tenant.id, c.id, c.epoch, mid)
    want = await _pg_calendar(ctx, c, mid)
    assert _same(raw, want)
    assert rules.offsets_of(want[0]) == [c.offset(date(2026, 11, d)) for d in (18, 20)]
    assert rules.offsets_of(want[1]) == [c.offset(date(2026, 11, 18))]
    assert await db_balance(ctx, tenant.id, mid) == 100 + 10 - 30
