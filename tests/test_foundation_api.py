"""Foundation over HTTP: login, /v1/me, the error shape, auth failures, tenant walls."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from service.core.errors import CATALOGUE

pytestmark = pytest.mark.asyncio


def assert_error(resp, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert "Traceback" not in resp.text
    return body["error"]


async def test_login_creates_member_once_and_me_shows_it(tenant, client, ctx):
    r1 = await client.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "dev:alice"})
    assert r1.status_code == 200, r1.text
    b1 = r1.json()
    assert b1["isNewMember"] is True
    assert b1["expiresIn"] == 7200 and b1["refreshToken"]
    assert "sessionKey" not in r1.text and "session_key" not in r1.text
    r2 = await client.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "dev:alice2"})
    r3 = await client.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "dev:alice"})
    assert r3.json()["member"]["id"] == b1["member"]["id"]
    assert r2.json()["member"]["id"] != b1["member"]["id"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {b1['accessToken']}"})
    assert me.status_code == 200
    assert me.json()["id"] == b1["member"]["id"]
    assert me.headers["x-request-id"]
    async with ctx.db.connection() as conn:
        n = await conn.fetchval("SELECT count(*) FROM members WHERE tenant_id = $1", tenant.id)
        joined = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'member.joined'", tenant.id
        )
    assert n == 2 and joined == 2


async def test_concurrent_first_logins_make_one_member(tenant, client, ctx):
    """Fresh codes for one openid racing (no replay cache in the way): one member."""
    from service.members.service import _login_once

    results = await asyncio.gather(
        *[_login_once(ctx, tenant.app_id, "dev:racer") for _ in range(20)]
    )
    assert len({r.member.id for r in results}) == 1
    assert sum(r.is_new_member for r in results) == 1
    async with ctx.db.connection() as conn:
        n = await conn.fetchval("SELECT count(*) FROM members WHERE tenant_id = $1", tenant.id)
        joined = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'member.joined'", tenant.id
        )
    assert n == 1 and joined == 1


async def test_repeated_login_code_replays_first_result(tenant, client):
    body = {"appId": tenant.app_id, "code": "dev:bob"}
    r1, r2 = (
        await client.post("/v1/auth/wechat", json=body),
        await client.post("/v1/auth/wechat", json=body),
    )
    assert r1.json() == r2.json()


async def test_refresh_token(tenant, client):
    r = await client.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "dev:carol"})
    rt = r.json()["refreshToken"]
    r2 = await client.post("/v1/auth/refresh", json={"refreshToken": rt})
    assert r2.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {r2.json()['accessToken']}"})
    assert me.status_code == 200
    # An access token is not a refresh token.
    bad = await client.post("/v1/auth/refresh", json={"refreshToken": r.json()["accessToken"]})
    assert_error(bad, 401, "TOKEN_INVALID")


async def test_expired_and_forged_and_missing_tokens(tenant, client, clock):
    headers = await tenant.login("dave")
    clock.advance(hours=3)
    assert_error(await client.get("/v1/me", headers=headers), 401, "TOKEN_EXPIRED")
    clock.advance(hours=-3)
    token = headers["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-secret", algorithm="HS256")
    assert_error(
        await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}),
        401,
        "TOKEN_INVALID",
    )
    none_alg = jwt.encode(claims, key=None, algorithm="none")
    assert_error(
        await client.get("/v1/me", headers={"Authorization": f"Bearer {none_alg}"}),
        401,
        "TOKEN_INVALID",
    )
    assert_error(await client.get("/v1/me"), 401, "UNAUTHENTICATED")
    assert_error(
        await client.get("/v1/me", headers={"Authorization": "Basic abc"}), 401, "UNAUTHENTICATED"
    )


async def test_error_shape_for_every_failure_kind(tenant, client):
    assert_error(await client.get("/no/such/route"), 404, "NOT_FOUND")
    assert_error(await client.delete("/v1/me"), 405, "METHOD_NOT_ALLOWED")
    assert_error(
        await client.post(
            "/v1/auth/wechat", content=b'{"appId": ', headers={"content-type": "application/json"}
        ),
        400,
        "MALFORMED_REQUEST",
    )
    err = assert_error(
        await client.post("/v1/auth/wechat", json={"appId": 5, "code": "x"}),
        422,
        "VALIDATION_FAILED",
    )
    assert err["details"]["problems"][0]["path"] == "appId"
    assert_error(
        await client.post("/v1/auth/wechat", json={"appId": "wxnope", "code": "dev:x"}),
        400,
        "APP_NOT_REGISTERED",
    )
    assert_error(
        await client.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "nodev"}),
        400,
        "WECHAT_CODE_INVALID",
    )
    err = assert_error(
        await client.post(
            "/admin/v1/members/x/token", headers=tenant.admin, json={"nickname": "n", "evil": 1}
        ),
        422,
        "VALIDATION_FAILED",
    )
    assert "evil" in str(err["details"])
    big = b'{"nickname": "' + b"a" * 3_000_000 + b'"}'
    assert_error(
        await client.post(
            "/admin/v1/members/x/token",
            headers={**tenant.admin, "content-type": "application/json"},
            content=big,
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert_error(await client.post("/admin/v1/members/x/token"), 401, "API_KEY_INVALID")
    assert_error(
        await client.post(
            "/admin/v1/members/x/token", headers={"Authorization": "Bearer egk_000000000000_nope"}
        ),
        401,
        "API_KEY_INVALID",
    )


async def test_english_messages_on_request(client):
    r = await client.get("/nope", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.json()["error"]["message"] == CATALOGUE["NOT_FOUND"][2]


async def test_scope_is_enforced(ctx, client):
    from tests.conftest import new_tenant

    t = await new_tenant(ctx, client, scopes=["events"])
    assert_error(
        await client.post("/admin/v1/members/m1/token", headers=t.admin), 403, "FORBIDDEN_SCOPE"
    )


async def test_revoked_key_stops_working(ctx, client, tenant):
    from service.core import tenancy
    from tests.conftest import DEFAULT_NOW

    async with ctx.db.transaction() as conn:
        key, key_id = await tenancy.create_api_key(conn, tenant.id, ["members"], "tmp", DEFAULT_NOW)
    h = {"Authorization": f"Bearer {key}"}
    assert (await client.post("/admin/v1/members/rk/token", headers=h)).status_code == 200
    async with ctx.db.transaction() as conn:
        assert await tenancy.revoke_api_key(conn, key_id, DEFAULT_NOW)
    await ctx.caches.changed(tenancy.API_KEY_CACHE)  # what the revoking process publishes
    assert_error(await client.post("/admin/v1/members/rk/token", headers=h), 401, "API_KEY_INVALID")


async def test_tenant_isolation(tenant, other_tenant, client, ctx):
    """B's key and tokens never reach A's members, and the tenant comes from the credential."""
    a_id, a_headers = await tenant.member("shared-ext-id")
    b_id, b_headers = await other_tenant.member("shared-ext-id")
    assert a_id != b_id
    me_b = (await client.get("/v1/me", headers=b_headers)).json()
    assert me_b["id"] == b_id
    # A token of tenant A always resolves inside A, whatever else is sent.
    me_a = await client.get("/v1/me", headers={**a_headers, "X-Tenant": str(other_tenant.id)})
    assert me_a.json()["id"] == a_id
    # A's appId logs into A only.
    r = await client.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "dev:zz"})
    async with ctx.db.connection() as conn:
        owner = await conn.fetchval(
            "SELECT tenant_id FROM members WHERE id = $1", r.json()["member"]["id"]
        )
    assert owner == tenant.id


async def test_dev_login_is_refused_when_disabled(servers, ctx, client):
    from service.app import create_app
    from tests.conftest import http_client, make_settings, new_tenant

    t = await new_tenant(ctx, client)
    app2 = create_app(make_settings(servers, dev_login=False), background=False)
    async with http_client(app2) as c2:
        r = await c2.post("/v1/auth/wechat", json={"appId": t.app_id, "code": "dev:x"})
        assert_error(r, 403, "DEV_LOGIN_DISABLED")


async def test_health_and_metrics(client):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ok",
        "postgresql": True,
        "redis": True,
    }
    await client.get("/nope")
    m = await client.get("/metrics")
    assert m.status_code == 200 and "engage_requests_total" in m.text
    s = await client.get("/schema/openapi.json")
    assert s.status_code == 200 and "/v1/auth/wechat" in s.text
    ui = await client.get("/schema")
    assert ui.status_code == 200 and "<html" in ui.text.lower()
