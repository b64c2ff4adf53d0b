"""Idempotency-Key handling (IETF httpapi draft), stored in PostgreSQL with the effect itself.

The key row is written in the same transaction as the change, so a replay can never miss an
effect that was committed. A transaction-scoped advisory lock on (tenant, caller, key) tells a
concurrent retry that the first request is still running (409) instead of making it wait.
Failed requests (any DomainError) store nothing: the client may retry with the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

from service.core.constraints import problem, validation_failed
from service.core.errors import DomainError
from service.core.uow import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from service.core.context import Context

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: bytes
    replayed: bool


def fingerprint(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(method.encode())
    h.update(b"\0")
    h.update(path.encode())
    h.update(b"\0")
    h.update(body)
    return h.hexdigest()


def _lock_id(tenant_id: int, caller: str, key: str) -> int:
    digest = hashlib.blake2b(f"{tenant_id}\0{caller}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    # The draft sends the key as a structured-field string; accept it quoted or bare.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        # A malformed header is a validation mistake like any other: one code, one shape.
        raise validation_failed(
            [
                problem(
                    "header",
                    "Idempotency-Key",
                    "FORMAT_INVALID",
                    f"1-{MAX_KEY_LENGTH} printable characters",
                )
            ]
        )
    return key


async def claim(
    uow: UnitOfWork, *, tenant_id: int, caller: str, key: str, request_fingerprint: str
) -> Outcome | None:
    """Hold ``key`` for this transaction; the stored outcome if it was already answered.

    409 IDEMPOTENCY_IN_FLIGHT while another transaction holds the same key, 422
    IDEMPOTENCY_KEY_REUSED when the stored request had another fingerprint."""
    ctx = uow.ctx
    cutoff = ctx.clock.now() - timedelta(hours=ctx.settings.idempotency_ttl_h)
    # Two statements on purpose: the lookup must take its snapshot AFTER the lock is held,
    # or a holder committing in between would go unseen and the effect would run twice.
    locked = await uow.conn.fetchval(
        "SELECT pg_try_advisory_xact_lock($1)", _lock_id(tenant_id, caller, key)
    )
    if not locked:
        raise DomainError("IDEMPOTENCY_IN_FLIGHT", headers={"Retry-After": "1"})
    row = await uow.conn.fetchrow(
        "SELECT fingerprint, status_code, body FROM idempotency_keys "
        "WHERE tenant_id = $1 AND caller = $2 AND key = $3 AND created_at > $4",
        tenant_id,
        caller,
        key,
        cutoff,
    )
    if row is None:
        return None
    if row["fingerprint"] != request_fingerprint:
        raise DomainError("IDEMPOTENCY_KEY_REUSED")
    return Outcome(row["status_code"], bytes(row["body"]), True)


async def remember(
    uow: UnitOfWork,
    *,
    tenant_id: int,
    caller: str,
    key: str,
    request_fingerprint: str,
    status: int,
    body: bytes,
) -> None:
    """Store the answer in the transaction of the effect it describes."""
    await uow.conn.execute(
        "INSERT INTO idempotency_keys "
        "(tenant_id, caller, key, fingerprint, status_code, body, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (tenant_id, caller, key) DO UPDATE SET "
        "fingerprint = EXCLUDED.fingerprint, status_code = EXCLUDED.status_code, "
        "body = EXCLUDED.body, created_at = EXCLUDED.created_at",
        tenant_id,
        caller,
        key,
        request_fingerprint,
        status,
        body,
        uow.ctx.clock.now(),
    )


async def execute(
    ctx: Context,
    *,
    tenant_id: int,
    caller: str,
    key: str | None,
    request_fingerprint: str,
    run: Callable[[asyncpg.Connection], Awaitable[tuple[int, bytes]]],
) -> Outcome:
    """Run ``run`` in one unit of work, at most once per idempotency key."""
    async with unit_of_work(ctx) as uow:
        if key is not None:
            replay = await claim(
                uow,
                tenant_id=tenant_id,
                caller=caller,
                key=key,
                request_fingerprint=request_fingerprint,
            )
            if replay is not None:
                return replay
        status, body = await run(uow.conn)
        if key is not None:
            await remember(
                uow,
                tenant_id=tenant_id,
                caller=caller,
                key=key,
                request_fingerprint=request_fingerprint,
                status=status,
                body=body,
            )
        return Outcome(status, body, False)


async def purge(ctx: Context) -> int:
    cutoff = ctx.clock.now() - timedelta(hours=ctx.settings.idempotency_ttl_h)
    async with ctx.db.connection() as conn:
        status = await conn.execute("DELETE FROM idempotency_keys WHERE created_at < $1", cutoff)
    return int(status.split()[-1])
