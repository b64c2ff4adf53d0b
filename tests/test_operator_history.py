"""Operator API: the version history of every config kind, and dead-letter replay per tenant."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from service.core import outbox
from service.operator import configs
from tests.conftest import DEFAULT_NOW
from tests.pk_helpers import put_pk, put_team
from tests.ritual_helpers import put_ritual, ritual

LADDER = {"levels": [{"name": "new", "threshold": 0}, {"name": "silver", "threshold": 100}]}
CAMPAIGN = {
    "title": "Daily",
    "startsAt": DEFAULT_NOW.isoformat(),
    "state": "live",
    "baseReward": {"points": 5},
}


async def _versions(client, tenant, kind: str, key: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = await client.get(f"/admin/v1/configs/{kind}/{key}/versions", headers=tenant.admin)
    assert r.status_code == 200, (kind, r.text)
    body = r.json()
    assert body["kind"] == kind and body["key"] == key
    return body["items"]  # type: ignore[no-any-return]


async def test_every_kind_has_a_versions_route(client, tenant) -> None:
    for kind in configs.KINDS:
        r = await client.get(f"/admin/v1/configs/{kind}/nosuch/versions", headers=tenant.admin)
        assert r.status_code == 404, (kind, r.text)
        assert r.json()["error"]["code"] == "NOT_FOUND"


async def test_checkin_campaign_versions_by_put_and_patch(client, tenant, other_tenant) -> None:
    r = await client.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    assert r.status_code == 200, r.text
    # The same document again is no new version.
    r = await client.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    assert r.status_code == 200, r.text
    r = await client.patch(
        "/admin/v1/configs/checkin-campaigns/daily",
        headers={**tenant.admin, "Content-Type": "application/merge-patch+json"},
        json={"title": "Daily v2"},
    )
    assert r.status_code == 200, r.text
    items = await _versions(client, tenant, "checkin-campaigns", "daily")
    assert [v["config"]["title"] for v in items] == ["Daily v2", "Daily"]
    assert items[0]["version"] > items[1]["version"]
    assert items[0]["version"] == r.json()["version"]  # the list's version is the history's
    r = await client.get(
        "/admin/v1/configs/checkin-campaigns/daily/versions", headers=other_tenant.admin
    )
    assert r.status_code == 404


async def test_team_pk_level_and_ritual_versions(client, tenant) -> None:
    await put_team(client, tenant, "east", name="East")
    await put_team(client, tenant, "west")
    await put_team(client, tenant, "east", name="East side", capacity=50)
    items = await _versions(client, tenant, "teams", "east")
    assert [(v["config"]["name"], v["config"].get("capacity")) for v in items] == [
        ("East side", 50),
        ("East", None),
    ]
    assert items[0]["config"]["teamSet"] == "stores" and items[0]["config"]["joinCode"]

    later = DEFAULT_NOW + timedelta(days=2)
    window = {"startsAt": later.isoformat(), "endsAt": (later + timedelta(days=1)).isoformat()}
    await put_pk(
        client, tenant, "duel", name="Duel", teams=["east", "west"], metric="points", **window
    )
    await put_pk(
        client, tenant, "duel", name="Duel 2", teams=["east", "west"], metric="points", **window
    )
    assert [v["config"]["name"] for v in await _versions(client, tenant, "pks", "duel")] == [
        "Duel 2",
        "Duel",
    ]

    for top in (100, 200):
        ladder = {"levels": [{"name": "new", "threshold": 0}, {"name": "top", "threshold": top}]}
        r = await client.put("/admin/v1/levels", headers=tenant.admin, json=ladder)
        assert r.status_code == 200, r.text
    items = await _versions(client, tenant, "levels", "ladder")
    assert [(v["version"], v["config"]["levels"][1]["threshold"]) for v in items] == [
        (2, 200),
        (1, 100),
    ]

    await put_ritual(client, tenant)
    await put_ritual(client, tenant, ritual(title="Welcome"))
    items = await _versions(client, tenant, "rituals", "ritual")
    assert [v["config"]["title"] for v in items] == ["Welcome", "入会仪式"]


async def test_new_kinds_list_patch_and_copy(client, tenant, other_tenant) -> None:
    await put_team(client, tenant, "east", name="East")
    await put_team(client, other_tenant, "theirs")
    r = await client.get("/admin/v1/configs/teams", headers=tenant.admin)
    assert [i["key"] for i in r.json()["items"]] == ["east"]
    r = await client.patch(
        "/admin/v1/configs/teams/east",
        headers={**tenant.admin, "Content-Type": "application/merge-patch+json"},
        json={"name": "East 2", "capacity": "many"},
    )
    assert r.status_code == 422, r.text
    assert [p["path"] for p in r.json()["error"]["details"]["problems"]] == ["capacity"]
    r = await client.post(
        "/admin/v1/configs/teams/east/copy", headers=tenant.admin, json={"newKey": "east-2"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["name"] == "East"
    # One ladder per tenant: nothing to copy it to.
    r = await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    assert r.status_code == 200, r.text
    r = await client.post(
        "/admin/v1/configs/levels/ladder/copy", headers=tenant.admin, json={"newKey": "x"}
    )
    assert r.status_code in (404, 405), r.text


async def test_wheel_list_state_is_the_wheel_apis_status(client, tenant) -> None:
    from tests.wheel_helpers import put_wheel, wheel_config

    await put_wheel(client, tenant, "w", wheel_config(state="live"))
    status = (await client.get("/admin/v1/wheels/w", headers=tenant.admin)).json()["status"]
    item = (await client.get("/admin/v1/wheels", headers=tenant.admin)).json()["items"][0]
    assert status == item["state"] == "open"
    # The old word still filters, so a client written against it keeps working.
    for word in ("open", "live"):
        r = await client.get(f"/admin/v1/wheels?status={word}", headers=tenant.admin)
        assert [i["key"] for i in r.json()["items"]] == ["w"], word


# ----------------------------------------------------------------------------- dead letters


async def _dead_letter(ctx, tenant_id: int, subscriber: str) -> int:  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as conn:
        event_id = await outbox.emit(
            conn, tenant_id=tenant_id, type="test.dead", payload={}, occurred_at=DEFAULT_NOW
        )
        oid = await conn.fetchval("SELECT id FROM outbox WHERE event_id = $1", event_id)
        return int(
            await conn.fetchval(
                "INSERT INTO outbox_dead_letters (subscriber, outbox_id, attempts, error, "
                "created_at) VALUES ($1, $2, 5, 'RuntimeError()', $3) RETURNING id",
                subscriber,
                oid,
                DEFAULT_NOW,
            )
        )


async def _letters(ctx, tenant_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT d.id FROM outbox_dead_letters d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE o.tenant_id = $1 ORDER BY d.id",
            tenant_id,
        )
    return [r["id"] for r in rows]


async def test_replay_is_per_tenant(ctx, client, tenant, other_tenant) -> None:
    # A real subscriber that ignores an event type it does not know: replay succeeds.
    healthy = sorted(ctx.dispatcher.handlers)[0]
    mine = [await _dead_letter(ctx, tenant.id, healthy) for _ in range(2)]
    gone = await _dead_letter(ctx, tenant.id, "no-such-subscriber")
    theirs = await _dead_letter(ctx, other_tenant.id, healthy)

    r = await client.get("/admin/v1/dead-letters", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert sorted(i["id"] for i in r.json()["items"]) == sorted([*mine, gone])

    r = await client.post("/admin/v1/dead-letters/replay", headers=tenant.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["replayed"], body["stillFailing"]) == (2, 1)
    assert [i["id"] for i in body["deadLetters"]] == [gone]
    assert await _letters(ctx, tenant.id) == [gone]
    assert await _letters(ctx, other_tenant.id) == [theirs]  # never another tenant's

    r = await client.post(
        "/admin/v1/dead-letters/replay?subscriber=BAD!", headers=other_tenant.admin
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["problems"][0]["path"] == "subscriber"


async def test_concurrent_replays_deliver_each_letter_once(ctx, client, tenant) -> None:
    healthy = sorted(ctx.dispatcher.handlers)[0]
    for _ in range(5):
        await _dead_letter(ctx, tenant.id, healthy)
    answers = await asyncio.gather(
        *(client.post("/admin/v1/dead-letters/replay", headers=tenant.admin) for _ in range(8))
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["replayed"] for a in answers) == 5
    assert await _letters(ctx, tenant.id) == []


async def test_replay_needs_the_admin_scope(ctx, client, tenant) -> None:
    from service.core import tenancy

    async with ctx.db.transaction() as conn:
        key, _ = await tenancy.create_api_key(conn, tenant.id, ["reports"], "bi", DEFAULT_NOW)
    r = await client.post(
        "/admin/v1/dead-letters/replay", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 403, r.text
