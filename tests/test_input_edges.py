"""Trial 9 (B0-B11): inputs at the edges of what the service can represent.

Every time and date an input carries (bodies, query parameters, period and month ids) must lie
in the years 2000-2100 (service.core.constraints.TIME_MIN .. TIME_MAX); outside is 422 with an
OUT_OF_RANGE problem on the field, and nothing is stored. An event stored before that bound
never parks a board. Deep nesting, NUL characters, lone surrogates and empty bodies get a
clear problem, never a 500 or Python exception text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.test_challenges_api import CHALLENGE
from tests.test_checkins_api import CAMPAIGN, put_campaign
from tests.test_input_validation import problems_of, table_counts
from tests.test_leaderboards import deliver, emit, put_board
from tests.test_points_api import adjust

pytestmark = pytest.mark.asyncio

EVENT = {"eventId": "z1", "externalId": "m9", "type": "x"}


def where(problems: list[dict]) -> set[tuple[str, str, str]]:
    return {(p["source"], p["path"], p["code"]) for p in problems}


BODIES = [
    ("post", "/admin/v1/events", {**EVENT, "occurredAt": "0001-01-01T00:00:00Z"}, "occurredAt"),
    (
        "post",
        "/admin/v1/events",
        {**EVENT, "occurredAt": "0001-01-01T00:00:00+14:00"},
        "occurredAt",
    ),
    (
        "post",
        "/admin/v1/events",
        {**EVENT, "occurredAt": "9999-12-31T23:59:59-08:00"},
        "occurredAt",
    ),
    ("post", "/admin/v1/events", {**EVENT, "occurredAt": "1999-12-31T23:59:59Z"}, "occurredAt"),
    (
        "put",
        "/admin/v1/leaderboards/bad5",
        {
            "metric": "points",
            "period": "window",
            "title": "x",
            "windowStart": "0001-01-01T00:00:00Z",
            "windowEnd": "9999-12-31T23:59:59Z",
        },
        "windowEnd",
    ),
    (
        "put",
        "/admin/v1/checkin-campaigns/cx",
        {
            **CAMPAIGN,
            "startsAt": "0001-01-01T00:00:00+08:00",
            "endsAt": "9999-12-31T23:59:59-08:00",
        },
        "startsAt",
    ),
    (
        "put",
        "/admin/v1/challenges/chx",
        {**CHALLENGE, "startDate": "9999-12-25", "joinClosesAt": "9999-12-24T00:00:00Z"},
        "startDate",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "field"), BODIES)
async def test_times_and_dates_outside_2000_2100_are_out_of_range(
    ctx, tenant, client, method, url, body, field
):
    await put_campaign(client, tenant, "daily")
    before = await table_counts(ctx)
    r = await client.request(method, url, headers=tenant.admin, json=body)
    assert ("body", field, "OUT_OF_RANGE") in where(problems_of(r))
    assert await table_counts(ctx) == before


async def test_the_edges_of_the_range_are_accepted(ctx, tenant, client):
    r = await client.put(
        "/admin/v1/checkin-campaigns/edge",
        headers=tenant.admin,
        json={**CAMPAIGN, "startsAt": "2000-01-01T00:00:00Z", "endsAt": "2100-12-31T23:59:59Z"},
    )
    assert r.status_code == 200, r.text


async def test_month_and_period_ids_outside_the_range_are_422_not_500(ctx, tenant, client):
    await put_campaign(client, tenant, "c1")
    _, member = await tenant.member("m1")
    r = await client.get("/v1/checkins/c1?month=9999-12", headers=member)
    assert where(problems_of(r)) == {("query", "month", "OUT_OF_RANGE")}
    r = await client.get("/v1/checkins/c1?month=2100-12", headers=member)
    assert r.status_code == 200, r.text
    for period, ids in {
        "daily": ["0001-01-01", "9999-12-31"],
        "weekly": ["0001-W01", "9999-W52"],
        "monthly": ["0001-01", "9999-12"],
    }.items():
        await put_board(client, tenant, f"b-{period}", period=period)
        for pid in ids:
            for url, headers in (
                (f"/v1/leaderboards/b-{period}?period={pid}", member),
                (f"/admin/v1/leaderboards/b-{period}/entries?period={pid}", tenant.admin),
            ):
                r = await client.get(url, headers=headers)
                assert where(problems_of(r)) == {("query", "period", "OUT_OF_RANGE")}, url


async def test_an_event_stored_out_of_range_never_parks_a_board(ctx, client, tenant):
    """B0: an event at 0001-01-01 (accepted before inputs were bounded) parked every points
    board of the tenant. The boards now skip it and keep counting."""
    await put_board(client, tenant, "all", period="allTime")
    await put_board(
        client,
        tenant,
        "win",
        period="window",
        windowStart="2026-11-01T00:00:00Z",
        windowEnd="2026-12-01T00:00:00Z",
    )
    member_id, headers = await tenant.member("m9")
    await emit(ctx, tenant.id, member_id, 5, datetime(1, 1, 1, tzinfo=UTC))
    await emit(ctx, tenant.id, member_id, 5, datetime(9999, 12, 31, tzinfo=UTC))
    assert (await adjust(client, tenant, "m9", 7)).status_code == 200
    await deliver(ctx)
    for key in ("all", "win"):
        r = await client.get(f"/v1/leaderboards/{key}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["me"]["score"] == 7


async def test_members_never_see_exception_text_of_a_parked_board(ctx, client, tenant):
    await put_board(client, tenant, "p", period="allTime")
    async with ctx.db.connection() as conn:
        await conn.execute(
            "INSERT INTO parked_definitions (feature, definition_id, tenant_id, state, reason, "
            "parked_at, from_txid, from_id) SELECT 'leaderboards', id, tenant_id, 'parked', "
            "'TypeError: can''t compare offset-naive and offset-aware datetimes', now(), 0, 0 "
            "FROM leaderboards WHERE tenant_id = $1 AND key = 'p'",
            tenant.id,
        )
    ctx.caches.clear()
    _, headers = await tenant.member("m1")
    r = await client.get("/v1/leaderboards/p", headers=headers)
    assert r.status_code == 409, r.text
    details: dict[str, Any] = r.json()["error"]["details"]
    assert details["state"] == "parked" and "Error" not in details["reason"], details
    r = await client.get("/admin/v1/leaderboards/p", headers=tenant.admin)
    assert "TypeError" in r.json()["parked"]["reason"]


# ------------------------------------------------------------------ B1-B4: the JSON itself


async def test_deeply_nested_json_is_one_clear_400_on_every_route(ctx, tenant, client):
    _, member = await tenant.member("m1")
    before = await table_counts(ctx)
    for method, url, headers, body in (
        ("patch", "/v1/me", member, '{"a":' * 3000 + "1" + "}" * 3000),
        ("post", "/admin/v1/events", tenant.admin, "[" * 3000 + "]" * 3000),
        ("post", "/admin/v1/members/b3b/points", tenant.admin, "[" * 40 + "]" * 40),
    ):
        r = await client.request(
            method, url, headers={**headers, "Content-Type": "application/json"}, content=body
        )
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "MALFORMED_REQUEST"
        assert [p["code"] for p in err["details"]["problems"]] == ["JSON_INVALID"]
    assert await table_counts(ctx) == before


@pytest.mark.parametrize("text", ["a\\u0000b", "\\ud800", "x\\udfff"])
async def test_nul_and_lone_surrogates_are_refused_at_their_field(ctx, tenant, client, text):
    _, member = await tenant.member("m1")
    before = await table_counts(ctx)
    r = await client.patch(
        "/v1/me",
        headers={**member, "Content-Type": "application/json"},
        content='{"nickname":"' + text + '"}',
    )
    assert where(problems_of(r)) == {("body", "nickname", "CHARACTER_NOT_ALLOWED")}
    assert await table_counts(ctx) == before


async def test_an_empty_body_is_required_not_a_key_error(ctx, tenant, client):
    _, member = await tenant.member("m1")
    for method, url, headers in (
        ("post", "/admin/v1/members/b3b/points", tenant.admin),
        ("patch", "/v1/me", member),
    ):
        r = await client.request(
            method, url, headers={**headers, "Content-Type": "application/json"}, content=b""
        )
        problems = problems_of(r)
        assert where(problems) == {("body", "", "REQUIRED")}, r.text
        assert "'data'" not in r.text


# ------------------------------------------------------------------ item 4: one cursor code


async def test_every_bad_cursor_is_cursor_invalid(ctx, tenant, client):
    _, member = await tenant.member("m1")
    for cursor in ("zzz", "%00", "%27%3B--", "a" * 65, "%F0%9F%98%80"):
        r = await client.get(f"/v1/me/ledger?cursor={cursor}", headers=member)
        assert where(problems_of(r)) == {("query", "cursor", "CURSOR_INVALID")}, cursor


# ------------------------------------------------------------------ item 8: the stated tie limits


def test_tie_order_resolution_is_what_the_docs_state():
    """README and leaderboards.md: ties rank by reach time only to the board's tick (1 s on
    all-time boards); within a tick the smaller member id ranks first."""
    from service.leaderboards import rules

    period = rules.Period("all", rules.ALL_TIME_EPOCH, None, rules.ALL_TIME_UNIT)
    t0 = datetime(2026, 11, 29, 12, 0, 0, 100_000, tzinfo=UTC)
    later = t0.replace(microsecond=700_000)  # 0.6 s later, same second
    # Member 45 reached the score 0.6 s after member 46, yet ranks first: same tick.
    assert rules.sort_key(44, later, 45, period) < rules.sort_key(44, t0, 46, period)
    assert rules.encode(44, later, period) == rules.encode(44, t0, period)
    # About 2 s apart: reach order (a smaller sort key ranks higher).
    assert rules.sort_key(44, t0.replace(second=2), 45, period) > rules.sort_key(44, t0, 46, period)
    readme = Path("README.md").read_text(encoding="utf-8")
    assert "exact on every board kind" not in readme and "1 s on\nall-time boards" in readme


# ------------------------------------------------------------------ minor: request ids


async def test_a_request_id_over_64_characters_is_replaced_by_a_fresh_one(client):
    r = await client.get("/health/live", headers={"X-Request-Id": "r" * 500})
    rid = r.headers["X-Request-Id"]
    assert 1 <= len(rid) <= 64 and not rid.startswith("rrrr"), rid
    r = await client.get("/health/live", headers={"X-Request-Id": "trace-42"})
    assert r.headers["X-Request-Id"] == "trace-42"
