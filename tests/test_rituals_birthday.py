"""A birthday is a calendar date of birth: 1900-01-01 up to today, not the 2000-2100 bound of
event and campaign times."""

from __future__ import annotations

from tests.conftest import DEFAULT_NOW
from tests.ritual_helpers import STEP_DATA, put_ritual


async def test_birthday_accepts_old_dates_and_refuses_future_ones(ctx, client, tenant) -> None:
    await put_ritual(client, tenant)
    _, m = await tenant.member("born-early")
    r = await client.post("/v1/ritual/steps/covenant", json=STEP_DATA["covenant"], headers=m)
    assert r.status_code == 200, r.text
    too_old = {"nickname": "A", "birthday": "1899-12-31"}
    future = {"nickname": "A", "birthday": "2100-01-01"}
    tomorrow = DEFAULT_NOW.date().replace(year=DEFAULT_NOW.year + 1).isoformat()
    for body in (too_old, future, {"nickname": "A", "birthday": tomorrow}):
        r = await client.post("/v1/ritual/steps/profile", json=body, headers=m)
        assert r.status_code == 422, (body, r.text)
        probs = r.json()["error"]["details"]["problems"]
        assert [(p["path"], p["code"]) for p in probs] == [("birthday", "OUT_OF_RANGE")], probs
        assert "1900" in probs[0]["problem"]
    # Several problems in one answer: a bad birthday and a too-long nickname.
    r = await client.post(
        "/v1/ritual/steps/profile", json={"nickname": "x" * 65, "birthday": "1800-01-01"}, headers=m
    )
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["error"]["details"]["problems"]} == {
        "nickname",
        "birthday",
    }
    r = await client.post(
        "/v1/ritual/steps/profile", json={"nickname": "A", "birthday": "1950-02-28"}, headers=m
    )
    assert r.status_code == 200, r.text
    async with ctx.db.connection() as conn:
        profile = await conn.fetchval(
            "SELECT profile::text FROM ritual_progress WHERE tenant_id = $1", tenant.id
        )
    assert "1950-02-28" in profile
