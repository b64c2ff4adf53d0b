"""Gaps of the ritual/summary/privacy (issue 12) and teams/PKs (issue 13) features, and small
leftovers: the summary's live PK keys, erased members and brand events, PK rule problems in
one answer, ``team.joined`` counted by badges, fixed sentences for members on parked PKs,
malformed period ids, EVENT_IN_FUTURE details, revokes after a re-award, externalId in
reminder webhooks, upper-case URL schemes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import DEFAULT_NOW
from tests.pk_helpers import add_members, put_pk, put_team
from tests.test_pks_api import window

pytestmark = pytest.mark.asyncio


# ---------------------------------------------------------------- summary: live PK keys


async def test_summary_lists_the_live_pks_of_my_team_and_open_ones(client, tenant, clock):
    await put_team(client, tenant, "east")
    await put_team(client, tenant, "west")
    await put_team(client, tenant, "north")
    await put_team(client, tenant, "south")
    await put_team(client, tenant, "plaza", open=True)
    _, h = await tenant.member("me1")
    await add_members(client, tenant, "east", ["me1"])
    await add_members(client, tenant, "west", ["other"])
    # Mine (east), open (plaza), neither (north/south), mine but later, mine but over.
    await put_pk(
        client, tenant, "mine", name="m", teams=["east", "west"], metric="points", **window()
    )
    await put_pk(
        client, tenant, "open", name="o", teams=["plaza", "north"], metric="points", **window()
    )
    await put_pk(
        client, tenant, "others", name="x", teams=["north", "south"], metric="points", **window()
    )
    await put_pk(
        client,
        tenant,
        "later",
        name="l",
        teams=["east", "north"],
        metric="points",
        **window(24, DEFAULT_NOW + timedelta(days=2)),
    )
    await put_pk(
        client,
        tenant,
        "over",
        name="v",
        teams=["east", "south"],
        metric="points",
        **window(1, DEFAULT_NOW - timedelta(days=2)),
    )
    r = await client.put(
        "/admin/v1/leaderboards/live",
        headers=tenant.admin,
        json={"metric": "points", "period": "weekly"},
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        "/admin/v1/leaderboards/gone",
        headers=tenant.admin,
        json={"metric": "points", "period": "weekly"},
    )
    assert r.status_code == 200, r.text
    r = await client.post("/admin/v1/leaderboards/gone/archive", headers=tenant.admin)
    assert r.status_code == 200, r.text
    s = (await client.get("/v1/me/summary", headers=h)).json()
    assert s["campaigns"]["pks"] == ["mine", "open"]
    assert s["campaigns"]["boards"] == ["live"]  # an archived board is not live
    for key in s["campaigns"]["pks"]:
        assert (await client.get(f"/v1/pks/{key}", headers=h)).status_code == 200
    # Leaving the team: only the open one stays.
    r = await client.delete("/v1/teams/east/members/me", headers=h)
    assert r.status_code in (200, 204), r.text
    s = (await client.get("/v1/me/summary", headers=h)).json()
    assert s["campaigns"]["pks"] == ["open"]
    clock.advance(hours=25)
    _, h = await tenant.member("me1")  # a fresh token a day later
    s = (await client.get("/v1/me/summary", headers=h)).json()
    assert s["campaigns"]["pks"] == []


# ---------------------------------------------------------------- erased members and events


async def test_events_for_an_erased_member_are_refused_and_never_recreate_them(client, tenant, ctx):
    from tests.pk_helpers import deliver
    from tests.test_events import ORDER_RULE, ev

    r = await client.put("/admin/v1/rules/order", headers=tenant.admin, json=ORDER_RULE)
    assert r.status_code == 200, r.text
    r = await client.put(
        "/admin/v1/leaderboards/wk",
        headers=tenant.admin,
        json={"metric": "points", "period": "weekly"},
    )
    assert r.status_code == 200, r.text
    for policy in ("create", "reject"):
        r = await client.put(
            "/admin/v1/points/policy", headers=tenant.admin, json={"unknownMember": policy}
        )
        assert r.status_code == 200, r.text
        ext = f"gone-{policy}"
        await tenant.member(ext)
        r = await client.post(
            "/admin/v1/events", headers=tenant.admin, json=ev(f"{ext}-1", ext, value=5)
        )
        assert r.status_code == 200, r.text
        await deliver(ctx)
        r = await client.post(
            f"/admin/v1/members/{ext}/erase", headers=tenant.admin, json={"reason": "asked"}
        )
        assert r.status_code == 200, r.text
        # A batch: the erased member's events are rejected one by one, others still apply.
        batch = [
            ev(f"{ext}-2", ext, value=7),
            ev(f"{ext}-3", f"alive-{policy}", value=1),
            ev(f"{ext}-2b", ext),
        ]
        body = (await client.post("/admin/v1/events", headers=tenant.admin, json=batch)).json()
        statuses = [(x["status"], (x.get("error") or {}).get("code")) for x in body["results"]]
        alive = ("applied", None) if policy == "create" else ("rejected", "MEMBER_NOT_FOUND")
        assert statuses == [("rejected", "MEMBER_ERASED"), alive, ("rejected", "MEMBER_ERASED")]
        assert body["results"][0]["error"]["details"] == {"externalId": ext}
        # One event: the request's own answer, the same on every resend.
        for _ in range(2):
            r = await client.post(
                "/admin/v1/events", headers=tenant.admin, json=ev(f"{ext}-4", ext, value=9)
            )
            assert (r.status_code, r.json()["error"]["code"]) == (410, "MEMBER_ERASED")
        await deliver(ctx)
        async with ctx.db.connection() as conn:
            after = await conn.fetchrow(
                "SELECT count(*) AS n, sum(delta) AS total FROM ledger_entries "
                "WHERE tenant_id = $1 AND member_id = (SELECT id FROM members WHERE "
                "tenant_id = $1 AND external_id = $2)",
                tenant.id,
                ext,
            )
            rows = await conn.fetch(
                "SELECT nickname, erased_at FROM members WHERE tenant_id = $1 AND external_id = $2",
                tenant.id,
                ext,
            )
            scored = await conn.fetchval(
                "SELECT count(*) FROM member_events WHERE tenant_id = $1 AND member_id = "
                "(SELECT id FROM members WHERE tenant_id = $1 AND external_id = $2)",
                tenant.id,
                ext,
            )
        assert after["total"] == 5 and after["n"] == 1  # only the credit from before the erase
        assert len(rows) == 1 and rows[0]["erased_at"] is not None and rows[0]["nickname"] == ""
        assert scored == 1
        _, viewer = await tenant.member(f"viewer-{policy}")
        board = (await client.get("/v1/leaderboards/wk", headers=viewer)).json()
        assert all(i.get("nickname") != ext for i in board["items"])
        card = (await client.get(f"/admin/v1/members/{ext}", headers=tenant.admin)).json()
        assert card["points"] == 5 and card["erasedAt"] is not None


async def test_event_in_future_gives_the_limit_and_the_time_received(client, tenant):
    from tests.test_events import ev

    await tenant.member("fut")
    r = await client.post(
        "/admin/v1/events",
        headers=tenant.admin,
        json=ev("f-1", "fut", at=(DEFAULT_NOW + timedelta(minutes=6)).isoformat()),
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "EVENT_IN_FUTURE"
    d = err["details"]
    assert d["slackSeconds"] == 300
    assert d["receivedAt"].startswith(DEFAULT_NOW.isoformat()[:19])
    assert d["latestAccepted"].startswith((DEFAULT_NOW + timedelta(minutes=5)).isoformat()[:19])
    assert d["occurredAt"].startswith((DEFAULT_NOW + timedelta(minutes=6)).isoformat()[:19])
    r = await client.post(
        "/admin/v1/events",
        headers=tenant.admin,
        json=ev("f-2", "fut", at=(DEFAULT_NOW + timedelta(minutes=4)).isoformat()),
    )
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- PK problems in one answer


async def test_a_pk_put_lists_shape_and_rule_problems_in_one_answer(client, tenant):
    from tests.test_pks_api import two_stores

    await two_stores(client, tenant, 1)
    await put_pk(
        client,
        tenant,
        "first",
        name="1",
        teams=["east", "west"],
        metric="points",
        allowOverlap=False,
        **window(24),
    )
    before = (await client.get("/admin/v1/pks", headers=tenant.admin)).json()
    # Shape problems (a malformed team key, minHeadcount 0) with rule problems (one known
    # team, an unknown one, a bad metric, an overlap with "first" which forbids it).
    r = await client.put(
        "/admin/v1/pks/second",
        headers=tenant.admin,
        json={
            "name": "2",
            "teams": ["east", "ghost", "Bad Key!"],
            "metric": "stars",
            "minHeadcount": 0,
            **window(24, DEFAULT_NOW + timedelta(hours=12)),
        },
    )
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_FAILED"
    got = {(p["path"], p["code"]) for p in err["details"]["problems"]}
    assert got == {
        ("teams[2]", "FORMAT_INVALID"),
        ("minHeadcount", "OUT_OF_RANGE"),
        ("metric", "METRIC_INVALID"),
        ("teams[1]", "TEAM_UNKNOWN"),
        ("teams", "TEAMS_TOO_FEW"),
        ("startsAt", "PK_OVERLAP"),
    }, got
    # Nothing changed.
    assert (await client.get("/admin/v1/pks", headers=tenant.admin)).json() == before
    # A bad key (a malformed API key) still answers the shape problems only.
    r = await client.put(
        "/admin/v1/pks/second",
        headers={"Authorization": "Bearer nope"},
        json={"name": "2", "teams": ["Bad Key!"], "metric": "stars", **window()},
    )
    assert r.status_code in (401, 422)
    if r.status_code == 422:
        assert {p["code"] for p in r.json()["error"]["details"]["problems"]} == {"FORMAT_INVALID"}


async def test_a_badge_counts_team_joined(client, tenant, ctx):
    from tests.badge_helpers import count, deliver, put_badge

    await put_badge(
        client,
        tenant,
        "joiner",
        name="加入战队",
        criteria=[{"kind": "firstTime", "eventType": "team.joined"}],
    )
    await put_team(client, tenant, "squad1", kind="squad", teamSet="squads", open=True)
    mid, h = await tenant.member("joiner-1")
    await tenant.member("bystander")
    r = await client.post("/v1/teams/squad1/members", headers=h, json={})
    assert r.status_code == 200, r.text
    await deliver(ctx)
    sql = (
        "SELECT count(*) FROM member_badges mb JOIN badge_definitions b ON b.id = mb.badge_id "
        "WHERE b.tenant_id = $1 AND b.key = $2 AND mb.member_id = $3"
    )
    assert await count(ctx, sql, tenant.id, "joiner", mid) == 1
    # By the operator (bulk) too; nobody else earns it.
    await add_members(client, tenant, "squad1", ["by-op"])
    await deliver(ctx)
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM member_badges mb JOIN badge_definitions b ON b.id = mb.badge_id "
            "WHERE b.tenant_id = $1 AND b.key = 'joiner'",
            tenant.id,
        )
        == 2
    )


# ---------------------------------------------------------------- leftovers


async def test_malformed_period_ids_are_422_and_unknown_ones_404(client, tenant):
    for key, period in (("wk", "weekly"), ("mo", "monthly"), ("dy", "daily")):
        r = await client.put(
            f"/admin/v1/leaderboards/{key}",
            headers=tenant.admin,
            json={"metric": "points", "period": period},
        )
        assert r.status_code == 200, r.text
    _, h = await tenant.member("periods")
    cases = [
        ("wk", "2000-W00", 422, "FORMAT_INVALID"),
        ("wk", "2026-W54", 422, "FORMAT_INVALID"),
        ("mo", "2100-13", 422, "FORMAT_INVALID"),
        ("mo", "2026-00", 422, "FORMAT_INVALID"),
        ("dy", "2026-02-30", 422, "FORMAT_INVALID"),
        ("mo", "2101-01", 422, "OUT_OF_RANGE"),
        ("dy", "2026-W48", 404, None),  # a real week, but not a period of a daily board
        ("wk", "2031-W02", 404, None),  # a future week nobody scored in
    ]
    for key, period, status, code in cases:
        for url, headers in (
            (f"/v1/leaderboards/{key}?period={period}", h),
            (f"/admin/v1/leaderboards/{key}/entries?period={period}", tenant.admin),
        ):
            r = await client.get(url, headers=headers)
            assert r.status_code == status, (url, r.text)
            err = r.json()["error"]
            if code is None:
                assert err["code"] == "LEADERBOARD_PERIOD_NOT_FOUND"
            else:
                assert err["code"] == "VALIDATION_FAILED"
                [p] = err["details"]["problems"]
                assert (p["source"], p["path"], p["code"]) == ("query", "period", code), p


async def test_members_get_a_fixed_sentence_for_a_parked_pk(client, tenant, ctx):
    from service.pks import service as pks
    from tests.test_pks_api import two_stores

    await two_stores(client, tenant, 1)
    await put_pk(
        client, tenant, "broken", name="b", teams=["east", "west"], metric="points", **window()
    )
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "UPDATE pks SET config = config - 'metric' WHERE tenant_id = $1 AND key = 'broken'",
            tenant.id,
        )
    ctx.caches.clear()
    _, h = await tenant.member("a0")
    r = await client.get("/v1/pks/broken", headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["reason"] == pks.MEMBER_PARKED_REASON
    admin = (await client.get("/admin/v1/pks/broken", headers=tenant.admin)).json()
    assert "metric" in admin["parkedReason"]  # the operator sees the stored reason
    # Corrected again: other tests rebuild every PK of the database.
    await put_pk(
        client, tenant, "broken", name="b", teams=["east", "west"], metric="points", **window()
    )


async def test_a_redelivered_revoke_never_withdraws_the_ceremony_of_a_re_award(client, tenant, ctx):
    from service.ceremonies import service as ceremonies
    from service.core import outbox
    from tests.badge_helpers import deliver, put_badge
    from tests.test_badges_api import _wall_and_pending

    await put_badge(
        client, tenant, "cyc", name="Cyc", criteria=[{"kind": "manual"}], reward={"title": "环"}
    )
    _, h = await tenant.member("rea")
    path = "/admin/v1/members/rea/badges/cyc"
    for step in ("award", "revoke"):
        r = await client.post(f"{path}/{step}", json={"reason": "t"}, headers=tenant.admin)
        assert r.status_code == 200, r.text
        await deliver(ctx)
    assert (await _wall_and_pending(client, h))[1] == []
    r = await client.post(f"{path}/award", json={"reason": "again"}, headers=tenant.admin)
    assert r.status_code == 200, r.text
    await deliver(ctx)
    assert await _wall_and_pending(client, h) == (["badge", "title"], [["badge", "title"]])
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, txid, event_id, tenant_id, type, member_id, payload, occurred_at "
            "FROM outbox WHERE tenant_id = $1 AND type IN ('badge.revoked', 'badge.earned') "
            "ORDER BY id",
            tenant.id,
        )
        award_nos = await conn.fetch(
            "SELECT award_no FROM member_badges WHERE tenant_id = $1", tenant.id
        )
    assert [r["award_no"] for r in award_nos] == [2]
    events = [outbox.event_of(r) for r in rows]
    assert [(e.type, e.payload["awardNo"]) for e in events] == [
        ("badge.earned", 1),
        ("badge.revoked", 1),
        ("badge.earned", 2),
    ]
    # The revoke of award 1 delivered again (at-least-once): the re-award's honour stays.
    await ceremonies.on_events(ctx, [events[1]])
    assert await _wall_and_pending(client, h) == (["badge", "title"], [["badge", "title"]])
    # Revoking award 2 withdraws it.
    r = await client.post(f"{path}/revoke", json={"reason": "t"}, headers=tenant.admin)
    assert r.status_code == 200, r.text
    await deliver(ctx)
    assert await _wall_and_pending(client, h) == ([], [])


async def test_url_schemes_in_upper_case_are_taken_and_stored_lower_case(client, tenant):
    from tests.badge_helpers import put_badge

    badge = await put_badge(
        client,
        tenant,
        "up",
        name="Up",
        criteria=[{"kind": "manual"}],
        icon="HTTPS://cdn.example.com/Up.PNG",
        iconLocked="Http://cdn.example.com/l.png",
    )
    assert badge["definition"]["icon"] == "https://cdn.example.com/Up.PNG"
    assert badge["definition"]["iconLocked"] == "http://cdn.example.com/l.png"
    r = await client.put(
        "/admin/v1/webhooks/crm",
        headers=tenant.admin,
        json={"url": "HTTPS://93.184.216.34/hook", "eventTypes": ["*"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["url"] == "https://93.184.216.34/hook"
    _, h = await tenant.member("avatar-up")
    r = await client.patch("/v1/me", headers=h, json={"avatarUrl": "HTTPS://cdn.example.com/a.png"})
    assert r.status_code == 200, r.text
    assert r.json()["avatarUrl"] == "https://cdn.example.com/a.png"
    # Every URL field refuses the same things whatever the case of the scheme.
    for bad in ("JAVASCRIPT:alert(1)", "FTP://x.example.com/a", "HTTPS://u:p@x.example.com/"):
        r = await client.patch("/v1/me", headers=h, json={"avatarUrl": bad})
        assert r.status_code == 422, bad
        [p] = r.json()["error"]["details"]["problems"]
        assert (p["path"], p["code"]) == ("avatarUrl", "URL_INVALID")
    # https only for avatars: an upper-case HTTP is still http.
    r = await client.patch("/v1/me", headers=h, json={"avatarUrl": "HTTP://cdn.example.com/a.png"})
    assert r.status_code == 422
