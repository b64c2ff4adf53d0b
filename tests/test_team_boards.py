"""Team boards: leaderboards whose entries are teams; the team red/black board."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.leaderboards import service as boards
from tests.conftest import DEFAULT_NOW
from tests.pk_helpers import add_members, credit_event, deliver, member_ids, put_team

pytestmark = pytest.mark.asyncio


async def test_team_board_counts_for_the_team_at_event_time_and_publishes_teams(
    client, tenant, ctx, clock
):
    await put_team(client, tenant, "north", name="北区")
    await put_team(client, tenant, "south", name="南区")
    await add_members(client, tenant, "north", ["n0", "n1"])
    await add_members(client, tenant, "south", ["s0"])
    bad = await client.put(
        "/admin/v1/leaderboards/teams-bad",
        headers=tenant.admin,
        json={"metric": "points", "period": "daily", "scope": "team"},
    )
    assert bad.status_code == 422
    r = await client.put(
        "/admin/v1/leaderboards/teams-daily",
        headers=tenant.admin,
        json={"metric": "points", "period": "daily", "scope": "team", "teamSet": "stores"},
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        "/admin/v1/red-black/teams-rb",
        headers=tenant.admin,
        json={"boardKey": "teams-daily", "redSize": 1, "blackSize": 1},
    )
    assert r.status_code == 200, r.text
    ids = await member_ids(ctx, tenant.id, ["n0", "n1", "s0"])
    at = DEFAULT_NOW + timedelta(minutes=5)
    await credit_event(ctx, tenant.id, ids["n0"], 10, at)
    await credit_event(ctx, tenant.id, ids["n1"], 15, at)
    await credit_event(ctx, tenant.id, ids["s0"], 20, at)
    # n1 moves to south: later events count for south, earlier ones stay north's.
    clock.advance(minutes=10)
    await add_members(client, tenant, "south", ["n1"], move=True)
    await credit_event(ctx, tenant.id, ids["n1"], 7, DEFAULT_NOW + timedelta(minutes=11))
    await deliver(ctx)
    _, h = await tenant.member("n1")
    page = (await client.get("/v1/leaderboards/teams-daily", headers=h)).json()
    assert [(i["team"]["key"], i["score"], i["isMe"]) for i in page["items"]] == [
        ("south", 27, True),
        ("north", 25, False),
    ]
    assert page["me"]["rank"] == 1 and page["me"]["score"] == 27
    # The period closes: the team red/black board lists teams; no member gets a red-list
    # ceremony for a team's place.
    clock.advance(days=1)
    await boards.close_due_periods(ctx)
    await deliver(ctx)
    _, h = await tenant.member("n1")  # a day later: a fresh token
    r = await client.get("/v1/boards/teams-daily/red-black", headers=h)
    assert r.status_code == 200, r.text
    rb = r.json()
    assert [(e["team"]["key"], e["score"]) for e in rb["red"]] == [("south", 27)]
    assert rb["black"] == []  # off by default
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM ceremonies WHERE tenant_id = $1 AND kind = 'redList'", tenant.id
        )
    assert n == 0


async def test_tenants_never_see_each_others_pks(client, tenant, other_tenant):
    await put_team(client, tenant, "a")
    await put_team(client, tenant, "b")
    r = await client.put(
        "/admin/v1/pks/secret",
        headers=tenant.admin,
        json={
            "name": "s",
            "teams": ["a", "b"],
            "metric": "points",
            "startsAt": DEFAULT_NOW.isoformat(),
            "endsAt": (DEFAULT_NOW + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 200
    _, h = await other_tenant.member("nosy")
    assert (await client.get("/v1/pks/secret", headers=h)).status_code == 404
    assert (await client.get("/admin/v1/pks/secret", headers=other_tenant.admin)).status_code == 404
    r = await client.post("/admin/v1/pks/secret/settle", headers=other_tenant.admin)
    assert r.status_code == 404
