"""GET /v1/me/summary: every field in one call, and a fixed number of statements whatever the
number of campaigns (no N+1): the statements are counted on the connections the call uses."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from tests.ritual_helpers import complete, put_ritual
from tests.test_challenges_api import CHALLENGE
from tests.test_checkins_api import CAMPAIGN
from tests.test_points_api import LADDER
from tests.wheel_helpers import put_wheel, wheel_config


@asynccontextmanager
async def counting(ctx: Any, monkeypatch: Any):  # type: ignore[no-untyped-def]
    """Count every statement sent to PostgreSQL (query logger on each connection handed
    out) and every Redis command, while the block runs."""
    seen: list[str] = []
    original = ctx.db.connection

    @asynccontextmanager
    async def connection():  # type: ignore[no-untyped-def]
        async with original() as conn:
            log = lambda record: seen.append(record.query)  # noqa: E731
            conn.add_query_logger(log)
            try:
                yield conn
            finally:
                conn.remove_query_logger(log)

    redis_calls: list[Any] = []
    real = ctx.redis.execute_command

    async def execute_command(*args: Any, **kw: Any) -> Any:
        redis_calls.append(args[0])
        return await real(*args, **kw)

    monkeypatch.setattr(ctx.db, "connection", connection)
    monkeypatch.setattr(ctx.redis, "execute_command", execute_command)
    try:
        yield seen, redis_calls
    finally:
        monkeypatch.undo()


async def _campaigns(client, tenant, n: int, offset: int = 0) -> None:  # type: ignore[no-untyped-def]
    for i in range(offset, offset + n):
        r = await client.put(
            f"/admin/v1/checkin-campaigns/daily{i}", headers=tenant.admin, json=CAMPAIGN
        )
        assert r.status_code == 200, r.text
        await put_wheel(client, tenant, f"wheel{i}", wheel_config())
        r = await client.put(
            f"/admin/v1/leaderboards/board{i}",
            headers=tenant.admin,
            json={"metric": "points", "period": "weekly"},
        )
        assert r.status_code == 200, r.text
        r = await client.put(
            f"/admin/v1/challenges/ch{i}",
            headers=tenant.admin,
            json={**CHALLENGE, "campaign": f"daily{i}"},
        )
        assert r.status_code == 200, r.text


async def test_summary_has_every_field_in_a_fixed_number_of_statements(
    tenant, client, ctx, monkeypatch
):
    r = await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    assert r.status_code == 200, r.text
    await put_ritual(client, tenant)
    await _campaigns(client, tenant, 1)
    m = await tenant.login("sum-1")
    r = await client.post("/v1/checkins/daily0", headers=m)
    assert r.status_code == 200, r.text
    s = (await client.get("/v1/me/summary", headers=m)).json()
    assert s["ritual"] == {"status": "notStarted", "next": "covenant"}
    assert s["checkins"] == [
        {
            "key": "daily0",
            "title": "每日签到",
            "today": "2026-11-23",
            "checkedInToday": True,
            "currentStreak": 1,
        }
    ]
    assert s["wheels"] == [
        {
            "key": "wheel0",
            "name": "Lucky wheel 幸运大转盘",
            "freeSpinsLeft": 1,
            "spinsLeftToday": None,
        }
    ]
    assert s["campaigns"] == {
        "checkins": ["daily0"],
        "wheels": ["wheel0"],
        "boards": ["board0"],
        "challenges": ["ch0"],
        "pks": [],
    }
    assert s["balances"]["points"] == 10
    assert s["level"]["name"] == "Bronze"
    assert s["nextLevel"]["name"] == "Silver"
    assert s["nextLevel"]["privileges"][0]["code"] == "free-ship"
    assert s["validity"]["mode"] == "forever"
    assert s["pendingCeremonies"] == 0
    assert s["member"]["memberNo"] is None

    async with counting(ctx, monkeypatch) as (one, redis_one):
        r = await client.get("/v1/me/summary", headers=m)
    assert r.status_code == 200
    await _campaigns(client, tenant, 5, offset=1)
    await client.get("/v1/me/summary", headers=m)  # warm the per-process caches again
    async with counting(ctx, monkeypatch) as (six, redis_six):
        r = await client.get("/v1/me/summary", headers=m)
    assert len(r.json()["campaigns"]["wheels"]) == 6
    assert len(r.json()["checkins"]) == 6
    # The same statements with 1 or 6 campaigns of each kind: the one read of the read model.
    assert len(six) == len(one), (one, six)
    assert len(one) == 1, one
    assert redis_six == redis_one


async def test_summary_after_the_ritual(tenant, client, ctx):
    await put_ritual(client, tenant)
    m = await tenant.login("sum-2")
    await complete(client, m)
    from tests.badge_helpers import deliver

    await deliver(ctx)
    s = (await client.get("/v1/me/summary", headers=m)).json()
    assert s["ritual"] == {"status": "completed", "next": None}
    assert (s["member"]["memberNo"], s["member"]["memberNumber"]) == (1, "NO.000001")
    assert s["balances"]["points"] == 100
    assert s["pendingCeremonies"] == 1
    assert (await client.get("/v1/me", headers=m)).json()["memberNumber"] == "NO.000001"


# ---------------------------------------------------------------- the read model vs the features


async def _feature_by_feature(ctx: Any, tenant_id: int, member_id: int) -> tuple[Any, Any]:
    """/v1/me and /v1/me/summary composed the way they were before the read model: each
    feature's own public read, one statement (or more) each."""
    import msgspec

    from service.badges import service as badges
    from service.ceremonies import service as ceremonies
    from service.challenges import service as challenges
    from service.checkins import service as checkins
    from service.leaderboards import service as leaderboards
    from service.me import schemas as s
    from service.me.service import _expiring, _levels
    from service.members import service as members
    from service.points import service as points
    from service.rituals import service as rituals
    from service.wheel import service as wheel

    async with ctx.db.connection() as conn:
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        card = await points.member_card(ctx, conn, tenant_id, member_id)
        shown, titles = await badges.titles_for_card(ctx, conn, tenant_id, member_id)
        recent, earned = await badges.recent_badges(ctx, conn, tenant_id, member_id, 10)
        pending = await ceremonies.pending_count(ctx, conn, tenant_id, member_id)
        number = await rituals.formatted_number(conn, tenant_id, profile.member_no)
        status, nxt = await rituals.member_state(ctx, conn, tenant_id, member_id)
        days = await checkins.live_for_member(ctx, conn, tenant_id, member_id)
        wheels = await wheel.live_for_member(ctx, conn, tenant_id, member_id)
        boards = await leaderboards.live_keys(ctx, conn, tenant_id)
        games = await challenges.live_keys(ctx, conn, tenant_id)
    level, next_level = _levels(card)
    balances = s.Balances(card.points, card.growth, card.growth_earned)
    me = s.MeOut(
        profile.id,
        profile.external_id,
        profile.nickname,
        profile.avatar_url,
        profile.member_no,
        profile.joined_at,
        balances,
        level,
        next_level,
        _expiring(card),
        titles,
        shown,
        [s.BadgeChip(b.key, b.name, b.icon, b.earned_at) for b in recent],
        earned,
        pending,
        number,
    )
    summary = s.SummaryOut(
        s.SummaryMember(
            profile.id,
            profile.nickname,
            profile.avatar_url,
            profile.member_no,
            number,
            profile.joined_at,
        ),
        balances,
        level,
        next_level,
        s.Validity(
            str((card.ladder_validity or {}).get("mode", "forever")),
            card.level_review_at,
            _expiring(card),
        ),
        s.RitualState(status, nxt),
        [msgspec.convert(d, s.CheckinToday) for d in days],
        [msgspec.convert(w, s.WheelSpins) for w in wheels],
        pending,
        s.LiveCampaigns([d["key"] for d in days], [w["key"] for w in wheels], boards, games, []),
    )
    return me, summary


async def test_the_one_read_equals_the_features_reads(tenant, client, ctx, clock):
    """A member with two badges, two titles (one shown), a pending ceremony, a level on a
    rolling ladder (progress from the window's growth), points expiring soon, a finished
    ritual with its number, check-ins, wheels, boards and challenges: the one statement of
    the read model gives byte for byte what each feature's own reads give."""
    import msgspec

    from service.me import service as me_service
    from tests.badge_helpers import deliver, put_badge
    from tests.test_points_api import adjust, set_expiry

    ladder = {**LADDER, "validity": {"mode": "rolling", "days": 30}}
    r = await client.put("/admin/v1/levels", headers=tenant.admin, json=ladder)
    assert r.status_code == 200, r.text
    await set_expiry(client, tenant, mode="end_of_month")
    await put_ritual(client, tenant)
    await _campaigns(client, tenant, 2)
    for key, title in (("hero", "英雄"), ("star", "明星")):
        await put_badge(
            client, tenant, key, name=key, criteria=[{"kind": "manual"}], reward={"title": title}
        )
    mid, m = await tenant.member("cmp-1")
    await complete(client, m)
    for key in ("hero", "star"):
        r = await client.post(
            f"/admin/v1/members/cmp-1/badges/{key}/award",
            json={"reason": "test"},
            headers=tenant.admin,
        )
        assert r.status_code in (200, 201), r.text
        clock.advance(seconds=1)
    r = await adjust(client, tenant, "cmp-1", 150, currency="growth")
    assert r.status_code in (200, 201), r.text
    r = await client.post("/v1/checkins/daily0", headers=m)
    assert r.status_code == 200, r.text
    await deliver(ctx)
    r = await client.put("/v1/me/title", headers=m, json={"title": "英雄"})
    assert r.status_code == 200, r.text

    got_me = await me_service.me(ctx, tenant.id, mid)
    got_summary = await me_service.summary(ctx, tenant.id, mid)
    want_me, want_summary = await _feature_by_feature(ctx, tenant.id, mid)
    assert msgspec.json.encode(got_me) == msgspec.json.encode(want_me)
    assert msgspec.json.encode(got_summary) == msgspec.json.encode(want_summary)

    # ... and the member is the one described (nothing compared on empty values).
    me = (await client.get("/v1/me", headers=m)).json()
    assert me == msgspec.to_builtins(want_me)
    assert me["titles"] == ["明星", "英雄"] and me["title"] == "英雄"
    assert [b["key"] for b in me["badges"]] == ["star", "hero"]
    assert me["badgesEarned"] == 2 and me["pendingCeremonies"] >= 1
    assert me["level"]["name"] == "Silver" and me["nextLevel"]["name"] == "Gold"
    assert me["nextLevel"]["growthNeeded"] == 350
    assert me["memberNumber"] == "NO.000001" and me["expiringSoon"]["amount"] == 110
    s = (await client.get("/v1/me/summary", headers=m)).json()
    assert s == msgspec.to_builtins(want_summary)
    assert s["ritual"] == {"status": "completed", "next": None}
    assert s["campaigns"]["checkins"] == ["daily0", "daily1"]
    assert s["checkins"][0]["checkedInToday"] is True
    assert s["campaigns"]["challenges"] == ["ch0", "ch1"]
