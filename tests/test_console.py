"""The operator console over HTTP (no browser): sign-in, CSRF, tenant isolation, forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from service.core import tenancy
from tests.conftest import DEFAULT_NOW
from tests.wheel_helpers import put_wheel, wheel_config


@pytest.fixture
async def browser_like(client, app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """A client with its own cookie jar (the shared client has none of the console's)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40001))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=120
    ) as c:
        yield c


def csrf_of(html: str) -> str:
    m = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


async def sign_in(c: httpx.AsyncClient, api_key: str) -> httpx.Response:
    page = await c.get("/console/login")
    assert page.status_code == 200
    return await c.post("/console/login", data={"_csrf": csrf_of(page.text), "api_key": api_key})


async def test_pages_need_a_session(browser_like) -> None:
    for path in ("/console", "/console/c/wheels", "/console/members", "/console/apikeys"):
        r = await browser_like.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", path


async def test_wrong_or_revoked_key_cannot_sign_in(ctx, browser_like, tenant) -> None:
    r = await sign_in(browser_like, "egk_000000000000_nope")
    assert r.status_code == 401 and "API" in r.text
    assert "engage_console" not in r.cookies
    async with ctx.db.transaction() as conn:
        key, key_id = await tenancy.create_api_key(conn, tenant.id, ["admin"], "c", DEFAULT_NOW)
    r = await sign_in(browser_like, key)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    assert (await browser_like.get("/console")).status_code == 200
    # Revoked while signed in: the session ends at the next page.
    r = await browser_like.post(f"/admin/v1/apikeys/{key_id}/revoke", headers=tenant.admin)
    assert r.status_code == 200
    assert (await browser_like.get("/console")).status_code == 303
    browser_like.cookies.clear()
    r = await sign_in(browser_like, key)
    assert r.status_code == 401


async def test_posts_without_csrf_are_refused(browser_like, client, tenant) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    await put_wheel(client, tenant, "w1", wheel_config(state="draft"))
    r = await browser_like.post("/console/wheels/w1/publish", data={})
    assert r.status_code == 403
    r = await browser_like.post("/console/wheels/w1/publish", data={"_csrf": "forged"})
    assert r.status_code == 403
    view = (await client.get("/admin/v1/wheels/w1", headers=tenant.admin)).json()
    assert view["config"]["state"] == "draft"  # nothing changed
    # The login form is guarded too (a forged cross-site sign-in).
    fresh = httpx.AsyncClient(transport=browser_like._transport, base_url="http://testserver")
    async with fresh:
        r = await fresh.post("/console/login", data={"api_key": tenant.api_key})
        assert r.status_code == 403


async def test_a_session_sees_only_its_tenant(browser_like, client, tenant, other_tenant) -> None:
    await put_wheel(client, tenant, "mine", wheel_config())
    await put_wheel(client, other_tenant, "theirs", wheel_config())
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = (await browser_like.get("/console/c/wheels")).text
    assert "mine" in page and "theirs" not in page
    r = await browser_like.get("/console/prizes/theirs/winners.csv")
    assert r.status_code == 404
    r = await browser_like.get("/console/wheels/theirs")
    assert "theirs" not in re.sub(r'value="theirs"|wheels/theirs|· theirs', "", r.text) or (
        'id="odds"' not in r.text
    )
    # A cookie signed for one tenant cannot be edited to name another: the MAC fails.
    cookie = browser_like.cookies.get("engage_console")
    body, mac = cookie.split(".")
    browser_like.cookies.set("engage_console", body[:-2] + "xx." + mac)
    assert (await browser_like.get("/console")).status_code == 303


async def test_wheel_form_shows_every_problem_and_keeps_input(browser_like, client, tenant) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = await browser_like.get("/console/wheels/new")
    form = {
        "_csrf": csrf_of(page.text),
        "key": "bad key!",
        "name": "我的转盘",
        "startsAt": "2026-11-01T00:00:00+08:00",
        "endsAt": "not a time",
        "state": "draft",
        "freeSpinsPerDay": "1",
        "outOfStock": "redraw",
        "prizes[0].key": "big",
        "prizes[0].name": "iPhone",
        "prizes[0].kind": "physical",
        "prizes[0].weight": "abc",
        "prizes[0].totalStock": "1",
        "prizes[1].key": "thanks",
        "prizes[1].name": "谢谢参与",
        "prizes[1].kind": "nothing",
        "prizes[1].weight": "-5",
    }
    r = await browser_like.post("/console/wheels", data=form)
    assert r.status_code == 422, r.text[:300]
    for path in ("key", "endsAt", "prizes[0].weight", "prizes[1].weight"):
        assert f'data-path="{path}"' in r.text, path
    assert (
        'value="我的转盘"' in r.text and 'value="abc"' in r.text and 'value="not a time"' in r.text
    )
    listed = (await client.get("/admin/v1/wheels", headers=tenant.admin)).json()
    assert listed["items"] == []


async def test_operator_creates_simulates_publishes_and_exports(
    browser_like, client, tenant
) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = await browser_like.get("/console/wheels/new")
    form = {
        "_csrf": csrf_of(page.text),
        "key": "lucky",
        "name": "幸运转盘",
        "consolationPrize": "thanks",
        "startsAt": "2026-11-01T00:00:00+08:00",
        "endsAt": "2026-12-31T00:00:00+08:00",
        "state": "draft",
        "freeSpinsPerDay": "1",
        "outOfStock": "redraw",
        "prizes[0].key": "big",
        "prizes[0].name": "iPhone",
        "prizes[0].kind": "physical",
        "prizes[0].weight": "1",
        "prizes[0].totalStock": "1",
        "prizes[1].key": "thanks",
        "prizes[1].name": "谢谢参与",
        "prizes[1].kind": "nothing",
        "prizes[1].weight": "3",
    }
    r = await browser_like.post("/console/wheels", data=form)
    assert r.status_code == 303, re.findall(r"<li>(.*?)</li>", r.text)
    assert r.headers["location"] == "/console/wheels/lucky?saved=1"
    page = await browser_like.get("/console/wheels/lucky?saved=1")
    assert "25.00%" in page.text and "100.00%" in page.text
    csrf = csrf_of(page.text)
    r = await browser_like.post(
        "/console/wheels/lucky/simulate", data={"_csrf": csrf, "draws": "1000"}
    )
    assert r.status_code == 200 and 'id="sim-result"' in r.text
    r = await browser_like.post("/console/wheels/lucky/publish", data={"_csrf": csrf})
    assert r.status_code == 303
    view = (await client.get("/admin/v1/wheels/lucky", headers=tenant.admin)).json()
    assert view["config"]["state"] == "live" and view["spins"] == 0  # simulation changed nothing
    _, member = await tenant.member("winner-1")
    spin = await client.post("/v1/wheels/lucky/spins", headers=member)
    assert spin.status_code == 200, spin.text
    csv_text = (await browser_like.get("/console/prizes/lucky/winners.csv")).text
    assert csv_text.lstrip("\ufeff").startswith("awardId,memberNumber,nickname,externalId,prizeKey")
    won = spin.json()["prize"]["key"]
    if won != "thanks":
        assert "winner-1" in csv_text
    dash = await browser_like.get("/console")
    assert dash.status_code == 200 and 'id="today-spins">1<' in dash.text


async def test_shipping_upload_refuses_non_csv_and_large(browser_like, client, tenant) -> None:
    await put_wheel(client, tenant, "w2", wheel_config())
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    csrf = csrf_of((await browser_like.get("/console/prizes?wheel=w2")).text)
    r = await browser_like.post(
        "/console/prizes/w2/ship-upload",
        data={"_csrf": csrf},
        files={"file": ("x.png", b"\x89PNG....", "image/png")},
    )
    assert r.status_code == 415 and 'id="upload-error"' in r.text
    r = await browser_like.post(
        "/console/prizes/w2/ship-upload",
        data={"_csrf": csrf},
        files={"file": ("big.csv", b"1,a,b\n" * 200_000, "text/csv")},
    )
    assert r.status_code == 413 and 'id="upload-error"' in r.text
    r = await browser_like.post(
        "/console/prizes/w2/ship-upload",
        data={"_csrf": csrf},
        files={"file": ("ok.csv", b"awardId,carrier,trackingNo\n999999,SF,123\n", "text/csv")},
    )
    assert r.status_code == 422 and "line 2" in r.text


async def test_manual_credit_with_reason_and_double_submit(browser_like, client, tenant) -> None:
    await tenant.member("carol")
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = await browser_like.get("/console/members?externalId=carol")
    assert 'id="member-card"' in page.text
    csrf = csrf_of(page.text)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    data = {
        "_csrf": csrf,
        "nonce": nonce,
        "externalId": "carol",
        "amount": "40",
        "reason": "goodwill",
    }
    for _ in range(3):
        r = await browser_like.post("/console/members/credit", data=data)
        assert r.status_code == 303
    card = (
        await client.get("/admin/v1/members/lookup?externalId=carol", headers=tenant.admin)
    ).json()
    assert card["member"]["balances"]["points"] == 40
    r = await browser_like.post(
        "/console/members/credit",
        data={**data, "nonce": "n2", "amount": "many", "reason": ""},
    )
    assert r.status_code == 422 and 'value="many"' in r.text
    assert r.text.count('class="field-error"') >= 2


async def test_assets_are_served_locally(browser_like) -> None:
    for path, kind in (
        ("/console/static/console.css", "text/css"),
        ("/h5/static/app.js", "javascript"),
        ("/h5/static/h5.css", "text/css"),
        ("/h5", "text/html"),
    ):
        r = await browser_like.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        assert kind in r.headers["content-type"], (path, r.headers["content-type"])
    page = await browser_like.get("/console/login")
    assert page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


async def test_list_actions_archive_and_copy(browser_like, client, tenant) -> None:
    await put_wheel(client, tenant, "old", wheel_config())
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = await browser_like.get("/console/c/wheels")
    assert "/console/c/wheels/old/archive" in page.text
    csrf = csrf_of(page.text)
    r = await browser_like.post(
        "/console/c/wheels/old/copy", data={"_csrf": csrf, "newKey": "old-2"}
    )
    assert r.status_code == 303
    r = await browser_like.post("/console/c/wheels/old/archive", data={"_csrf": csrf})
    assert r.status_code == 303
    items = (await client.get("/admin/v1/wheels", headers=tenant.admin)).json()["items"]
    assert {i["key"]: i["state"] for i in items} == {"old": "ended", "old-2": "draft"}
    r = await browser_like.post(
        "/console/c/wheels/old/copy", data={"_csrf": csrf, "newKey": "old-2"}
    )
    assert r.status_code == 422
    r = await browser_like.post("/console/c/wheels/old/pause", data={"_csrf": csrf})
    assert r.status_code == 404


async def test_dashboard_figures_export_as_csv(browser_like, tenant) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    r = await browser_like.get("/console/stats.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.lstrip("\ufeff").strip().splitlines()
    assert lines[0].startswith("day,checkins") and len(lines) == 91
