"""The PostgreSQL pool: one per process, owned by the app lifespan; JSON via msgspec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
import structlog

from service.config import Settings
from service.core.errors import DependencyUnavailable

log = structlog.get_logger("engage.db")

Connection = asyncpg.Connection
Pool = asyncpg.Pool

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: _json_encode(v).decode(),
        decoder=_json_decode,
        schema="pg_catalog",
    )
    await conn.set_type_codec(
        "json",
        encoder=lambda v: _json_encode(v).decode(),
        decoder=_json_decode,
        schema="pg_catalog",
    )


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (a round trip on every request).

    Safe because no pooled connection carries session state: locks are transaction-scoped
    (pg_advisory_xact_lock), nothing LISTENs, no session settings or cursors are changed. The
    two session locks we take (migrations, the outbox dispatcher) use their own connections.
    A connection released inside a failed transaction is rolled back by asyncpg's transaction
    context manager before it gets here.
    """


async def create_pool(settings: Settings, dsn: str | None = None) -> asyncpg.Pool:
    """A pool that opens no connection to exist, then warms up if PostgreSQL answers.

    An unreachable PostgreSQL must not stop the process from starting: /health/live stays 200,
    /health/ready and every route that needs the database answer 503 DEPENDENCY_UNAVAILABLE,
    and the first request after PostgreSQL comes back connects again on its own. So the pool
    is created with no initial and no floor size (asyncpg would otherwise connect, and fail,
    inside create_pool), and ``db_pool_min`` connections are opened best effort afterwards.
    """
    pool = await asyncpg.create_pool(
        dsn or settings.database_url,
        init_size=0,
        min_size=0,
        max_size=settings.db_pool_max,
        command_timeout=settings.db_timeout_s,
        timeout=settings.db_timeout_s,
        init=init_connection,
        reset=_no_reset,
        # Statements are prepared per connection; a small cache keeps memory flat.
        max_cached_statement_lifetime=0,
        server_settings={"application_name": "engage", "timezone": "UTC"},
    )
    await _warm_up(pool, settings)
    return pool


async def _warm_up(pool: asyncpg.Pool, settings: Settings) -> None:
    """Open ``db_pool_min`` connections now so the first requests do not pay for them."""
    held: list[asyncpg.Connection] = []
    try:
        for _ in range(min(settings.db_pool_min, settings.db_pool_max)):
            held.append(await pool.acquire(timeout=settings.db_timeout_s))
    except Exception as exc:
        # Not fatal by design (see create_pool); readiness reports it until PostgreSQL answers.
        log.warning("postgresql unreachable at start-up; will connect on demand", error=repr(exc))
    finally:
        for conn in held:
            await pool.release(conn)


class Database:
    """Thin wrapper over the pool that turns connectivity failures into a 503 DomainError."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.timeout)
        except (
            TimeoutError,
            OSError,
            # (This tuple named a non-existent asyncpg class before, so evaluating it raised
            # AttributeError: a database outage answered 500 instead of 503.)
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
        ) as exc:
            raise DependencyUnavailable(details={"dependency": "postgresql"}) from exc
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside one transaction; committed when the block exits cleanly."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.connection() as conn:
                await conn.fetchval("SELECT 1", timeout=1.0)
            return True
        except Exception:
            return False
