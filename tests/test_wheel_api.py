"""The wheel over HTTP: config and validation, spins, bad input, claims, audit, isolation."""

from __future__ import annotations

import pytest

from tests.test_foundation_api import assert_error
from tests.wheel_helpers import prize, put_wheel, wheel_config

pytestmark = pytest.mark.asyncio


async def test_operator_creates_wheel_member_spins_and_sees_prize(client, tenant, ctx):
    out = await put_wheel(client, tenant, "w1", wheel_config())
    assert out["version"] == 1 and out["status"] == "open" and out["seed"] is None
    assert len(out["seedCommitment"]) == 64
    mid, h = await tenant.member("alice")
    view = (await client.get("/v1/wheels/w1", headers=h)).json()
    assert view["seedCommitment"] == out["seedCommitment"]
    assert view["freeSpinsLeftToday"] == 1
    assert [p["slotIndex"] for p in view["prizes"]] == [0, 1, 2]
    r = await client.post("/v1/wheels/w1/spins", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["spinNo"] == 1 and body["free"] is True and body["layoutVersion"] == 1
    assert body["slotIndex"] == body["prize"]["slotIndex"]
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM wheel_draws WHERE tenant_id=$1 AND member_id=$2",
            tenant.id,
            mid,
        )
    assert n == 1
