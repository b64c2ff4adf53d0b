"""Badges, titles and ceremonies over HTTP on real PostgreSQL and Redis: the whole story,
bad input, races, redelivery, backfill, manual awards, isolation of a failing definition."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from service.badges import service as badges
from service.core import outbox
from tests.badge_helpers import count, deliver, put_badge
from tests.test_checkins_api import put_campaign, sh
from tests.test_foundation_api import assert_error

pytestmark = pytest.mark.asyncio

STREAK_BADGE = {
    "name": "七日之约",
    "description": "连续签到 7 天",
    "icon": "https://cdn.example/7day.png",
    "iconLocked": "https://cdn.example/7day-grey.png",
    "series": "streak",
    "tier": "bronze",
    "criteria": [{"kind": "checkinStreak", "days": 7, "campaign": "daily"}],
    "reward": {"points": 77, "title": "签到达人"},
}


async def ledger_badge_credits(ctx, tenant_id: int, member_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT delta AS amount FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2 "
            "AND reason = 'badge.reward'",
            tenant_id,
            member_id,
        )
    return [r["amount"] for r in rows]


async def test_seven_day_streak_badge_from_definition_to_honour_wall(ctx, client, clock, tenant):
    """The issue's "done when": define, check in 7 days, one ceremony, ack, badge and title
    on /v1/me and the wall, the reward in the ledger once."""
    await put_campaign(client, tenant, streakRewards=[])
    r = await client.put(
        "/admin/v1/leaderboards/checkins",
        json={"metric": "checkins", "period": "allTime"},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    out = await put_badge(client, tenant, "streak-7", **STREAK_BADGE)
    assert out["version"] == 1 and out["status"] == "active"
    member_id, headers = await tenant.member("streaker")
    r = await client.patch("/v1/me", headers=headers, json={"nickname": "张三丰"})
    assert r.status_code == 200, r.text
    for day in range(7):
        clock.set(sh(2026, 11, 23, 9) + timedelta(days=day))
        _, headers = await tenant.member("streaker")  # tokens expire as the days pass
        r = await client.post("/v1/checkins/daily", headers=headers)
        assert r.status_code in (200, 201), r.text
        await deliver(ctx)
        wall = (await client.get("/v1/badges", headers=headers)).json()["items"]
        [b] = [b for b in wall if b["key"] == "streak-7"]
        assert b["progress"] == {"current": day + 1, "target": 7}
        assert b["earned"] is (day == 6)
    # Redelivery of everything changes nothing.
    await badges.on_events(ctx, await _all_events(ctx, tenant.id))
    await deliver(ctx)

    r = await client.get("/v1/ceremonies/pending", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["more"] == 0
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["pendingCeremonies"] == 2
    [group] = body["groups"]
    kinds = sorted(c["kind"] for c in group["ceremonies"])
    assert kinds == ["badge", "title"]  # one check-in brought both: played as one group
    badge_c = next(c for c in group["ceremonies"] if c["kind"] == "badge")
    assert badge_c["headline"] == "恭喜获得「七日之约」徽章"
    assert badge_c["assets"]["icon"] == STREAK_BADGE["icon"]
    assert badge_c["share"]["maskedNickname"] == "张*丰"
    assert len(badge_c["share"]["verificationCode"]) == 8
    en = await client.get("/v1/ceremonies/pending", headers={**headers, "Accept-Language": "en"})
    assert "七日之约" in en.json()["groups"][0]["ceremonies"][0]["headline"] or any(
        c["headline"].startswith("You earned") for c in en.json()["groups"][0]["ceremonies"]
    )
    for c in group["ceremonies"]:
        r = await client.post(f"/v1/ceremonies/{c['id']}/ack", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["alreadyPlayed"] is False
        again = await client.post(f"/v1/ceremonies/{c['id']}/ack", headers=headers)
        assert again.json()["alreadyPlayed"] is True
    assert (await client.get("/v1/ceremonies/pending", headers=headers)).json()["groups"] == []

    r = await client.put("/v1/me/title", headers=headers, json={"title": "签到达人"})
    assert r.status_code == 200, r.text
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["title"] == "签到达人" and me["titles"] == ["签到达人"]
    assert [b["key"] for b in me["badges"]] == ["streak-7"] and me["badgesEarned"] == 1
    assert me["pendingCeremonies"] == 0
    mine = (await client.get("/v1/me/badges", headers=headers)).json()
    assert [b["key"] for b in mine["badges"]] == ["streak-7"]
    assert mine["shownTitle"] == "签到达人"

    wall = (await client.get("/v1/honour-wall", headers=headers)).json()["items"]
    badge_entry = next(e for e in wall if e["kind"] == "badge")
    assert badge_entry["member"] == {
        "maskedNickname": "张*丰",
        "avatarUrl": "",
        "title": "签到达人",
    }
    assert await ledger_badge_credits(ctx, tenant.id, member_id) == [77]
    assert (
        await count(ctx, "SELECT count(*) FROM member_badges WHERE tenant_id = $1", tenant.id) == 1
    )
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'ceremony.played'",
            tenant.id,
        )
        == 2
    )


async def _all_events(ctx, tenant_id: int) -> list[outbox.Event]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, event_id, tenant_id, type, member_id, payload, occurred_at FROM outbox "
            "WHERE tenant_id = $1 ORDER BY id",
            tenant_id,
        )
    return [outbox.Event(*r) for r in rows]


async def test_bad_definitions_list_every_problem_and_save_nothing(ctx, client, tenant):
    bad = {
        "name": "坏徽章",
        "criteria": [
            {"kind": "eventCount", "eventType": "order.refunded.never", "count": -3},
            {"kind": "boardRank", "board": "no-such-board", "top": 0},
            {"kind": "levelReached", "level": 9},
            {"kind": "checkinStreak", "days": 0, "campaign": "nope"},
        ],
        "window": {"startsAt": "2026-12-01T00:00:00"},
        "reward": {"points": -5},
    }
    r = await client.put("/admin/v1/badges/bad", json=bad, headers=tenant.admin)
    body = {"error": assert_error(r, 422, "VALIDATION_FAILED")}
    codes = {(p["path"], p["code"]) for p in body["error"]["details"]["problems"]}
    assert codes >= {
        ("criteria[0].count", "COUNT_INVALID"),
        ("criteria[0].eventType", "EVENT_TYPE_UNKNOWN"),
        ("criteria[1].board", "BOARD_UNKNOWN"),
        ("criteria[1].top", "COUNT_INVALID"),
        ("criteria[2].level", "LEVEL_UNKNOWN"),
        ("criteria[3].days", "COUNT_INVALID"),
        ("criteria[3].campaign", "CAMPAIGN_UNKNOWN"),
        ("window.startsAt", "OFFSET_MISSING"),
        ("window.endsAt", "WINDOW_INCOMPLETE"),
        ("reward.points", "COUNT_INVALID"),
    }, codes
    assert all(p["source"] == "body" for p in body["error"]["details"]["problems"])
    assert_error(
        await client.get("/admin/v1/badges/bad", headers=tenant.admin), 404, "BADGE_NOT_FOUND"
    )
    # Unknown fields are refused (strict operator input).
    r = await client.put(
        "/admin/v1/badges/x",
        json={"name": "x", "criteria": [{"kind": "memberJoined"}], "colour": "red"},
        headers=tenant.admin,
    )
    err = assert_error(r, 422, "VALIDATION_FAILED")
    assert err["details"]["problems"][0]["code"] == "UNKNOWN_FIELD"


async def test_reward_cycles_are_refused(ctx, client, tenant):
    # A badge whose reward earns itself.
    r = await client.put(
        "/admin/v1/badges/rich",
        json={
            "name": "富翁",
            "criteria": [{"kind": "totalEarned", "currency": "points", "amount": 100}],
            "reward": {"points": 10},
        },
        headers=tenant.admin,
    )
    body = {"error": assert_error(r, 422, "VALIDATION_FAILED")}
    assert [p["code"] for p in body["error"]["details"]["problems"]] == ["REWARD_CYCLE"]
    # Through another badge: a needs b, b needs a.
    await put_badge(client, tenant, "a", name="A", criteria=[{"kind": "memberJoined"}])
    await put_badge(client, tenant, "b", name="B", criteria=[{"kind": "badgeEarned", "badge": "a"}])
    r = await client.put(
        "/admin/v1/badges/a",
        json={"name": "A", "criteria": [{"kind": "badgeEarned", "badge": "b"}]},
        headers=tenant.admin,
    )
    assert_error(r, 422, "VALIDATION_FAILED")
    assert (await client.get("/admin/v1/badges/a", headers=tenant.admin)).json()["version"] == 1


async def test_fifty_concurrent_events_complete_one_badge_once(ctx, client, tenant):
    """50 paid orders at once towards a 10-order badge, delivered by racing subscribers and
    then redelivered: one badge, one ceremony, one reward."""
    r = await client.put(
        "/admin/v1/rules/orders",
        json={
            "eventType": "order.paid",
            "effect": {"kind": "credit", "currency": "growth", "amount": 1},
        },
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    await put_badge(
        client,
        tenant,
        "shopper",
        name="购物达人",
        criteria=[{"kind": "eventCount", "eventType": "order.paid", "count": 10}],
        reward={"points": 50},
    )
    await deliver(ctx)  # the backfill job's work is not needed: nothing happened yet
    member_id, _ = await tenant.member("buyer")

    async def order(i: int):  # type: ignore[no-untyped-def]
        return await client.post(
            "/admin/v1/events",
            json={
                "eventId": f"o-{i}",
                "type": "order.paid",
                "externalId": "buyer",
                "value": 99,
                "occurredAt": ctx.clock.now().isoformat(),
            },
            headers=tenant.admin,
        )

    results = await asyncio.gather(*[order(i) for i in range(50)])
    assert all(r.status_code == 200 for r in results), [r.text for r in results][:2]
    events = [e for e in await _all_events(ctx, tenant.id) if e.type == "member.event"]
    assert len({e.payload["eventId"] for e in events}) == 50, [e.payload for e in events][:3]
    # Racing deliveries of overlapping batches, as a second dispatcher would do.
    await asyncio.gather(*[badges.on_events(ctx, events[i::3] + events[:5]) for i in range(6)])
    await deliver(ctx)
    await badges.on_events(ctx, events)  # redelivery
    await deliver(ctx)
    assert (
        await count(ctx, "SELECT count(*) FROM member_badges WHERE tenant_id = $1", tenant.id) == 1
    )
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM ceremonies WHERE tenant_id = $1 AND kind = 'badge'",
            tenant.id,
        )
        == 1
    )
    assert await ledger_badge_credits(ctx, tenant.id, member_id) == [50]
    assert (
        await count(
            ctx,
            "SELECT current FROM badge_progress WHERE tenant_id = $1 AND member_id = $2",
            tenant.id,
            member_id,
        )
        == 50
    )


async def test_backfill_earns_exactly_the_members_who_qualified(ctx, client, clock, tenant):
    """300 members checked in (some 3 days, some 2) before the badge existed: the backfill
    gives it to exactly the 3-day ones, once, however often it runs."""
    await put_campaign(client, tenant, streakRewards=[])
    from service.core.uow import unit_of_work
    from service.members import service as members

    async with unit_of_work(ctx) as uow:
        ids = await members.resolve_many(uow, tenant.id, [f"m{i}" for i in range(300)])
    qualified = {ids[f"m{i}"] for i in range(300) if i % 3 != 0}
    rows = []
    for i in range(300):
        m = ids[f"m{i}"]
        for day in range(3 if m in qualified else 2):
            rows.append(
                (
                    tenant.id,
                    "checkin.done",
                    m,
                    {"campaign": "daily", "date": f"2026-11-{20 + day}", "streak": day + 1},
                    sh(2026, 11, 20 + day, 9),
                )
            )
    async with ctx.db.transaction() as conn:
        await outbox.write(
            conn, [outbox.OutboxRow(t, uuid.uuid4(), ty, m, p, o) for t, ty, m, p, o in rows]
        )
    await deliver(ctx)
    await put_badge(
        client,
        tenant,
        "three",
        name="三日连签",
        criteria=[{"kind": "checkinStreak", "days": 3}],
        reward={"growth": 3},
    )
    # The job finds the new definition and replays history through it ...
    assert await badges.backfill_due(ctx) >= 1
    listed = (await client.get("/admin/v1/badges/three", headers=tenant.admin)).json()
    assert listed["backfilledAt"] is not None
    # ... and the command (or POST) running again, or racing itself, earns nothing more.
    runs = await asyncio.gather(
        *[client.post("/admin/v1/badges/three/backfill", headers=tenant.admin) for _ in range(3)]
    )
    assert [r.status_code for r in runs] == [200, 200, 200], runs[0].text
    assert sum(r.json()["earned"] for r in runs) == 0
    await deliver(ctx)
    async with ctx.db.connection() as conn:
        earned = {
            r["member_id"]
            for r in await conn.fetch(
                "SELECT member_id FROM member_badges WHERE tenant_id = $1", tenant.id
            )
        }
        credits = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 AND reason = 'badge.reward'",
            tenant.id,
        )
    assert earned == qualified
    assert credits == 200
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM ceremonies WHERE tenant_id = $1 AND kind = 'badge'",
            tenant.id,
        )
        == 200
    )


async def test_manual_award_and_revoke_are_audited(ctx, client, tenant):
    await put_badge(
        client,
        tenant,
        "hero",
        name="社区英雄",
        criteria=[{"kind": "manual"}],
        reward={"title": "英雄"},
    )
    await tenant.member("helper")
    path = "/admin/v1/members/helper/badges/hero"
    assert_error(
        await client.post(path + "/award", json={}, headers=tenant.admin), 422, "VALIDATION_FAILED"
    )
    assert_error(
        await client.post(
            "/admin/v1/members/helper/badges/nope/award", json={"reason": "x"}, headers=tenant.admin
        ),
        404,
        "BADGE_NOT_FOUND",
    )
    assert_error(
        await client.post(
            "/admin/v1/members/ghost/badges/hero/award", json={"reason": "x"}, headers=tenant.admin
        ),
        404,
        "MEMBER_NOT_FOUND",
    )
    results = await asyncio.gather(
        *[
            client.post(path + "/award", json={"reason": "救火"}, headers=tenant.admin)
            for _ in range(10)
        ]
    )
    assert all(r.status_code in (200, 409) for r in results), [r.text for r in results]
    assert sum(r.json().get("changed", False) for r in results if r.status_code == 200) == 1
    await deliver(ctx)
    _, headers = await tenant.member("helper")
    wall = (await client.get("/v1/honour-wall", headers=headers)).json()["items"]
    assert sorted(e["kind"] for e in wall) == ["badge", "title"]
    r = await client.post(path + "/revoke", json={"reason": "误发"}, headers=tenant.admin)
    assert r.status_code == 200 and r.json()["changed"] is True
    await deliver(ctx)
    wall = (await client.get("/v1/honour-wall", headers=headers)).json()["items"]
    assert wall == []  # neither the badge nor the title it gave
    pending = (await client.get("/v1/ceremonies/pending", headers=headers)).json()
    assert pending["groups"] == []
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM member_badges WHERE tenant_id = $1 AND revoked_at IS NULL",
            tenant.id,
        )
        == 0
    )
    assert (
        await count(ctx, "SELECT count(*) FROM member_titles WHERE tenant_id = $1", tenant.id) == 0
    )
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM badge_audit WHERE tenant_id = $1 AND action = 'revoke'",
            tenant.id,
        )
        == 1
    )
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM badge_audit WHERE tenant_id = $1 AND action = 'award'",
            tenant.id,
        )
        >= 1
    )


async def test_a_failing_definition_is_parked_and_the_others_keep_earning(ctx, client, tenant):
    await put_badge(client, tenant, "good", name="好", criteria=[{"kind": "memberJoined"}])
    await put_badge(client, tenant, "broken", name="坏", criteria=[{"kind": "memberJoined"}])
    # Corrupt one stored definition the way a bad migration might.
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE badge_definitions SET config = jsonb_set(config, '{criteria,0}', "
            "'{\"kind\": \"eventCount\"}') WHERE tenant_id = $1 AND key = 'broken'",
            tenant.id,
        )
    await deliver(ctx)
    await tenant.member("newbie")
    await deliver(ctx)
    r = await client.get("/admin/v1/badges", headers=tenant.admin)
    assert r.status_code == 200, r.text
    listed = {b["key"]: b for b in r.json()["items"]}
    assert listed["broken"]["status"] == "parked" and listed["broken"]["parkedReason"]
    assert listed["good"]["status"] == "active"
    earned_sql = (
        "SELECT count(*) FROM member_badges mb JOIN badge_definitions d ON d.id = mb.badge_id "
        "WHERE d.tenant_id = $1 AND d.key = $2"
    )
    assert await count(ctx, earned_sql, tenant.id, "good") == 1
    assert await count(ctx, earned_sql, tenant.id, "broken") == 0
    await tenant.member("second")  # joins while the badge is parked
    await deliver(ctx)
    assert await count(ctx, earned_sql, tenant.id, "broken") == 0
    # The operator corrects it: it resumes and catches up on what it missed, once.
    fixed = await put_badge(
        client, tenant, "broken", name="坏", criteria=[{"kind": "memberJoined"}]
    )
    assert fixed["status"] == "resuming"
    await deliver(ctx)
    await deliver(ctx)
    got = (await client.get("/admin/v1/badges/broken", headers=tenant.admin)).json()
    assert got["status"] == "active", got
    assert await count(ctx, earned_sql, tenant.id, "broken") == 2
    assert await count(ctx, earned_sql, tenant.id, "good") == 2


async def test_hidden_badges_are_masked_until_earned(ctx, client, tenant):
    await put_badge(
        client,
        tenant,
        "secret",
        name="彩蛋",
        hidden=True,
        iconLocked="lock.png",
        criteria=[{"kind": "firstTime", "eventType": "wheel.spun"}],
    )
    member_id, headers = await tenant.member("curious")
    [b] = [
        b
        for b in (await client.get("/v1/badges", headers=headers)).json()["items"]
        if b["key"] == "secret"
    ]
    assert b["name"] == "神秘徽章" and b["progress"] is None and b["icon"] == "" and b["hidden"]
    async with ctx.db.transaction() as conn:
        await outbox.emit(
            conn,
            tenant_id=tenant.id,
            type="wheel.spun",
            member_id=member_id,
            payload={"wheelKey": "w"},
            occurred_at=ctx.clock.now(),
        )
    await deliver(ctx)
    [b] = [
        b
        for b in (await client.get("/v1/badges", headers=headers)).json()["items"]
        if b["key"] == "secret"
    ]
    assert b["name"] == "彩蛋" and b["earned"] and b["progress"] == {"current": 1, "target": 1}
    assert_error(
        await client.put("/v1/me/title", headers=headers, json={"title": "不存在"}),
        422,
        "TITLE_NOT_HELD",
    )


async def test_tenants_never_see_each_others_badges(ctx, client, tenant, other_tenant):
    await put_badge(client, tenant, "mine", name="我的", criteria=[{"kind": "memberJoined"}])
    _, headers = await other_tenant.member("stranger")
    assert (await client.get("/v1/badges", headers=headers)).json()["items"] == []
    assert_error(
        await client.get("/admin/v1/badges/mine", headers=other_tenant.admin),
        404,
        "BADGE_NOT_FOUND",
    )


async def test_first_on_last_weeks_board_holds_a_title_until_the_week_ends(
    ctx, client, clock, tenant
):
    r = await client.put(
        "/admin/v1/leaderboards/weekly-points",
        json={"metric": "points", "period": "weekly"},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        "/admin/v1/red-black/weekly-rb",
        json={"boardKey": "weekly-points", "redSize": 3},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    body = {
        "name": "周冠军",
        "repeat": "weekly",
        "criteria": [{"kind": "boardRank", "board": "weekly-points", "top": 1}],
        "reward": {"title": "周冠军", "titleUntil": "periodEnd"},
    }
    bad = await client.put(
        "/admin/v1/badges/champ", json={**body, "repeat": "once"}, headers=tenant.admin
    )
    assert_error(bad, 422, "VALIDATION_FAILED")
    await put_badge(client, tenant, "champ", **body)
    a, _ = await tenant.member("first")
    b, _ = await tenant.member("second")

    async def publish(red: list[int]) -> None:
        async with ctx.db.transaction() as conn:
            await outbox.emit(
                conn,
                tenant_id=tenant.id,
                type="red-black.published",
                payload={
                    "key": "weekly-rb",
                    "boardKey": "weekly-points",
                    "revision": 1,
                    "red": red,
                },
                occurred_at=ctx.clock.now(),
            )
        await deliver(ctx)

    clock.set(sh(2026, 11, 30, 0, 5))  # Monday: last week's board closed
    await publish([a, b])
    _, ha = await tenant.member("first")
    _, hb = await tenant.member("second")
    assert (await client.get("/v1/me", headers=ha)).json()["titles"] == ["周冠军"]
    assert (await client.get("/v1/me", headers=hb)).json()["titles"] == []
    clock.set(sh(2026, 12, 7, 0, 5))  # a week later: the title has lapsed, b won this time
    await publish([b, a])
    _, ha = await tenant.member("first")
    _, hb = await tenant.member("second")
    assert (await client.get("/v1/me", headers=ha)).json()["titles"] == []
    assert (await client.get("/v1/me", headers=hb)).json()["titles"] == ["周冠军"]
    assert (
        await count(ctx, "SELECT count(*) FROM member_badges WHERE tenant_id = $1", tenant.id) == 2
    )


async def _wall_and_pending(client, headers) -> tuple[list[str], list[list[str]]]:  # type: ignore[no-untyped-def]
    wall = (await client.get("/v1/honour-wall", headers=headers)).json()["items"]
    body = (await client.get("/v1/ceremonies/pending", headers=headers)).json()
    groups = [sorted(c["kind"] for c in g["ceremonies"]) for g in body["groups"]]
    return sorted(e["kind"] for e in wall), groups


async def test_revoke_withdraws_the_honour_whatever_order_the_subscribers_see(ctx, client, tenant):
    """F9: award then revoke before the ceremony subscriber ran leaves nothing pending nor on
    the wall; award, revoke, award is one honour (one group: badge + title), not two."""
    await put_badge(
        client,
        tenant,
        "cyc",
        name="Cyc",
        criteria=[{"kind": "manual"}],
        reward={"points": 4, "title": "环"},
    )
    await tenant.member("ivy")
    _, ivy = await tenant.member("ivy")
    await tenant.member("hank")
    _, hank = await tenant.member("hank")
    await deliver(ctx)
    for who, steps in (("ivy", ["award", "revoke"]), ("hank", ["award", "revoke", "award"])):
        for step in steps:
            r = await client.post(
                f"/admin/v1/members/{who}/badges/cyc/{step}",
                json={"reason": "t"},
                headers=tenant.admin,
            )
            assert r.status_code == 200, r.text
    await deliver(ctx)
    assert (await _wall_and_pending(client, ivy))[1] == []
    wall, groups = await _wall_and_pending(client, hank)
    assert groups == [["badge", "title"]]  # F2 too: one business event, one group
    assert wall == ["badge", "title"]
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM ceremonies WHERE tenant_id = $1 AND NOT wall_hidden",
            tenant.id,
        )
        == 2  # hank's badge and title only
    )
