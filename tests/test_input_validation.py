"""Issue 9 (items 1a, 2, 4): one strict decoder, one time type, one problem shape for every route.

Each reported input is a test here; the sweep at the end walks the app's route table so a new
route is covered without editing this file.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_challenges_api import CHALLENGE
from tests.test_checkins_api import CAMPAIGN
from tests.test_events import ORDER_RULE
from tests.wheel_helpers import wheel_config

PROBLEM_KEYS = {"source", "path", "code", "problem"}
NAIVE = "2026-11-11T00:00:00"
ADJUST = {"currency": "points", "amount": 10, "reason": "goodwill"}


def problems_of(r: Any, status: int = 422) -> list[dict]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_FAILED", r.text
    problems = err["details"]["problems"]
    assert problems
    for p in problems:
        assert set(p) == PROBLEM_KEYS, p
    return problems


async def table_counts(ctx: Any) -> dict[str, int]:
    """Rows of every table of the schema (idempotency keys included)."""
    async with ctx.db.connection() as conn:
        names = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'migration' ORDER BY tablename"
        )
        out = {}
        for row in names:
            out[row["tablename"]] = await conn.fetchval(f'SELECT count(*) FROM "{row["tablename"]}"')
        return out


# ------------------------------------------------------------------ 1(a) one time type

BOARD = {"metric": "points", "period": "window", "title": "n"}
NAIVE_CONFIGS = [
    (
        "/admin/v1/leaderboards/naive",
        {**BOARD, "windowStart": NAIVE, "windowEnd": "2026-11-12T00:00:00"},
        "windowStart",
    ),
    ("/admin/v1/wheels/naive", wheel_config(startsAt=NAIVE), "startsAt"),
    ("/admin/v1/checkin-campaigns/naive", {**CAMPAIGN, "startsAt": NAIVE}, "startsAt"),
    ("/admin/v1/challenges/naive", {**CHALLENGE, "joinOpensAt": NAIVE}, "joinOpensAt"),
    ("/admin/v1/rules/naive", {**ORDER_RULE, "startsAt": NAIVE}, "startsAt"),
]


@pytest.mark.parametrize(("url", "body", "field"), NAIVE_CONFIGS)
async def test_an_offsetless_time_is_the_same_422_in_every_config(ctx, tenant, client, url, body, field):
    before = await table_counts(ctx)
    r = await client.put(url, headers=tenant.admin, json=body)
    problems = problems_of(r)
    assert ("body", field, "OFFSET_MISSING") in [
        (p["source"], p["path"], p["code"]) for p in problems
    ], problems
    assert await table_counts(ctx) == before


async def test_an_offsetless_event_time_and_dev_clock_are_refused(ctx, tenant, client):
    event = {"eventId": "e1", "externalId": "m1", "type": "order.paid", "occurredAt": NAIVE}
    r = await client.post("/admin/v1/events", headers=tenant.admin, json=event)
    assert [(p["path"], p["code"]) for p in problems_of(r)] == [("occurredAt", "OFFSET_MISSING")]
    r = await client.post("/admin/v1/events", headers=tenant.admin, json=[event])
    assert [(p["path"], p["code"]) for p in problems_of(r)] == [
        ("[0].occurredAt", "OFFSET_MISSING")
    ]


# ------------------------------------------------------------------ 2 strict decoding


async def test_a_string_amount_is_refused_not_credited(ctx, tenant, client):
    before = await table_counts(ctx)
    r = await client.post(
        "/admin/v1/members/m1/points", headers=tenant.admin, json={**ADJUST, "amount": "10"}
    )
    assert [(p["source"], p["path"], p["code"]) for p in problems_of(r)] == [
        ("body", "amount", "WRONG_TYPE")
    ]
    assert await table_counts(ctx) == before


async def test_numbers_are_not_times(ctx, tenant, client):
    before = await table_counts(ctx)
    for url, body, field in [
        ("/admin/v1/wheels/zero", wheel_config(startsAt=0), "startsAt"),
        ("/admin/v1/rules/zero", {**ORDER_RULE, "startsAt": 0}, "startsAt"),
    ]:
        r = await client.put(url, headers=tenant.admin, json=body)
        assert (field, "WRONG_TYPE") in [(p["path"], p["code"]) for p in problems_of(r)]
    event = {"eventId": "e0", "externalId": "m1", "type": "order.paid", "occurredAt": 0}
    r = await client.post("/admin/v1/events", headers=tenant.admin, json=event)
    assert [(p["path"], p["code"]) for p in problems_of(r)] == [("occurredAt", "WRONG_TYPE")]
    assert await table_counts(ctx) == before


async def test_a_batch_over_1000_events_is_refused(ctx, tenant, client):
    before = await table_counts(ctx)
    event = {"externalId": "m1", "type": "order.paid", "occurredAt": "2026-11-01T00:00:00Z"}
    batch = [{**event, "eventId": f"e{i}"} for i in range(1001)]
    r = await client.post("/admin/v1/events", headers=tenant.admin, json=batch)
    assert [(p["path"], p["code"]) for p in problems_of(r)] == [("", "LENGTH_OUT_OF_RANGE")]
    assert await table_counts(ctx) == before


@pytest.mark.parametrize("external_id", ["a%20b'%3B--", "%F0%9F%98%80"])
async def test_an_external_id_in_a_path_is_validated_like_in_a_body(
    ctx, tenant, client, external_id
):
    before = await table_counts(ctx)
    for method, url, body in [
        ("POST", f"/admin/v1/members/{external_id}/points", ADJUST),
        ("POST", f"/admin/v1/members/{external_id}/token", None),
        ("GET", f"/admin/v1/members/{external_id}/ledger", None),
    ]:
        r = await client.request(method, url, headers=tenant.admin, json=body)
        assert [(p["source"], p["path"], p["code"]) for p in problems_of(r)] == [
            ("path", "externalId", "FORMAT_INVALID")
        ], url
    assert await table_counts(ctx) == before


async def test_dev_clock_far_shift_is_422(client, tenant, servers):
    from litestar.testing import AsyncTestClient

    from service.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(servers, dev_clock=True), background=False)
    async with AsyncTestClient(app) as c:
        r = await c.post(
            "/admin/v1/dev/clock",
            headers=tenant.admin,
            json={"advanceSeconds": 1_000_000_000_000},
        )
        assert [(p["path"], p["code"]) for p in problems_of(r)] == [
            ("advanceSeconds", "OUT_OF_RANGE")
        ]
        r = await c.post("/admin/v1/dev/clock", headers=tenant.admin, json={"now": NAIVE})
        assert [(p["path"], p["code"]) for p in problems_of(r)] == [("now", "OFFSET_MISSING")]
        r = await c.post("/admin/v1/dev/clock", headers=tenant.admin, json={})
        assert r.status_code == 200, r.text


async def test_json_as_text_plain_and_forms_are_415(ctx, tenant, client):
    before = await table_counts(ctx)
    headers = {**tenant.admin, "content-type": "text/plain"}
    r = await client.post(
        "/admin/v1/members/m1/points", headers=headers, content=json.dumps(ADJUST).encode()
    )
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    r = await client.post("/admin/v1/members/m1/points", headers=tenant.admin, data={"amount": "10"})
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert await table_counts(ctx) == before
