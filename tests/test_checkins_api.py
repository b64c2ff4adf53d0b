"""Check-ins over HTTP on real PostgreSQL and Redis: days, streaks, make-ups, races, rebuild."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.test_foundation_api import assert_error
from tests.test_points_api import adjust, db_balance

pytestmark = pytest.mark.asyncio

SH = ZoneInfo("Asia/Shanghai")


def sh(*args: int) -> datetime:
    """A Shanghai wall-clock time as an aware instant."""
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


CAMPAIGN = {
    "startsAt": "2026-11-01T00:00:00+08:00",
    "state": "live",
    "title": "每日签到",
    "baseReward": {"points": 10},
    "streakRewards": [{"day": 3, "points": 20}, {"day": 7, "points": 100, "growth": 5}],
    "makeup": {"perMonth": 2, "costPoints": 30, "windowDays": 7},
}


async def put_campaign(client, tenant, key="daily", **overrides):  # type: ignore[no-untyped-def]
    r = await client.put(
        f"/admin/v1/checkin-campaigns/{key}", headers=tenant.admin, json={**CAMPAIGN, **overrides}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def checkin(client, tenant, ext, key="daily"):  # type: ignore[no-untyped-def]
    _, headers = await tenant.member(ext)
    return await client.post(f"/v1/checkins/{key}", headers=headers)


async def page(client, tenant, ext, key="daily", month=None):  # type: ignore[no-untyped-def]
    _, headers = await tenant.member(ext)
    params = {"month": month} if month else None
    r = await client.get(f"/v1/checkins/{key}", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def makeup(client, tenant, ext, day, key="daily"):  # type: ignore[no-untyped-def]
    _, headers = await tenant.member(ext)
    return await client.post(f"/v1/checkins/{key}/makeups", headers=headers, json={"date": day})


async def rows(ctx, tenant_id, member_id):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return await conn.fetch(
            "SELECT day, kind, streak, reward_points, cost FROM checkins "
            "WHERE tenant_id = $1 AND member_id = $2 ORDER BY day",
            tenant_id,
            member_id,
        )


async def ledger(ctx, tenant_id, member_id):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return await conn.fetch(
            "SELECT currency, delta, reason FROM ledger_entries "
            "WHERE tenant_id = $1 AND member_id = $2 ORDER BY id",
            tenant_id,
            member_id,
        )


async def early_member(tenant, clock, ext):  # type: ignore[no-untyped-def]
    """A member who joined on 2026-11-01 (make-ups never reach before joining)."""
    now = clock.now()
    clock.set(sh(2026, 11, 1, 9))
    mid, _ = await tenant.member(ext)
    clock.set(now)
    return mid


async def test_checkin_pays_once_and_a_repeat_tap_replays(tenant, client, ctx):
    await put_campaign(client, tenant)
    mid, _ = await tenant.member("c-1")
    r1 = await checkin(client, tenant, "c-1")
    assert r1.status_code == 200, r1.text
    body = r1.json()
    assert body["date"] == "2026-11-23" and body["streak"] == 1 and body["kind"] == "daily"
    assert body["reward"] == {"points": 10, "growth": 0, "streakBonusDay": None}
    assert body["replayed"] is False
    assert body["tomorrow"]["date"] == "2026-11-24" and body["tomorrow"]["streak"] == 2
    r2 = await checkin(client, tenant, "c-1")
    assert r2.status_code == 200
    assert r2.json() == {**body, "replayed": True}
    assert [(r["day"], r["kind"]) for r in await rows(ctx, tenant.id, mid)] == [
        (date(2026, 11, 23), "daily")
    ]
    assert await db_balance(ctx, tenant.id, mid) == 10
    p = await page(client, tenant, "c-1")
    assert p["checkedInToday"] is True and p["currentStreak"] == 1 and p["today"] == "2026-11-23"
    assert [d["date"] for d in p["calendar"] if d["checked"]] == ["2026-11-23"]
    assert p["upcoming"][0]["date"] == "2026-11-24"


async def test_a_week_of_streak_rewards_then_a_missed_day(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    mid, _ = await tenant.member("c-week")
    got = []
    for i in range(7):
        clock.set(sh(2026, 11, 23, 8) + timedelta(days=i))
        r = await checkin(client, tenant, "c-week")
        assert r.status_code == 200, r.text
        got.append((r.json()["streak"], r.json()["reward"]["points"]))
    assert got == [(1, 10), (2, 10), (3, 30), (4, 10), (5, 10), (6, 10), (7, 110)]
    assert await db_balance(ctx, tenant.id, mid) == 70 + 20 + 100
    assert await db_balance(ctx, tenant.id, mid, "growth") == 5
    # 2026-11-30 is missed; Dec 1 starts again at 1.
    clock.set(sh(2026, 12, 1, 8))
    r = await checkin(client, tenant, "c-week")
    assert r.json()["streak"] == 1
    p = await page(client, tenant, "c-week")
    assert p["currentStreak"] == 1 and p["longestStreak"] == 7 and p["totalDays"] == 8
    async with ctx.db.connection() as conn:
        events = await conn.fetch(
            "SELECT type, payload FROM outbox WHERE tenant_id = $1 AND type LIKE 'checkin.%' "
            "ORDER BY id",
            tenant.id,
        )
    done = [e["payload"] for e in events if e["type"] == "checkin.done"]
    assert done[0] == {"campaign": "daily", "date": "2026-11-23", "streak": 1}
    assert done[-1] == {"campaign": "daily", "date": "2026-12-01", "streak": 1}
    assert [e["payload"]["milestone"] for e in events if e["type"] == "checkin.streak"] == [3, 7]


async def test_ladder_cycle_restarts(tenant, client, clock):
    await put_campaign(
        client,
        tenant,
        "ladder",
        cycle={"mode": "ladder", "days": 3},
        streakRewards=[{"day": 3, "points": 50}],
    )
    await tenant.member("c-lad")
    got = []
    for i in range(7):
        clock.set(sh(2026, 11, 23, 8) + timedelta(days=i))
        r = await checkin(client, tenant, "c-lad", "ladder")
        got.append((r.json()["streak"], r.json()["reward"]["points"]))
    assert got == [(1, 10), (2, 10), (3, 60), (4, 10), (5, 10), (6, 60), (7, 10)]
    p = await page(client, tenant, "c-lad", "ladder")
    assert [u["cycleDay"] for u in p["upcoming"][:3]] == [2, 3, 1]


async def test_day_boundary_is_local_midnight(tenant, client, clock):
    await put_campaign(client, tenant)
    clock.set(sh(2026, 11, 23, 23, 59, 59))
    r = await checkin(client, tenant, "c-mid")
    assert r.json()["date"] == "2026-11-23" and r.json()["streak"] == 1
    clock.set(sh(2026, 11, 24, 0, 0, 0))
    r = await checkin(client, tenant, "c-mid")
    assert r.status_code == 200 and r.json()["replayed"] is False
    assert r.json()["date"] == "2026-11-24" and r.json()["streak"] == 2
    # The same instants in UTC are 15:59:59 and 16:00:00: the phone's or server's zone is moot.
    assert sh(2026, 11, 24, 0, 0, 0).astimezone(UTC).hour == 16


async def test_other_time_zone_campaign(tenant, client, clock):
    await put_campaign(client, tenant, "ny", timezone="America/New_York")
    clock.set(datetime(2026, 11, 23, 4, 59, 59, tzinfo=UTC))  # 23:59:59 on the 22nd in NY
    assert (await checkin(client, tenant, "c-ny", "ny")).json()["date"] == "2026-11-22"
    clock.set(datetime(2026, 11, 23, 5, 0, 0, tzinfo=UTC))
    r = await checkin(client, tenant, "c-ny", "ny")
    assert r.json()["date"] == "2026-11-23" and r.json()["streak"] == 2


async def test_month_and_year_edges(tenant, client, clock):
    await put_campaign(client, tenant)
    for day in (sh(2026, 11, 30, 23, 59, 59), sh(2026, 12, 1, 0, 0, 0)):
        clock.set(day)
        assert (await checkin(client, tenant, "c-edge")).status_code == 200
    for i, day in enumerate((sh(2026, 12, 31, 23, 59, 59), sh(2027, 1, 1, 0, 0, 0))):
        clock.set(day)
        r = await checkin(client, tenant, "c-edge")
        assert r.json()["streak"] == i + 1
    dec = await page(client, tenant, "c-edge", month="2026-12")
    assert dec["month"] == "2026-12" and len(dec["calendar"]) == 31
    assert [d["date"] for d in dec["calendar"] if d["checked"]] == ["2026-12-01", "2026-12-31"]
    jan = await page(client, tenant, "c-edge")
    assert jan["month"] == "2027-01" and jan["today"] == "2027-01-01"
    assert [d["date"] for d in jan["calendar"] if d["checked"]] == ["2027-01-01"]
    assert jan["currentStreak"] == 2 and jan["longestStreak"] == 2 and jan["totalDays"] == 4
    nov = await page(client, tenant, "c-edge", month="2026-11")
    assert len(nov["calendar"]) == 30 and nov["calendar"][-1]["checked"] is True
    _, headers = await tenant.member("c-edge")
    bad = await client.get("/v1/checkins/daily", headers=headers, params={"month": "2026-13"})
    assert_error(bad, 422, "VALIDATION_FAILED")


async def test_fifty_concurrent_checkins_make_one(tenant, client, ctx, patient):
    await put_campaign(client, tenant)
    mid, headers = await tenant.member("c-race")
    # (The 50 queue on one member: through the patient app, the last may wait its turn.)
    rs = await asyncio.gather(
        *[patient.client.post("/v1/checkins/daily", headers=headers) for _ in range(50)]
    )
    assert [r.status_code for r in rs] == [200] * 50
    bodies = [r.json() for r in rs]
    assert sum(not b["replayed"] for b in bodies) == 1
    assert {(b["date"], b["streak"], b["reward"]["points"]) for b in bodies} == {
        ("2026-11-23", 1, 10)
    }
    assert len(await rows(ctx, tenant.id, mid)) == 1
    assert [(e["delta"], e["reason"]) for e in await ledger(ctx, tenant.id, mid)] == [
        (10, "checkin.daily")
    ]
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND member_id = $2 "
            "AND type = 'checkin.done'",
            tenant.id,
            mid,
        )
    assert n == 1


async def test_makeup_joins_two_runs_and_debits_the_cost(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    mid = await early_member(tenant, clock, "c-mk")
    assert (await adjust(client, tenant, "c-mk", 100)).status_code == 200
    for d in (20, 21, 23, 24):  # the 22nd is missed
        clock.set(sh(2026, 11, d, 9))
        assert (await checkin(client, tenant, "c-mk")).status_code == 200
    assert (await page(client, tenant, "c-mk"))["currentStreak"] == 2
    r = await makeup(client, tenant, "c-mk", "2026-11-22")
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "makeup" and r.json()["streak"] == 5 and r.json()["costPoints"] == 30
    assert r.json()["tomorrow"]["date"] == "2026-11-25" and r.json()["tomorrow"]["streak"] == 6
    again = await makeup(client, tenant, "c-mk", "2026-11-22")
    assert again.status_code == 200 and again.json()["replayed"] is True
    p = await page(client, tenant, "c-mk")
    assert p["currentStreak"] == 5 and p["longestStreak"] == 5
    assert p["makeup"]["usedThisMonth"] == 1 and p["makeup"]["leftThisMonth"] == 1
    day22 = next(d for d in p["calendar"] if d["date"] == "2026-11-22")
    assert day22 == {"date": "2026-11-22", "checked": True, "makeup": True, "canMakeUp": False}
    # 100 + 4 check-ins (10, 10, 10, 10: no day-3 bonus, the 3rd day came later) - 30.
    assert await db_balance(ctx, tenant.id, mid) == 100 + 40 - 30
    debits = [e for e in await ledger(ctx, tenant.id, mid) if e["delta"] < 0]
    assert [(e["delta"], e["reason"]) for e in debits] == [(-30, "checkin.makeup")]
    # The next check-in continues the joined run: day 6.
    clock.set(sh(2026, 11, 25, 9))
    assert (await checkin(client, tenant, "c-mk")).json()["streak"] == 6


async def test_makeup_refusals_write_nothing(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    mid = await early_member(tenant, clock, "c-no")
    late, _ = await tenant.member("c-late")  # joined today, 2026-11-23
    await adjust(client, tenant, "c-no", 1000)
    await checkin(client, tenant, "c-no")
    cases = [
        ("c-no", "2026-11-24", 422, "MAKEUP_DATE_IN_FUTURE"),
        ("c-no", "2026-11-23", 422, "MAKEUP_DATE_IS_TODAY"),
        ("c-no", "2026-11-15", 422, "MAKEUP_WINDOW_PASSED"),
        ("c-late", "2026-11-20", 422, "MAKEUP_BEFORE_JOINING"),
        ("c-late", "2026-11-20", 422, "MAKEUP_BEFORE_JOINING"),
    ]
    for ext, day, status, code in cases:
        assert_error(await makeup(client, tenant, ext, day), status, code)
    await put_campaign(client, tenant, "late", startsAt="2026-11-21T00:00:00+08:00")
    assert_error(
        await makeup(client, tenant, "c-no", "2026-11-20", "late"), 422, "MAKEUP_BEFORE_CAMPAIGN"
    )
    await put_campaign(client, tenant, "nomk", makeup={"perMonth": 0})
    assert_error(
        await makeup(client, tenant, "c-no", "2026-11-20", "nomk"), 409, "MAKEUP_NOT_OFFERED"
    )
    clock.set(sh(2026, 11, 22, 9))
    await checkin(client, tenant, "c-no")
    clock.set(sh(2026, 11, 23, 12))
    assert_error(await makeup(client, tenant, "c-no", "2026-11-22"), 409, "MAKEUP_DAY_CHECKED")
    # Short of points: 409 and no row.
    await put_campaign(client, tenant, "dear", makeup={"perMonth": 2, "costPoints": 5000})
    assert_error(
        await makeup(client, tenant, "c-no", "2026-11-20", "dear"), 409, "INSUFFICIENT_POINTS"
    )
    assert [r["kind"] for r in await rows(ctx, tenant.id, mid)] == ["daily", "daily"]
    assert await rows(ctx, tenant.id, late) == []
    assert await db_balance(ctx, tenant.id, mid) == 1000 + 20


async def test_twenty_concurrent_makeups_against_a_quota_of_two(
    tenant, client, ctx, clock, patient
):
    await put_campaign(client, tenant, makeup={"perMonth": 2, "costPoints": 30, "windowDays": 20})
    mid = await early_member(tenant, clock, "c-q")
    await adjust(client, tenant, "c-q", 1000)
    _, headers = await tenant.member("c-q")
    days = [f"2026-11-{d:02d}" for d in range(3, 23)]  # 20 different missed days
    rs = await asyncio.gather(
        *[
            patient.client.post("/v1/checkins/daily/makeups", headers=headers, json={"date": d})
            for d in days
        ]
    )
    ok = [r for r in rs if r.status_code == 200]
    refused = [r for r in rs if r.status_code != 200]
    assert len(ok) == 2, [(r.status_code, r.text[:120]) for r in rs][:4]
    assert {r.json()["error"]["code"] for r in refused} == {"MAKEUP_QUOTA_USED"}
    assert [r["kind"] for r in await rows(ctx, tenant.id, mid)] == ["makeup", "makeup"]
    debits = [e for e in await ledger(ctx, tenant.id, mid) if e["delta"] < 0]
    assert len(debits) == 2
    assert await db_balance(ctx, tenant.id, mid) == 1000 - 60
    # December has its own quota.
    clock.set(sh(2026, 12, 3, 9))
    assert (await makeup(client, tenant, "c-q", "2026-11-30")).json()["error"]["code"] == (
        "MAKEUP_QUOTA_USED"
    )
    assert (await makeup(client, tenant, "c-q", "2026-12-01")).status_code == 200


async def test_bad_config_is_422_with_every_problem_and_writes_nothing(tenant, client):
    bad = {
        **CAMPAIGN,
        "timezone": "Mars/Olympus_Mons",
        "streakRewards": [{"day": 7, "points": 100}, {"day": 3, "points": 20}],
        "endsAt": "2026-10-01T00:00:00+08:00",
    }
    r = await client.put("/admin/v1/checkin-campaigns/bad", headers=tenant.admin, json=bad)
    err = assert_error(r, 422, "VALIDATION_FAILED")
    codes = {p["code"] for p in err["details"]["problems"]}
    assert codes == {"TIMEZONE_UNKNOWN", "STREAK_LADDER_INVALID", "WINDOW_EMPTY"}
    r = await client.get("/admin/v1/checkin-campaigns/bad", headers=tenant.admin)
    assert_error(r, 404, "CAMPAIGN_NOT_FOUND")
    ladder = {**CAMPAIGN, "cycle": {"mode": "ladder", "days": 5}}
    r = await client.put("/admin/v1/checkin-campaigns/bad", headers=tenant.admin, json=ladder)
    assert {
        p["code"] for p in assert_error(r, 422, "VALIDATION_FAILED")["details"]["problems"]
    } == {"STREAK_LADDER_INVALID"}
    r = await client.put(
        "/admin/v1/checkin-campaigns/bad", headers=tenant.admin, json={**CAMPAIGN, "x": 1}
    )
    assert_error(r, 422, "VALIDATION_FAILED")
    # A valid save bumps the version.
    assert (await put_campaign(client, tenant, "bad"))["version"] == 1
    assert (await put_campaign(client, tenant, "bad"))["version"] == 2


async def test_campaign_not_live(tenant, client, clock):
    await put_campaign(client, tenant, "draft", state="draft")
    # A draft answers its state, as an upcoming or ended campaign does (trial 9, item 4).
    err = assert_error(await checkin(client, tenant, "c-nl", "draft"), 409, "CAMPAIGN_NOT_LIVE")
    assert err["details"]["state"] == "draft"
    _, headers = await tenant.member("c-nl")
    err = assert_error(
        await client.get("/v1/checkins/draft", headers=headers), 409, "CAMPAIGN_NOT_LIVE"
    )
    assert err["details"]["state"] == "draft"
    await put_campaign(client, tenant, "soon", startsAt="2026-12-01T00:00:00+08:00")
    err = assert_error(await checkin(client, tenant, "c-nl", "soon"), 409, "CAMPAIGN_NOT_LIVE")
    assert err["details"]["state"] == "upcoming"
    await put_campaign(client, tenant, "over", endsAt="2026-11-23T00:00:00+08:00")
    assert_error(await checkin(client, tenant, "c-nl", "over"), 409, "CAMPAIGN_NOT_LIVE")
    await put_campaign(client, tenant, "stopped", state="ended")
    assert_error(await checkin(client, tenant, "c-nl", "stopped"), 409, "CAMPAIGN_NOT_LIVE")
    assert_error(
        await makeup(client, tenant, "c-nl", "2026-11-20", "stopped"), 409, "CAMPAIGN_NOT_LIVE"
    )
    assert (await page(client, tenant, "c-nl", "stopped"))["state"] == "ended"


async def test_tenants_are_walled_off(tenant, other_tenant, client, ctx):
    await put_campaign(client, tenant, "mine")
    _, other_headers = await other_tenant.member("c-x")
    assert_error(
        await client.post("/v1/checkins/mine", headers=other_headers), 404, "CAMPAIGN_NOT_FOUND"
    )
    assert_error(
        await client.get("/v1/checkins/mine", headers=other_headers), 404, "CAMPAIGN_NOT_FOUND"
    )
    assert_error(
        await client.get("/admin/v1/checkin-campaigns/mine", headers=other_tenant.admin),
        404,
        "CAMPAIGN_NOT_FOUND",
    )
    # The same key in the other tenant is a different campaign with its own calendars.
    await put_campaign(client, other_tenant, "mine", baseReward={"points": 1})
    assert (await checkin(client, tenant, "c-x", "mine")).json()["reward"]["points"] == 10
    r = await client.post("/v1/checkins/mine", headers=other_headers)
    assert r.json()["reward"]["points"] == 1 and r.json()["replayed"] is False


async def test_rebuild_from_postgres_gives_the_same_calendars(tenant, client, ctx, clock):
    from service.checkins import service, store

    await put_campaign(client, tenant, "rb", makeup={"perMonth": 3, "costPoints": 0})
    exts = [f"rb-{i}" for i in range(5)]
    for ext in exts:
        await early_member(tenant, clock, ext)
    for i, ext in enumerate(exts):
        for d in range(10, 24):
            if (d + i) % 3:
                clock.set(sh(2026, 11, d, 10))
                assert (await checkin(client, tenant, ext, "rb")).status_code == 200
    clock.set(sh(2026, 11, 23, 12))
    r = await makeup(client, tenant, "rb-0", "2026-11-21", "rb")
    assert r.status_code == 200, r.text
    before = {ext: await page(client, tenant, ext, "rb") for ext in exts}
    async with ctx.db.connection() as conn:
        c = await service.find_campaign(ctx, conn, tenant.id, "rb")
    assert c is not None
    raw_before = {}
    for ext in exts:
        mid, _ = await tenant.member(ext)
        raw_before[mid] = await store.read(ctx, tenant.id, c.id, c.epoch, mid)
    assert await store.delete_campaign(ctx, tenant.id, c.id) == 2 * len(exts)
    assert all([await store.read(ctx, tenant.id, c.id, c.epoch, m) is None for m in raw_before])
    report = await service.rebuild(ctx, tenant.id)
    assert report["calendars"] == len(exts)
    for mid, raw in raw_before.items():
        assert await store.read(ctx, tenant.id, c.id, c.epoch, mid) == raw
    after = {ext: await page(client, tenant, ext, "rb") for ext in exts}
    assert after == before
    assert before["rb-0"]["makeup"]["usedThisMonth"] == 1


async def test_a_missing_calendar_is_seeded_on_read_and_on_write(tenant, client, ctx, clock):
    from service.checkins import service, store

    await put_campaign(client, tenant, "seed")
    for d in (21, 22):
        clock.set(sh(2026, 11, d, 10))
        await checkin(client, tenant, "c-seed", "seed")
    async with ctx.db.connection() as conn:
        c = await service.find_campaign(ctx, conn, tenant.id, "seed")
    await store.delete_campaign(ctx, tenant.id, c.id)
    clock.set(sh(2026, 11, 23, 10))
    await checkin(client, tenant, "c-seed", "seed")  # writes into an absent calendar
    p = await page(client, tenant, "c-seed", "seed")
    assert p["currentStreak"] == 3
    assert [d["date"] for d in p["calendar"] if d["checked"]] == [
        "2026-11-21",
        "2026-11-22",
        "2026-11-23",
    ]
