"""Dependencies failing fails fast: Redis or PostgreSQL down gives 503 quickly, then recovers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest

from service.app import create_app
from tests.conftest import http_client, make_settings

pytestmark = pytest.mark.asyncio

# reliability.md promises "503 within a second"; 3 s leaves room for a loaded CI machine while
# still failing loudly on a hang (the default timeouts are 5 s and more).
FAST_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Forwarder:
    """A loopback TCP forwarder to a real server that a test can switch off and on.

    Off, its port is closed (connections are refused) and every open connection is cut, which is
    what a client sees when the server dies; on, it forwards to the real server again.
    """

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target  # (host, port) or a unix socket path
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.target, str):
            return await asyncio.open_unix_connection(self.target)
        return await asyncio.open_connection(*self.target)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None


def _redis_target(url: str) -> tuple[str, int] | str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return parts.hostname or "127.0.0.1", parts.port or 6379


def _pg_target(url: str) -> tuple[str, int] | str:
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname, parts.port or 5432
    # pgserver's DSN names a socket directory in the query (?host=/dir).
    sock_dir = parse_qs(parts.query)["host"][0]
    return f"{sock_dir}/.s.PGSQL.{parts.port or 5432}"


def _pg_via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    auth = f"{user}:{parts.password}@" if parts.password else f"{user}@"
    return urlunsplit(("postgresql", f"{auth}127.0.0.1:{port}", parts.path, "", ""))


async def timed(coro):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    resp = await coro
    return resp, time.perf_counter() - started


def assert_unavailable(resp, elapsed: float) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == 503, resp.text
    assert elapsed < FAST_S, f"took {elapsed:.2f}s"
    err = resp.json()["error"]
    assert err["code"] == "DEPENDENCY_UNAVAILABLE"
    assert err["message"]
    assert resp.headers.get("retry-after") == "1"
    return err


async def test_redis_closed_port_gives_fast_503(servers, clock, tenant):
    _, headers = await tenant.member("redis-down")
    app = create_app(
        make_settings(servers, redis_url=f"redis://127.0.0.1:{_free_port()}/0"),
        clock=clock,
        background=False,
    )
    async with http_client(app) as c:
        assert (await c.get("/health/live")).status_code == 200
        resp, elapsed = await timed(c.get("/v1/me", headers=headers))
        assert_unavailable(resp, elapsed)
        resp, elapsed = await timed(c.get("/health/ready"))
        err = assert_unavailable(resp, elapsed)
        assert err["details"] == {"postgresql": True, "redis": False}


async def test_redis_down_then_back_recovers_without_restart(servers, clock, tenant):
    member_id, headers = await tenant.member("redis-flaps")
    fwd = Forwarder(_redis_target(servers["redis_url"]))
    app = create_app(
        make_settings(servers, redis_url=f"redis://127.0.0.1:{fwd.port}/0"),
        clock=clock,
        background=False,
    )
    try:
        async with http_client(app) as c:
            assert_unavailable(*await timed(c.get("/v1/me", headers=headers)))
            await fwd.start()
            me = await c.get("/v1/me", headers=headers)
            assert me.status_code == 200 and me.json()["id"] == member_id
            assert (await c.get("/health/ready")).status_code == 200
            # Redis dies while the app holds connections to it.
            await fwd.stop()
            assert_unavailable(*await timed(c.get("/v1/me", headers=headers)))
            assert_unavailable(*await timed(c.get("/health/ready")))
            assert (await c.get("/health/live")).status_code == 200
            await fwd.start()
            assert (await c.get("/v1/me", headers=headers)).status_code == 200
    finally:
        await fwd.stop()


async def test_postgres_unreachable_at_start_then_recovers(servers, clock, tenant):
    member_id, headers = await tenant.member("pg-flaps")
    fwd = Forwarder(_pg_target(servers["database_url"]))
    app = create_app(
        make_settings(servers, database_url=_pg_via(servers["database_url"], fwd.port)),
        clock=clock,
        background=False,
    )
    try:
        # The process starts although PostgreSQL does not answer (the pool is created lazily).
        async with http_client(app) as c:
            assert (await c.get("/health/live")).status_code == 200
            resp, elapsed = await timed(c.get("/health/ready"))
            err = assert_unavailable(resp, elapsed)
            assert err["details"] == {"postgresql": False, "redis": True}
            assert_unavailable(*await timed(c.get("/v1/me", headers=headers)))
            login = c.post("/v1/auth/wechat", json={"appId": tenant.app_id, "code": "dev:pgdown"})
            assert_unavailable(*await timed(login))

            await fwd.start()
            me = await c.get("/v1/me", headers=headers)
            assert me.status_code == 200 and me.json()["id"] == member_id
            ready = await c.get("/health/ready")
            assert ready.status_code == 200 and ready.json()["postgresql"] is True

            # PostgreSQL dies under pooled connections, then comes back.
            await fwd.stop()
            assert_unavailable(*await timed(c.get("/v1/me", headers=headers)))
            assert_unavailable(*await timed(c.get("/health/ready")))
            await fwd.start()
            assert (await c.get("/v1/me", headers=headers)).status_code == 200
            assert (await c.get("/health/ready")).status_code == 200
    finally:
        await fwd.stop()
