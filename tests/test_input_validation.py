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
            out[row["tablename"]] = await conn.fetchval(
                f'SELECT count(*) FROM "{row["tablename"]}"'
            )
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
async def test_an_offsetless_time_is_the_same_422_in_every_config(
    ctx, tenant, client, url, body, field
):
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
    r = await client.post(
        "/admin/v1/members/m1/points", headers=tenant.admin, data={"amount": "10"}
    )
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    r = await client.post(
        "/admin/v1/members/m1/points",
        headers={**tenant.admin, "content-type": "application/json"},
        content=b'{"amount": ',
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "MALFORMED_REQUEST"
    assert [(p["source"], p["code"]) for p in err["details"]["problems"]] == [
        ("body", "JSON_INVALID")
    ]
    assert await table_counts(ctx) == before


# ------------------------------------------------------------------ 4 states and replays


async def test_a_replayed_answer_says_replayed_in_its_body(ctx, tenant, client):
    await client.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    _, member = await tenant.member("rp-1")
    headers = {**member, "Idempotency-Key": "tap-1"}
    first = await client.post("/v1/checkins/daily", headers=headers)
    again = await client.post("/v1/checkins/daily", headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["replayed"] is False
    assert again.json() == {**first.json(), "replayed": True}
    # The same on an operator route with a replayed field (manual points).
    headers = {**tenant.admin, "Idempotency-Key": "adj-1"}
    first = await client.post("/admin/v1/members/rp-1/points", headers=headers, json=ADJUST)
    again = await client.post("/admin/v1/members/rp-1/points", headers=headers, json=ADJUST)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["replayed"] is False and again.json()["replayed"] is True
    assert again.json() == {**first.json(), "replayed": True}


async def test_a_paused_wheel_answers_its_state_not_404(ctx, tenant, client):
    r = await client.put(
        "/admin/v1/wheels/paused", headers=tenant.admin, json=wheel_config(state="draft")
    )
    assert r.status_code == 200, r.text
    _, member = await tenant.member("wp-1")
    r = await client.get("/v1/wheels/paused", headers=member)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "WHEEL_NOT_LIVE" and err["details"]["status"] == "draft"
    r = await client.get("/v1/wheels/nowhere", headers=member)
    assert r.status_code == 404 and r.json()["error"]["code"] == "WHEEL_NOT_FOUND"


# ------------------------------------------------------------------ 4 one code per mistake


async def test_page_size_and_cursor_mistakes_have_one_code(ctx, tenant, client):
    await client.put(
        "/admin/v1/leaderboards/pts",
        headers=tenant.admin,
        json={"metric": "points", "period": "allTime"},
    )
    await client.put("/admin/v1/wheels/w", headers=tenant.admin, json=wheel_config())
    _, member = await tenant.member("pg-1")
    too_large = [
        ("/v1/me/ledger?limit=101", member),
        ("/v1/leaderboards/pts?limit=101", member),
        ("/v1/me/prizes?limit=101", member),
        ("/admin/v1/members/pg-1/ledger?limit=1001", tenant.admin),
        ("/admin/v1/wheels/w/awards?limit=1001", tenant.admin),
        ("/admin/v1/leaderboards/pts/entries?limit=1001", tenant.admin),
        ("/v1/me/ledger?limit=0", member),
        ("/v1/leaderboards/pts?limit=abc", member),
    ]
    for url, headers in too_large:
        r = await client.get(url, headers=headers)
        found = [(p["source"], p["path"]) for p in problems_of(r)]
        assert found == [("query", "limit")], (url, r.text)
    for url, headers in [
        ("/v1/me/ledger?cursor=bm90LWEtY3Vyc29y", member),
        ("/v1/leaderboards/pts?cursor=zz", member),
        ("/v1/me/prizes?cursor=e1", member),
        ("/v1/me/ledger?cursor=%27%3B--", member),
    ]:
        r = await client.get(url, headers=headers)
        found = [(p["source"], p["path"], p["code"]) for p in problems_of(r)]
        assert found in (
            [("query", "cursor", "CURSOR_INVALID")],
            [("query", "cursor", "FORMAT_INVALID")],
        ), (url, r.text)


async def test_every_problem_of_a_body_at_once(ctx, tenant, client):
    bad = {
        **wheel_config(),
        "startsAt": 0,
        "endsAt": NAIVE,
        "name": "",
        "state": "paused",
        "surprise": 1,
    }
    r = await client.put("/admin/v1/wheels/many", headers=tenant.admin, json=bad)
    found = {(p["path"], p["code"]) for p in problems_of(r)}
    assert found == {
        ("startsAt", "WRONG_TYPE"),
        ("endsAt", "OFFSET_MISSING"),
        ("name", "LENGTH_OUT_OF_RANGE"),
        ("state", "NOT_ALLOWED"),
        ("surprise", "UNKNOWN_FIELD"),
    }


# ------------------------------------------------------------------ the sweep of every route


def _wrong(t: Any, depth: int = 0) -> Any:
    """A value of the wrong JSON type for ``t`` (msgspec.inspect type info)."""
    from msgspec import inspect as mi

    if isinstance(t, mi.Metadata):
        return _wrong(t.type, depth)
    if isinstance(t, mi.UnionType):
        kinds = [m for m in t.types if not isinstance(m, mi.NoneType)]
        if any(isinstance(m, mi.ListType) for m in kinds) and any(
            isinstance(m, mi.StructType) for m in kinds
        ):
            return "not an object or a list"
        return _wrong(kinds[0], depth)
    if isinstance(t, mi.StructType):
        if depth:
            return 7
        return {f.encode_name: _wrong(f.type, depth + 1) for f in t.fields}
    if isinstance(t, mi.IntType | mi.FloatType):
        return "10"
    if isinstance(t, mi.BoolType):
        return "true"
    if isinstance(t, mi.DateTimeType | mi.DateType):
        return 0
    if isinstance(t, mi.ListType):
        return {"not": "a list"}
    if isinstance(t, mi.DictType):
        return ["not", "an", "object"]
    return 12345  # strings, literals


def _too_big(t: Any, depth: int = 0) -> Any:
    """A value of the right JSON type beyond its limits (or of the wrong type if unlimited)."""
    from msgspec import inspect as mi

    if isinstance(t, mi.Metadata):
        return _too_big(t.type, depth)
    if isinstance(t, mi.UnionType):
        kinds = [m for m in t.types if not isinstance(m, mi.NoneType)]
        lists = [m for m in kinds if isinstance(m, mi.ListType)]
        return _too_big(lists[0] if lists else kinds[0], depth)
    if isinstance(t, mi.StructType):
        if depth > 1:
            return 7
        return {f.encode_name: _too_big(f.type, depth + 1) for f in t.fields}
    if isinstance(t, mi.IntType):
        return (t.le + 1) if t.le is not None else 10**30
    if isinstance(t, mi.FloatType):
        return (t.le * 10 + 1) if t.le is not None else "1e400"
    if isinstance(t, mi.StrType):
        return "x" * (t.max_length + 1) if t.max_length is not None else 12345
    if isinstance(t, mi.ListType):
        if t.max_length is not None and t.max_length <= 2000:
            return [_too_big(t.item_type, depth + 1)] * (t.max_length + 1)
        return {"not": "a list"}
    if isinstance(t, mi.DateTimeType):
        return "2026-11-11T00:00:00"
    return _wrong(t, depth)


def _param_value(t: Any, mode: str) -> str:
    from msgspec import inspect as mi

    info = mi.type_info(t)
    if isinstance(info, mi.UnionType):
        info = next(m for m in info.types if not isinstance(m, mi.NoneType))
    if isinstance(info, mi.IntType):
        return "ten" if mode == "wrong" else str((info.le + 1) if info.le is not None else 10**30)
    if isinstance(info, mi.StrType):
        if mode == "range" and info.max_length is not None:
            return "x" * (info.max_length + 1)
        return "a b';--" if info.pattern else ""
    if isinstance(info, mi.BoolType):
        return "perhaps"
    if isinstance(info, mi.DateType | mi.DateTimeType):
        return "yesterday"
    return "%00"


def _cases(app: Any) -> list[tuple[str, str, str, Any]]:
    """(method, url, variant, json body) for every route handler of the app."""
    from urllib.parse import quote

    from litestar.routes import HTTPRoute

    from service.core.constraints import body_type_of, param_specs

    cases = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/schema", "/metrics")):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method in ("HEAD", "OPTIONS"):
                    continue
                specs = param_specs(handler)
                body_t = body_type_of(handler)
                for mode in ("wrong", "range"):
                    path = route.path
                    query = []
                    for name, wire, t, _ in specs:
                        value = _param_value(t, mode)
                        if "{" + name in path:
                            path = path.replace(
                                path[
                                    path.index("{" + name) : path.index("}", path.index("{" + name))
                                    + 1
                                ],
                                quote(value or "x", safe=""),
                            )
                        elif not wire.startswith("header:"):
                            query.append(f"{wire}={quote(value, safe='')}")
                    body = None
                    if body_t is not None:
                        from msgspec import inspect as mi

                        info = mi.type_info(body_t)
                        body = _wrong(info) if mode == "wrong" else _too_big(info)
                    if not query and body is None and "{" not in route.path:
                        continue  # nothing a caller can get wrong here
                    url = path + ("?" + "&".join(query) if query else "")
                    cases.append((method, url, mode, body))
    return cases


async def test_every_route_refuses_wrong_types_and_out_of_range_values(app, ctx, tenant, client):
    """Walks Litestar's route table: a new route is swept without editing this test."""
    _, member = await tenant.member("sweep-1")
    cases = _cases(app)
    assert len(cases) > 60, len(cases)
    before = await table_counts(ctx)
    seen_validation = 0
    for method, url, mode, body in cases:
        headers = member if url.startswith("/v1/") else tenant.admin
        r = await client.request(method, url, headers=headers, json=body)
        where = f"{method} {url[:120]} ({mode}): {r.status_code} {r.text[:300]}"
        assert 400 <= r.status_code < 500, where
        err = r.json()["error"]
        assert set(err) == {"code", "message", "details"}, where
        if err["code"] == "VALIDATION_FAILED":
            seen_validation += 1
            assert r.status_code == 422, where
            for p in err["details"]["problems"]:
                assert set(p) == PROBLEM_KEYS, where
                assert p["source"] in ("body", "query", "path", "header"), where
        else:
            assert r.status_code in (404, 409, 413, 415), where
    assert seen_validation >= len(cases) * 0.8
    assert await table_counts(ctx) == before


async def test_shape_and_rule_problems_come_in_one_answer(ctx, tenant, client):
    before = await table_counts(ctx)
    bad = {**wheel_config(), "timezone": "Mars/Base", "state": "paused", "surprise": 1}
    r = await client.put("/admin/v1/wheels/one-pass", headers=tenant.admin, json=bad)
    found = {(p["path"], p["code"]) for p in problems_of(r)}
    assert found == {
        ("state", "NOT_ALLOWED"),
        ("surprise", "UNKNOWN_FIELD"),
        ("timezone", "INVALID"),
    }
    board = {"metric": "likes", "period": "allTime", "showAvatar": "yes"}
    r = await client.put("/admin/v1/leaderboards/one-pass", headers=tenant.admin, json=board)
    found = {(p["path"], p["code"]) for p in problems_of(r)}
    assert found == {("showAvatar", "WRONG_TYPE"), ("metric", "INVALID")}
    campaign = {**CAMPAIGN, "timezone": "Mars/Base", "makeup": {"perMonth": "2"}}
    r = await client.put(
        "/admin/v1/checkin-campaigns/one-pass", headers=tenant.admin, json=campaign
    )
    found = {(p["path"], p["code"]) for p in problems_of(r)}
    assert found == {("makeup.perMonth", "WRONG_TYPE"), ("timezone", "TIMEZONE_UNKNOWN")}
    assert await table_counts(ctx) == before


def test_the_openapi_file_shows_the_parameter_constraints():
    """Path and query parameters carry the same limits as body fields, and the file says so."""
    from pathlib import Path

    doc = json.loads((Path(__file__).parent.parent / "frontend-api-spec/openapi.json").read_text())
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                if "$ref" in p or p["in"] != "path":
                    continue
                schema = p["schema"]
                assert "pattern" in schema or "maximum" in schema, (method, path, p["name"])
    ledger = doc["paths"]["/v1/me/ledger"]["get"]["parameters"]
    limit = next(p for p in ledger if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)


def test_the_client_guide_lists_every_problem_code():
    from pathlib import Path

    from service.core.constraints import PROBLEM_CODES

    guide = (Path(__file__).parent.parent / "frontend-api-spec/README.md").read_text()
    missing = [code for code in PROBLEM_CODES if f"`{code}`" not in guide]
    assert not missing, f"add these problem codes to frontend-api-spec/README.md: {missing}"


async def test_without_credentials_a_bad_request_is_still_401(client):
    r = await client.post("/admin/v1/members/a%20b/points", json={"amount": "10"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "API_KEY_INVALID"
    r = await client.get("/v1/me/ledger?limit=1000")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_a_malformed_nested_field_does_not_hide_the_rule_problems(ctx, tenant, client):
    before = await table_counts(ctx)
    bad = {
        **wheel_config(
            [
                {
                    "key": "a",
                    "name": "a",
                    "kind": "points",
                    "weight": 0,
                    "value": 5,
                    "totalStock": "3",
                },
                {"key": "b", "name": "b", "kind": "nothing", "weight": 0},
            ]
        ),
        "consolationPrize": None,
    }
    r = await client.put("/admin/v1/wheels/nested", headers=tenant.admin, json=bad)
    found = {(p["path"], p["code"]) for p in problems_of(r)}
    assert ("prizes[0].totalStock", "WRONG_TYPE") in found
    assert {"prizes", "consolationPrize"} <= {path for path, _ in found}
    assert await table_counts(ctx) == before


# ------------------------------------------------------------------ one URL constraint (trial 11)

BAD_URLS = [
    "https://example.com/\r\nX-Evil: 1",  # header injection
    "https://exa mple.com/",  # whitespace
    "https://example.com:0/",  # port 0
    "https://example.com:65536/",  # port out of range
    "javascript:alert(1)",  # not http(s)
    "https://user:pw@example.com/",  # credentials
]


def _url_problem(r: Any, path: str) -> None:
    found = problems_of(r)
    assert [(p["path"], p["code"]) for p in found] == [(path, "URL_INVALID")], found


@pytest.mark.parametrize("url", BAD_URLS)
async def test_every_operator_and_member_url_passes_one_url_constraint(client, tenant, ctx, url):
    """Trial 11 F5/F8: webhook target, badge icons, prize image, level badge, reminder webhook
    and member avatar all refuse the same bad URLs with URL_INVALID at the field's path, and
    nothing is saved."""
    before = await table_counts(ctx)
    hook = {"url": url, "eventTypes": ["*"]}
    _url_problem(await client.put("/admin/v1/webhooks/u", headers=tenant.admin, json=hook), "url")
    badge = {"name": "B", "criteria": [{"kind": "manual"}], "icon": url}
    _url_problem(await client.put("/admin/v1/badges/u", headers=tenant.admin, json=badge), "icon")
    wheel = wheel_config()
    wheel["prizes"][0]["imageUrl"] = url
    _url_problem(
        await client.put("/admin/v1/wheels/u", headers=tenant.admin, json=wheel),
        "prizes[0].imageUrl",
    )
    levels = {"levels": [{"name": "A", "threshold": 0, "badgeUrl": url}]}
    _url_problem(
        await client.put("/admin/v1/levels", headers=tenant.admin, json=levels),
        "levels[0].badgeUrl",
    )
    reminders = {"sender": "webhook", "webhookUrl": url}
    _url_problem(
        await client.put("/admin/v1/reminders/config", headers=tenant.admin, json=reminders),
        "webhookUrl",
    )
    assert await table_counts(ctx) == before
    _, member = await tenant.member("url-m")
    before = await table_counts(ctx)
    _url_problem(await client.patch("/v1/me", headers=member, json={"avatarUrl": url}), "avatarUrl")
    assert await table_counts(ctx) == before


async def test_image_urls_may_be_relative_paths_and_good_urls_pass(client, tenant):
    for icon in ("lock.png", "/static/b.png", "https://cdn.example/徽章.png", ""):
        badge = {"name": "B", "criteria": [{"kind": "manual"}], "icon": icon}
        r = await client.put("/admin/v1/badges/ok", headers=tenant.admin, json=badge)
        assert r.status_code == 200, r.text
    for icon in ("//evil.example/x.png", "data:image/png;base64,AA"):
        badge = {"name": "B", "criteria": [{"kind": "manual"}], "icon": icon}
        r = await client.put("/admin/v1/badges/ok", headers=tenant.admin, json=badge)
        _url_problem(r, "icon")
