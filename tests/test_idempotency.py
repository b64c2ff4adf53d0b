"""Idempotency-Key: replay, 422 on a different body, 409 in flight, one effect under races."""

from __future__ import annotations

import asyncio

import pytest

from service.core import idempotency, outbox
from service.core.errors import DomainError
from tests.conftest import DEFAULT_NOW

pytestmark = pytest.mark.asyncio


async def test_fifty_concurrent_identical_requests_make_one_effect(ctx, tenant):
    async def run(conn):  # type: ignore[no-untyped-def]
        await outbox.emit(conn, tenant_id=tenant.id, type="test.effect", occurred_at=DEFAULT_NOW)
        await asyncio.sleep(0.05)  # hold the transaction so the others really overlap
        return 200, b'{"ok":true}'

    async def call():  # type: ignore[no-untyped-def]
        try:
            return await idempotency.execute(
                ctx, tenant_id=tenant.id, caller="m:1", key="k-1", request_fingerprint="fp", run=run
            )
        except DomainError as e:
            return e.code

    results = await asyncio.gather(*[call() for _ in range(50)])
    assert set(r for r in results if isinstance(r, str)) <= {"IDEMPOTENCY_IN_FLIGHT"}
    # Retry the ones told "in flight", as a client would: they now replay.
    again = await asyncio.gather(*[call() for r in results if isinstance(r, str)])
    outcomes = [r for r in [*results, *again] if not isinstance(r, str)]
    assert sum(not o.replayed for o in outcomes) == 1
    assert all(o.body == b'{"ok":true}' for o in outcomes)
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'test.effect'", tenant.id
        )
    assert n == 1


async def test_keys_are_scoped_per_caller_and_tenant(ctx, tenant, other_tenant):
    calls = []

    async def run(conn):  # type: ignore[no-untyped-def]
        calls.append(1)
        return 200, b"{}"

    for t, caller in [(tenant.id, "m:1"), (tenant.id, "m:2"), (other_tenant.id, "m:1")]:
        out = await idempotency.execute(
            ctx, tenant_id=t, caller=caller, key="same", request_fingerprint="fp", run=run
        )
        assert not out.replayed
    assert len(calls) == 3


async def test_failed_request_stores_nothing_and_can_be_retried(ctx, tenant):
    async def fail(conn):  # type: ignore[no-untyped-def]
        await outbox.emit(conn, tenant_id=tenant.id, type="test.fail", occurred_at=DEFAULT_NOW)
        raise DomainError("CONFLICT")

    with pytest.raises(DomainError):
        await idempotency.execute(
            ctx, tenant_id=tenant.id, caller="m:1", key="f", request_fingerprint="fp", run=fail
        )

    async def ok(conn):  # type: ignore[no-untyped-def]
        return 201, b"{}"

    out = await idempotency.execute(
        ctx, tenant_id=tenant.id, caller="m:1", key="f", request_fingerprint="fp", run=ok
    )
    assert out.status == 201 and not out.replayed
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'test.fail'", tenant.id
        )
    assert n == 0


async def test_http_replay_and_mismatch(tenant, client):
    headers = {**(await tenant.login("idem")), "Idempotency-Key": "abc-123"}
    r1 = await client.patch("/v1/me", json={"nickname": "Alice"}, headers=headers)
    r2 = await client.patch("/v1/me", json={"nickname": "Alice"}, headers=headers)
    assert r1.status_code == r2.status_code == 200
    assert r1.content == r2.content
    assert r2.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in r1.headers
    r3 = await client.patch("/v1/me", json={"nickname": "Bob"}, headers=headers)
    assert r3.status_code == 422 and r3.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    me = await client.get("/v1/me", headers=headers)
    assert me.json()["nickname"] == "Alice"
    bad = await client.patch(
        "/v1/me", json={"nickname": "C"}, headers={**headers, "Idempotency-Key": "x" * 300}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_FAILED"
    assert [(p["source"], p["path"]) for p in bad.json()["error"]["details"]["problems"]] == [
        ("header", "Idempotency-Key")
    ]


async def test_records_are_kept_at_least_a_day_then_purged(ctx, tenant, clock):
    async def run(conn):  # type: ignore[no-untyped-def]
        return 200, b"{}"

    await idempotency.execute(
        ctx, tenant_id=tenant.id, caller="m:9", key="old", request_fingerprint="fp", run=run
    )
    clock.advance(hours=24)
    out = await idempotency.execute(
        ctx, tenant_id=tenant.id, caller="m:9", key="old", request_fingerprint="fp", run=run
    )
    assert out.replayed
    clock.advance(hours=ctx.settings.idempotency_ttl_h)
    await idempotency.purge(ctx)
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1 AND key = 'old'", tenant.id
        )
    assert n == 0
