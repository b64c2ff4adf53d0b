"""Brand events and rules: rewards, dedupe, caps, multipliers, conditions, reversal by event."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_foundation_api import assert_error
from tests.test_points_api import LADDER, db_balance, me_of

pytestmark = pytest.mark.asyncio

ORDER_RULE = {
    "eventType": "order.paid",
    "effect": {"kind": "credit", "currency": "points", "mode": "per_unit", "amount": 1, "unit": 1},
    "description": "1 point per yuan",
}
GROWTH_RULE = {
    "eventType": "referral.joined",
    "effect": {"kind": "credit", "currency": "growth", "mode": "fixed", "amount": 50},
}


def ev(
    event_id,
    ext,
    type_="order.paid",
    value=None,
    attributes=None,  # type: ignore[no-untyped-def]
    at="2026-11-23T03:00:00+08:00",
):
    body = {"eventId": event_id, "externalId": ext, "type": type_, "occurredAt": at}
    if value is not None:
        body["value"] = value
    if attributes is not None:
        body["attributes"] = attributes
    return body


async def put_rule(client, tenant, key, rule):  # type: ignore[no-untyped-def]
    r = await client.put(f"/admin/v1/rules/{key}", headers=tenant.admin, json=rule)
    assert r.status_code == 200, r.text
    return r.json()


async def test_order_paid_and_referral_rules_credit_once(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    await put_rule(client, tenant, "referral-growth", GROWTH_RULE)
    r = await client.post(
        "/admin/v1/events", headers=tenant.admin, json=ev("o-1", "cust-1", value=99.9)
    )
    body = r.json()
    assert r.status_code == 200 and body["applied"] == 1
    assert body["results"][0]["effects"][0]["amount"] == 99
    again = (
        await client.post(
            "/admin/v1/events", headers=tenant.admin, json=ev("o-1", "cust-1", value=99.9)
        )
    ).json()
    assert again["duplicates"] == 1 and again["results"][0]["status"] == "duplicate"
    await client.post(
        "/admin/v1/events",
        headers=tenant.admin,
        json=ev("ref-1", "cust-1", type_="referral.joined"),
    )
    me = await me_of(client, tenant, "cust-1")
    assert me["balances"] == {"points": 99, "growth": 50, "growthEarned": 50}
    async with ctx.db.connection() as conn:
        kinds = await conn.fetch(
            "SELECT type FROM outbox WHERE tenant_id=$1 AND type IN "
            "('member.event','points.credited','growth.credited') "
            "ORDER BY id",
            tenant.id,
        )
    assert sorted(k["type"] for k in kinds) == [
        "growth.credited",
        "member.event",
        "member.event",
        "points.credited",
    ]


async def test_batch_with_duplicates_unknown_members_and_future(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    await client.put(
        "/admin/v1/points/policy", headers=tenant.admin, json={"unknownMember": "reject"}
    )
    await tenant.member("known")
    batch = [
        ev("b-1", "known", value=10),
        ev("b-1", "known", value=10),  # repeated inside the batch
        ev("b-2", "stranger", value=10),
        ev("b-3", "known", value=5, at="2030-01-01T00:00:00+08:00"),
        ev("b-4", "known", value=7),
    ]
    body = (await client.post("/admin/v1/events", headers=tenant.admin, json=batch)).json()
    assert [r["status"] for r in body["results"]] == [
        "applied",
        "duplicate",
        "rejected",
        "rejected",
        "applied",
    ]
    assert body["results"][2]["error"]["code"] == "MEMBER_NOT_FOUND"
    assert body["results"][3]["error"]["code"] == "EVENT_IN_FUTURE"
    me = await me_of(client, tenant, "known")
    assert me["balances"]["points"] == 17
    # A single rejected event answers with the error's own status.
    assert_error(
        await client.post(
            "/admin/v1/events", headers=tenant.admin, json=ev("b-9", "stranger2", value=1)
        ),
        404,
        "MEMBER_NOT_FOUND",
    )


async def test_level_multiplier_and_daily_cap(tenant, client, clock):
    await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    await put_rule(client, tenant, "order-points", {**ORDER_RULE, "capPerMemberPerDay": 150})
    await put_rule(
        client,
        tenant,
        "referral-growth",
        {**GROWTH_RULE, "effect": {**GROWTH_RULE["effect"], "amount": 100}},
    )
    await client.post(
        "/admin/v1/events", headers=tenant.admin, json=ev("r-1", "vip", type_="referral.joined")
    )  # -> Silver (120%)
    b = (
        await client.post(
            "/admin/v1/events",
            headers=tenant.admin,
            json=[ev("c-1", "vip", value=100), ev("c-2", "vip", value=100)],
        )
    ).json()
    effects = [r["effects"][0] for r in b["results"]]
    assert [(e["amount"], e["capped"]) for e in effects] == [(120, False), (30, True)]
    # The next local day has a fresh cap (the cap's day is the event's day in Shanghai).
    clock.advance(hours=14)
    nxt = (
        await client.post(
            "/admin/v1/events",
            headers=tenant.admin,
            json=ev("c-3", "vip", value=100, at="2026-11-24T00:00:00+08:00"),
        )
    ).json()
    assert nxt["results"][0]["effects"][0]["amount"] == 120
    me = await me_of(client, tenant, "vip")
    assert me["balances"]["points"] == 270


async def test_conditions_and_window(tenant, client):
    rule = {
        **ORDER_RULE,
        "conditions": [
            {"attribute": "channel", "op": "eq", "value": "miniprogram"},
            {"attribute": "amountFen", "op": "gte", "value": 1000},
        ],
        "startsAt": "2026-11-01T00:00:00+08:00",
        "endsAt": "2026-12-01T00:00:00+08:00",
    }
    await put_rule(client, tenant, "mp-orders", rule)
    b = (
        await client.post(
            "/admin/v1/events",
            headers=tenant.admin,
            json=[
                ev("x-1", "c", value=10, attributes={"channel": "miniprogram", "amountFen": 1000}),
                ev("x-2", "c", value=10, attributes={"channel": "h5", "amountFen": 5000}),
                ev("x-3", "c", value=10, attributes={"channel": "miniprogram"}),
                ev(
                    "x-4",
                    "c",
                    value=10,
                    attributes={"channel": "miniprogram", "amountFen": 2000},
                    at="2026-10-31T23:59:59+08:00",
                ),
            ],
        )
    ).json()
    assert [len(r["effects"]) for r in b["results"]] == [1, 0, 0, 0]


async def test_rule_validation(tenant, client):
    impossible = {
        **ORDER_RULE,
        "conditions": [
            {"attribute": "amount", "op": "gt", "value": 10},
            {"attribute": "amount", "op": "lt", "value": 5},
            {"attribute": "tier", "op": "gte", "value": "gold"},
        ],
    }
    err = assert_error(
        await client.put("/admin/v1/rules/bad", headers=tenant.admin, json=impossible),
        422,
        "VALIDATION_FAILED",
    )
    assert len(err["details"]["problems"]) == 2
    unknown = {**ORDER_RULE, "bonus": 5}
    assert_error(
        await client.put("/admin/v1/rules/bad", headers=tenant.admin, json=unknown),
        422,
        "VALIDATION_FAILED",
    )
    bad_effect = {**ORDER_RULE, "effect": {"kind": "credit", "currency": "gold"}}
    assert_error(
        await client.put("/admin/v1/rules/bad", headers=tenant.admin, json=bad_effect),
        422,
        "VALIDATION_FAILED",
    )
    assert_error(
        await client.get("/admin/v1/rules/bad", headers=tenant.admin), 404, "RULE_NOT_FOUND"
    )
    assert (await client.get("/admin/v1/rules", headers=tenant.admin)).json() == []
    first = await put_rule(client, tenant, "ok", ORDER_RULE)
    second = await put_rule(client, tenant, "ok", {**ORDER_RULE, "state": "paused"})
    assert (first["version"], second["version"]) == (1, 2)


async def test_refund_event_reverses_the_order(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    await put_rule(
        client,
        tenant,
        "refund",
        {
            "eventType": "order.refunded",
            "effect": {"kind": "reverse", "originalEventIdAttribute": "orderEventId"},
        },
    )
    await client.post("/admin/v1/events", headers=tenant.admin, json=ev("p-1", "buyer", value=88))
    r = (
        await client.post(
            "/admin/v1/events",
            headers=tenant.admin,
            json=ev("rf-1", "buyer", type_="order.refunded", attributes={"orderEventId": "p-1"}),
        )
    ).json()
    assert r["results"][0]["effects"][0]["amount"] == -88
    mid, _ = await tenant.member("buyer")
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_concurrent_batches_with_overlapping_events_credit_once(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    batch = [ev(f"k-{i}", f"cust-{i % 5}", value=10) for i in range(50)]
    rs = await asyncio.gather(
        *[client.post("/admin/v1/events", headers=tenant.admin, json=batch) for _ in range(8)]
    )
    assert all(r.status_code in (200, 503) for r in rs), [r.text for r in rs]
    applied = sum(r.json()["applied"] for r in rs if r.status_code == 200)
    assert applied == 50
    async with ctx.db.connection() as conn:
        total = await conn.fetchval(
            "SELECT sum(delta) FROM ledger_entries WHERE tenant_id=$1", tenant.id
        )
    assert total == 500


async def test_other_tenant_cannot_read_rules(tenant, other_tenant, client):
    await put_rule(client, tenant, "secret-rule", ORDER_RULE)
    assert_error(
        await client.get("/admin/v1/rules/secret-rule", headers=other_tenant.admin),
        404,
        "RULE_NOT_FOUND",
    )


async def test_refund_before_its_order_is_rejected_then_applies_on_retry(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    await put_rule(
        client,
        tenant,
        "refund",
        {
            "eventType": "order.refunded",
            "effect": {"kind": "reverse", "originalEventIdAttribute": "orderEventId"},
        },
    )
    refund = ev("rf-9", "early", type_="order.refunded", attributes={"orderEventId": "p-9"})
    err = assert_error(
        await client.post("/admin/v1/events", headers=tenant.admin, json=refund),
        409,
        "ORIGINAL_EVENT_UNKNOWN",
    )
    assert err["details"] == {"originalEventId": "p-9"}
    await client.post("/admin/v1/events", headers=tenant.admin, json=ev("p-9", "early", value=50))
    again = (await client.post("/admin/v1/events", headers=tenant.admin, json=refund)).json()
    assert again["applied"] == 1 and again["results"][0]["effects"][0]["amount"] == -50
    mid, _ = await tenant.member("early")
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_a_runaway_value_is_clamped_not_overflowed(tenant, client, ctx):
    await put_rule(
        client,
        tenant,
        "order-points",
        {**ORDER_RULE, "effect": {**ORDER_RULE["effect"], "amount": 10_000_000, "unit": 0.001}},
    )
    b = (
        await client.post(
            "/admin/v1/events", headers=tenant.admin, json=ev("big-1", "whale", value=1e12)
        )
    ).json()
    eff = b["results"][0]["effects"][0]
    assert eff["amount"] == 100_000_000 and eff["capped"] is True
