"""The PostgreSQL pool: one per process, owned by the app lifespan; JSON via msgspec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec

from service.config import Settings
from service.core.errors import DependencyUnavailable

Connection = asyncpg.Connection
Pool = asyncpg.Pool

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


async def _init_connection(conn: asyncpg.Connection) -> None:
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


async def create_pool(settings: Settings, dsn: str | None = None) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn or settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=settings.db_timeout_s,
        timeout=settings.db_timeout_s,
        init=_init_connection,
        # Statements are prepared per connection; a small cache keeps memory flat.
        max_cached_statement_lifetime=0,
        server_settings={"application_name": "engage", "timezone": "UTC"},
    )


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
