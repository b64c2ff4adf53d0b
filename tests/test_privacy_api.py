"""Member privacy: support card, export, erasure (boards and the honour wall forget the
member; balances, ledger totals and audit stay)."""

from __future__ import annotations

from tests.badge_helpers import count, deliver
from tests.ritual_helpers import complete, put_ritual


async def test_export_support_card_and_erasure(tenant, client, ctx):
    await put_ritual(client, tenant)
    r = await client.put(
        "/admin/v1/leaderboards/weekly",
        headers=tenant.admin,
        json={"metric": "points", "period": "weekly"},
    )
    assert r.status_code == 200, r.text
    member_id, m = await tenant.member("pii-1")
    _, other = await tenant.member("pii-2")
    await complete(client, m)
    await complete(client, other)
    r = await client.post(
        "/v1/ritual/steps/profile", json={"nickname": "x"}, headers=m
    )  # done already: unchanged
    assert r.status_code == 200
    async with ctx.db.transaction() as conn:  # a phone given with consent (profile step data)
        await conn.execute(
            'UPDATE ritual_progress SET profile = profile || \'{"phone": "13812345678"}\' '
            "WHERE member_id = $1",
            member_id,
        )
    r = await client.post(
        "/admin/v1/members/pii-1/points",
        headers=tenant.admin,
        json={"currency": "points", "amount": 5, "reason": "goodwill"},
    )
    assert r.status_code in (200, 201), r.text
    await deliver(ctx)

    card = (await client.get("/admin/v1/members/pii-1", headers=tenant.admin)).json()
    assert card["memberNo"] == 1 and card["points"] == 105 and card["ritual"] == "completed"
    assert card["maskedPhone"] == "138****5678" and card["nickname"] == "小明"
    exported = (await client.get("/admin/v1/members/pii-1/export", headers=tenant.admin)).json()
    assert exported["profile"]["nickname"] == "小明"
    assert exported["ritual"]["profile"]["phone"] == "138****5678"
    assert "covenant" in exported["ritual"]["consents"]
    assert sum(e["delta"] for e in exported["ledger"] if e["currency"] == "points") == 105
    assert (
        await client.get("/admin/v1/members/nobody/export", headers=tenant.admin)
    ).status_code == 404

    board = (await client.get("/v1/leaderboards/weekly", headers=other)).json()
    assert len(board["items"]) == 2
    wall = (await client.get("/v1/honour-wall", headers=other)).json()
    assert len(wall["items"]) == 2
    async with ctx.db.connection() as conn:
        before = await conn.fetchval(
            "SELECT sum(delta) FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2",
            tenant.id,
            member_id,
        )

    r = await client.post(
        "/admin/v1/members/pii-1/erase", headers=tenant.admin, json={"reason": "member request"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["boardRowsRemoved"] >= 1

    board = (await client.get("/v1/leaderboards/weekly", headers=other)).json()
    assert len(board["items"]) == 1 and board["items"][0]["isMe"] is True
    wall = (await client.get("/v1/honour-wall", headers=other)).json()
    assert len(wall["items"]) == 1
    card = (await client.get("/admin/v1/members/pii-1", headers=tenant.admin)).json()
    assert card["nickname"] == "" and card["maskedPhone"] is None
    assert card["points"] == 105 and card["memberNo"] == 1 and card["erasedAt"] is not None
    async with ctx.db.connection() as conn:
        after = await conn.fetchval(
            "SELECT sum(delta) FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2",
            tenant.id,
            member_id,
        )
    assert after == before
    assert (
        await count(ctx, "SELECT count(*) FROM member_erasures WHERE member_id = $1", member_id)
        == 1
    )
    assert (
        await count(ctx, "SELECT count(*) FROM member_identities WHERE member_id = $1", member_id)
        == 0
    )
    # Another tenant cannot see or erase this member.
    from tests.conftest import new_tenant

    stranger = await new_tenant(ctx, client)
    r = await client.get("/admin/v1/members/pii-1", headers=stranger.admin)
    assert r.status_code == 404
