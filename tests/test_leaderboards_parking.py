"""One operator's mistake never breaks another board, feature or tenant: a board that fails
while counting is parked alone, shows why, and resumes with the events it missed once
corrected; any board can be archived."""

from __future__ import annotations

import asyncio

import pytest

from service.leaderboards import service
from tests.test_leaderboards import deliver, put_board
from tests.test_points_api import adjust

pytestmark = pytest.mark.asyncio

WINDOW = {
    "period": "window",
    "windowStart": "2026-11-20T00:00:00+08:00",
    "windowEnd": "2026-12-20T00:00:00+08:00",
}


async def score_of(client, headers, key: str) -> int:  # type: ignore[no-untyped-def]
    r = await client.get(f"/v1/leaderboards/{key}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["me"]["score"]  # type: ignore[no-any-return]


async def dead_letters(ctx) -> int:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT count(*) FROM outbox_dead_letters WHERE subscriber = $1", service.SUBSCRIBER
        )


async def test_a_board_that_breaks_while_counting_is_parked_alone_and_resumes(
    ctx, client, clock, tenant, other_tenant
):
    await put_board(client, tenant, "healthy", period="allTime")
    await put_board(client, tenant, "naive", title="n", **WINDOW)
    await put_board(client, other_tenant, "theirs", period="allTime")
    # The stored window loses its offset (as older versions accepted): comparing it with an
    # event's time raises in the subscriber and on reads.
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE leaderboards SET config = config || $2::jsonb WHERE tenant_id = $1 "
            "AND key = 'naive'",
            tenant.id,
            {"windowStart": "2026-11-20T00:00:00", "windowEnd": "2026-12-20T00:00:00"},
        )
    ctx.caches.clear()
    _, ha = await tenant.member("a")
    # Read before any event: the read finds the rules raising, parks the board, answers 409.
    r = await client.get("/v1/leaderboards/naive", headers=ha)
    assert r.status_code == 409 and r.json()["error"]["code"] == "LEADERBOARD_PARKED", r.text
    async with ctx.db.connection() as conn:
        await conn.execute(
            "DELETE FROM parked_definitions WHERE feature = 'leaderboards' AND definition_id = "
            "(SELECT id FROM leaderboards WHERE tenant_id = $1 AND key = 'naive')",
            tenant.id,
        )
    ctx.caches.clear()  # and from here on, the subscriber is the first to meet it
    _, hb = await tenant.member("b")
    _, ho = await other_tenant.member("o")
    assert (await adjust(client, tenant, "a", 10)).status_code == 200
    assert (await adjust(client, other_tenant, "o", 4)).status_code == 200
    await deliver(ctx)
    assert await score_of(client, ha, "healthy") == 10
    assert await score_of(client, ho, "theirs") == 4
    assert await dead_letters(ctx) == 0
    # The broken board answers its state, never a 500.
    r = await client.get("/v1/leaderboards/naive", headers=ha)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "LEADERBOARD_PARKED" and err["details"]["state"] == "parked"
    assert err["details"]["reason"] == service.MEMBER_PARKED_REASON  # no exception text
    r = await client.get("/admin/v1/leaderboards/naive", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "parked" and "offset-naive" in r.json()["parked"]["reason"]
    assert r.json()["parked"]["parkedAt"]
    listed = (await client.get("/admin/v1/leaderboards", headers=tenant.admin)).json()["items"]
    assert {b["key"]: b["state"] for b in listed} == {"healthy": "active", "naive": "parked"}
    # While parked, everything else keeps counting.
    clock.advance(seconds=5)
    assert (await adjust(client, tenant, "a", 5)).status_code == 200
    assert (await adjust(client, tenant, "b", 7)).status_code == 200
    await deliver(ctx)
    assert await score_of(client, ha, "healthy") == 15
    assert await score_of(client, hb, "healthy") == 7
    assert await dead_letters(ctx) == 0
    # Corrected (it never counted anything, so its window can change in place): it resumes
    # and the events it missed while parked are applied.
    r = await client.put(
        "/admin/v1/leaderboards/naive",
        json={"metric": "points", "title": "n", **WINDOW},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resuming"
    await deliver(ctx)
    assert await score_of(client, ha, "naive") == 15
    assert await score_of(client, hb, "naive") == 7
    r = await client.get("/admin/v1/leaderboards/naive", headers=tenant.admin)
    assert r.json()["state"] == "active" and r.json()["parked"] is None
    # And it counts from now on, once.
    assert (await adjust(client, tenant, "b", 1)).status_code == 200
    await deliver(ctx)
    await deliver(ctx)
    assert await score_of(client, hb, "naive") == 8
    assert await score_of(client, hb, "healthy") == 8


async def test_archived_boards_stop_counting_and_keep_their_history(ctx, client, clock, tenant):
    await put_board(client, tenant, "old", period="allTime")
    await put_board(client, tenant, "gone", period="allTime")
    _, ha = await tenant.member("a")
    assert (await adjust(client, tenant, "a", 10)).status_code == 200
    await deliver(ctx)
    r = await client.post("/admin/v1/leaderboards/old/archive", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "archived" and r.json()["archivedAt"]
    r = await client.delete("/admin/v1/leaderboards/gone", headers=tenant.admin)
    assert r.status_code == 200 and r.json()["state"] == "archived"
    again = await client.delete("/admin/v1/leaderboards/gone", headers=tenant.admin)
    assert again.status_code == 200 and again.json()["archivedAt"] == r.json()["archivedAt"]
    assert (await adjust(client, tenant, "a", 5)).status_code == 200
    await deliver(ctx)
    for key in ("old", "gone"):
        r = await client.get(f"/v1/leaderboards/{key}", headers=ha)
        assert r.status_code == 409 and r.json()["error"]["code"] == "LEADERBOARD_ARCHIVED"
        r = await client.get(f"/admin/v1/leaderboards/{key}/entries", headers=tenant.admin)
        assert r.status_code == 200, r.text
        assert [e["score"] for e in r.json()["items"]] == [10]  # history kept, no more counting
    r = await client.put(
        "/admin/v1/leaderboards/old",
        json={"metric": "points", "period": "allTime"},
        headers=tenant.admin,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "LEADERBOARD_ARCHIVED"
    r = await client.post("/admin/v1/leaderboards/nope/archive", headers=tenant.admin)
    assert r.status_code == 404


async def test_parking_keeps_the_earliest_missed_event_and_a_failed_catch_up_parks_again(
    ctx, tenant
):
    from service.core import outbox, parking

    async with ctx.db.transaction() as conn:
        for _ in range(3):
            await outbox.emit(
                conn, tenant_id=tenant.id, type="probe", occurred_at=clock_now(ctx), member_id=None
            )
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, txid, event_id, tenant_id, type, member_id, payload, occurred_at "
            "FROM outbox WHERE tenant_id = $1 AND type = 'probe' ORDER BY txid, id",
            tenant.id,
        )
    evs = [outbox.event_of(r) for r in rows]
    await parking.park(ctx, "probe", tenant.id, 77, ValueError("late"), evs[2:])
    await parking.park(ctx, "probe", tenant.id, 77, ValueError("early"), evs[1:2])
    await parking.park(ctx, "probe", tenant.id, 77, ValueError("again"), evs[2:])
    async with ctx.db.connection() as conn:
        pos = await conn.fetchrow(
            "SELECT from_txid, from_id, reason FROM parked_definitions WHERE feature = 'probe'"
        )
        assert (pos["from_txid"], pos["from_id"]) == (evs[1].txid, evs[1].id)
        assert pos["reason"] == "ValueError: again"
        assert await parking.parked_ids(conn, "probe", [77, 78]) == {77}
        assert await parking.resume(conn, "probe", 77)
        assert await parking.parked_ids(conn, "probe", [77]) == set()
    seen: list[int] = []
    await horizon_past(ctx, evs[2].txid)

    async def still_broken(ctx, events, definition_id):  # type: ignore[no-untyped-def]
        seen.extend(e.id for e in events if e.type == "probe")
        raise KeyError("still broken")

    await parking.catch_up(ctx, "probe", still_broken)
    assert seen == [evs[1].id, evs[2].id]  # replayed from the first missed event
    async with ctx.db.connection() as conn:
        state = await parking.state_of(conn, "probe", 77)
        assert state is not None and state.state == "parked" and "still broken" in state.reason
        assert await parking.resume(conn, "probe", 77)

    async def fixed(ctx, events, definition_id):  # type: ignore[no-untyped-def]
        assert definition_id == 77

    await parking.catch_up(ctx, "probe", fixed)
    async with ctx.db.connection() as conn:
        assert await parking.state_of(conn, "probe", 77) is None


async def horizon_past(ctx, txid: int, within_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Catch-up replays only what is below the cluster-wide xmin horizon (pg_snapshot_xmin);
    other test runs share our PostgreSQL and can hold it back for a while: wait, bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        async with ctx.db.connection() as conn:
            xmin = await conn.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            )
        if xmin > txid:
            return
        await asyncio.sleep(0.05)


def clock_now(ctx):  # type: ignore[no-untyped-def]
    return ctx.clock.now()
