"""The `wechat` verifier against a fake code2Session server on loopback: identities and errors."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from service.app import create_app
from service.core import tenancy
from tests.conftest import DEFAULT_NOW, http_client, make_settings

pytestmark = pytest.mark.asyncio

SESSION_KEY = "SESSIONKEY-must-never-leave-the-server"
APP_SECRET = "app-secret-for-code2session"


@dataclass
class FakeWechat:
    """Answers /sns/jscode2session by js_code:

    - ``ok:<openid>[:<unionid>]``: success, with a session_key;
    - ``err:<errcode>``: WeChat's error answer (HTTP 200 with errcode/errmsg);
    - ``http500``: an HTTP 500; ``slow``: answers after 6 s (past the client timeout);
    - ``garbage``: a body that is not JSON.
    """

    base_url: str = ""
    calls: list[dict[str, str]] = field(default_factory=list)


def _handler(fake: FakeWechat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            # WeChat really answers JSON as text/plain.
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with _suppress_broken_pipe():
                self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            fake.calls.append({"path": url.path, **query})
            if url.path != "/sns/jscode2session":
                self._send(404, b"not found")
                return
            code = query.get("js_code", "")
            if code == "http500":
                self._send(500, b"<html>Internal Server Error</html>")
            elif code == "slow":
                time.sleep(6)
                self._send(200, b'{"errcode": -1, "errmsg": "system busy"}')
            elif code == "garbage":
                self._send(200, b"<html>gateway</html>")
            elif code.startswith("err:"):
                errcode = int(code[4:])
                self._send(200, json.dumps({"errcode": errcode, "errmsg": "fake"}).encode())
            elif code.startswith("ok:"):
                _, openid, *rest = code.split(":")
                body: dict[str, Any] = {"openid": openid, "session_key": SESSION_KEY}
                if rest:
                    body["unionid"] = rest[0]
                self._send(200, json.dumps(body).encode())
            else:
                self._send(200, b'{"errcode": 40029, "errmsg": "invalid code"}')

    return Handler


class _suppress_broken_pipe:
    """The client may hang up first (the timeout case); that is not the server's failure."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, *_: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, ConnectionError)


@pytest.fixture(scope="module")
def fake_wechat() -> Iterator[FakeWechat]:
    fake = FakeWechat()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
async def wx(servers, clock, fake_wechat) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A second app whose WeChat API base is the fake; a short timeout keeps `slow` quick."""
    app = create_app(
        make_settings(servers, wechat_api_base=fake_wechat.base_url, wechat_timeout_s=2.0),
        clock=clock,
        background=False,
    )
    async with http_client(app) as c:
        yield c, app.state.ctx


@pytest.fixture
async def wx_app(wx) -> tuple[httpx.AsyncClient, Any, int, str]:  # type: ignore[no-untyped-def]
    """A fresh tenant with a mini-program registered with the real `wechat` verifier."""
    c, ctx = wx
    slug = "wx" + secrets.token_hex(5)
    app_id = "wx" + secrets.token_hex(8)
    async with ctx.db.transaction() as conn:
        t = await tenancy.create_tenant(conn, slug, slug, DEFAULT_NOW)
        await tenancy.register_wechat_app(conn, t.id, app_id, APP_SECRET, "wechat", DEFAULT_NOW)
    return c, ctx, t.id, app_id


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code and err["message"]
    assert SESSION_KEY not in resp.text and APP_SECRET not in resp.text
    return err  # type: ignore[no-any-return]


async def _member_rows_text(ctx: Any, tenant_id: int) -> str:
    """Everything the database holds about this tenant's members and their events, as text."""
    async with ctx.db.connection() as conn:
        members = await conn.fetch("SELECT * FROM members WHERE tenant_id = $1", tenant_id)
        identities = await conn.fetch(
            "SELECT * FROM member_identities WHERE tenant_id = $1", tenant_id
        )
        events = await conn.fetch("SELECT * FROM outbox WHERE tenant_id = $1", tenant_id)
    return repr([dict(r) for r in [*members, *identities, *events]])


async def test_success_creates_member_with_openid_and_unionid(wx_app, fake_wechat):
    c, ctx, tenant_id, app_id = wx_app
    r = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "ok:o-alice:u-alice"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["isNewMember"] is True and body["accessToken"] and body["refreshToken"]
    assert SESSION_KEY not in r.text and "sessionKey" not in r.text
    call = fake_wechat.calls[-1]
    assert call == {
        "path": "/sns/jscode2session",
        "appid": app_id,
        "secret": APP_SECRET,
        "js_code": "ok:o-alice:u-alice",
        "grant_type": "authorization_code",
    }
    async with ctx.db.connection() as conn:
        ident = await conn.fetchrow(
            "SELECT member_id, subject, unionid FROM member_identities "
            "WHERE tenant_id = $1 AND app_id = $2",
            tenant_id,
            app_id,
        )
    assert ident["member_id"] == body["member"]["id"]
    assert (ident["subject"], ident["unionid"]) == ("o-alice", "u-alice")
    stored = await _member_rows_text(ctx, tenant_id)
    assert "o-alice" in stored and SESSION_KEY not in stored
    me = await c.get("/v1/me", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.status_code == 200 and me.json()["id"] == body["member"]["id"]
    # A fresh code for the same openid logs the same member in.
    again = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "ok:o-alice"})
    assert again.status_code == 200
    assert again.json()["member"]["id"] == body["member"]["id"]
    assert again.json()["isNewMember"] is False


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (40029, 400, "WECHAT_CODE_INVALID"),
        (45011, 429, "WECHAT_RATE_LIMITED"),
        (40226, 403, "WECHAT_USER_BLOCKED"),
        (40163, 400, "WECHAT_CODE_USED"),
        (-1, 503, "WECHAT_UNAVAILABLE"),
    ],
)
async def test_wechat_errcodes_map_to_clear_errors(wx_app, errcode, status, code):
    c, ctx, tenant_id, app_id = wx_app
    r = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": f"err:{errcode}"})
    err = _error(r, status, code)
    assert err["details"] == {"wechatErrcode": errcode}
    if status in (429, 503):
        assert r.headers["retry-after"]
    async with ctx.db.connection() as conn:
        n = await conn.fetchval("SELECT count(*) FROM members WHERE tenant_id = $1", tenant_id)
    assert n == 0


async def test_unknown_errcode_is_not_blamed_on_the_code(wx_app):
    """40013 (bad appid) or 40125 (bad secret) are our misconfiguration: a new code won't help."""
    c, _, _, app_id = wx_app
    r = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "err:40125"})
    err = _error(r, 503, "WECHAT_UNAVAILABLE")
    assert err["details"] == {"wechatErrcode": 40125}


@pytest.mark.parametrize("js_code", ["http500", "garbage"])
async def test_upstream_failure_is_503(wx_app, js_code):
    c, _, _, app_id = wx_app
    r = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": js_code})
    _error(r, 503, "WECHAT_UNAVAILABLE")
    assert r.headers["retry-after"]


async def test_timeout_is_503_within_the_configured_timeout(wx_app):
    c, _, _, app_id = wx_app
    started = time.perf_counter()
    r = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "slow"})
    elapsed = time.perf_counter() - started
    _error(r, 503, "WECHAT_UNAVAILABLE")
    # The timeout is 2 s (room for a loaded CI box to connect); the fake answers after 6 s.
    assert elapsed < 5.0, elapsed


async def test_failed_login_code_is_not_replayed(wx_app):
    """A failure must not be cached by the login replay: the same code may succeed next time."""
    c, _, _, app_id = wx_app
    r1 = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "http500"})
    r2 = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "http500"})
    assert r1.status_code == r2.status_code == 503


async def test_repeated_code_replays_instead_of_40163(wx_app, fake_wechat):
    c, _, _, app_id = wx_app
    body = {"appId": app_id, "code": "ok:o-replay"}
    r1 = await c.post("/v1/auth/wechat", json=body)
    calls = len(fake_wechat.calls)
    r2 = await c.post("/v1/auth/wechat", json=body)
    assert r1.status_code == r2.status_code == 200
    assert r1.json() == r2.json()
    assert len(fake_wechat.calls) == calls  # WeChat was not asked twice for one code


async def test_wechat_app_does_not_take_dev_codes(wx_app, fake_wechat):
    """A `wechat` app sends every code to WeChat; `dev:` is not a way around it."""
    c, _, _, app_id = wx_app
    r = await c.post("/v1/auth/wechat", json={"appId": app_id, "code": "dev:mallory"})
    _error(r, 400, "WECHAT_CODE_INVALID")
    assert fake_wechat.calls[-1]["js_code"] == "dev:mallory"
