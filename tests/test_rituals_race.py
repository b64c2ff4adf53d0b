"""Races of the ritual: concurrent completions get numbers 1..N once each and the gift once;
referrals reward once per invitee; codes used at the same instant never form a cycle."""

from __future__ import annotations

import asyncio

import pytest

from service.app import create_app
from service.core.rng import seeded_rng
from tests.badge_helpers import count
from tests.conftest import http_client, make_settings
from tests.ritual_helpers import COVENANT, put_ritual, ritual


@pytest.fixture
async def patient(servers, clock):  # type: ignore[no-untyped-def]
    """A client of an app whose requests may wait for a pooled connection (and a row lock)
    longer than the suite's default: every burst here queues on one tenant's counter row or
    one inviter's account, and a busy machine should test the outcome, not the pool's
    patience."""
    app = create_app(
        make_settings(servers, db_timeout_s=120.0, redis_timeout_s=120.0),
        clock=clock,
        rng=seeded_rng(7),
        background=False,
    )
    async with http_client(app) as c:
        yield c


ONE_STEP = ritual(steps=[COVENANT], gift={"points": 100, "growth": 10})
ACCEPT = {"accept": True, "covenantVersion": "v1"}


async def test_200_concurrent_completions_numbers_without_gap_or_duplicate(
    tenant, client, ctx, patient
):
    await put_ritual(client, tenant, ONE_STEP)
    # Two numbers reserved in the middle: the sequence skips them.
    for body in ({"from": 50}, {"from": 120, "to": 121}):
        r = await client.post(
            "/admin/v1/member-numbers/reservations", json=body, headers=tenant.admin
        )
        assert r.status_code == 200, r.text
    heads = [await tenant.login(f"race-{i}") for i in range(200)]

    async def finish(h: dict[str, str]) -> int:
        r = await patient.post("/v1/ritual/steps/covenant", json=ACCEPT, headers=h)
        assert r.status_code == 200, r.text
        return int(r.json()["memberNo"])

    got = await asyncio.gather(*(finish(h) for h in heads))
    # Completing again (a retrying phone, another device) changes nothing.
    again = await asyncio.gather(*(finish(h) for h in heads[:50] + heads[:50]))
    assert again == got[:50] + got[:50]
    expected = [n for n in range(1, 204) if n not in (50, 120, 121)]
    assert sorted(got) == expected
    async with ctx.db.connection() as conn:
        numbers = await conn.fetch(
            "SELECT member_no FROM members WHERE tenant_id = $1 AND member_no IS NOT NULL",
            tenant.id,
        )
    assert sorted(r["member_no"] for r in numbers) == expected
    for currency, amount in (("points", 100), ("growth", 10)):
        assert (
            await count(
                ctx,
                "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 "
                "AND reason = 'ritual:welcome' AND currency = $2 AND delta = $3",
                tenant.id,
                currency,
                amount,
            )
            == 200
        )
    for type_ in ("ritual.completed", "member.joined"):
        assert (
            await count(
                ctx,
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = $2 "
                "AND payload->>'memberNo' IS NOT NULL",
                tenant.id,
                type_,
            )
            == 200
        )
    listing = (
        await client.get("/admin/v1/member-numbers/reservations", headers=tenant.admin)
    ).json()
    assert listing["nextNumber"] == 204


async def test_referral_rewarded_once_per_invitee_under_concurrency(tenant, client, ctx, patient):
    await put_ritual(client, tenant, ONE_STEP)
    r = await client.put(
        "/admin/v1/rules/invite",
        headers=tenant.admin,
        json={
            "eventType": "referral.joined",
            "effect": {"kind": "credit", "currency": "points", "amount": 30},
            "conditions": [{"attribute": "role", "op": "eq", "value": "inviter"}],
        },
    )
    assert r.status_code == 200
    r = await client.put(
        "/admin/v1/rules/invited",
        headers=tenant.admin,
        json={
            "eventType": "referral.joined",
            "effect": {"kind": "credit", "currency": "points", "amount": 7},
            "conditions": [{"attribute": "role", "op": "eq", "value": "invitee"}],
        },
    )
    assert r.status_code == 200
    host = await tenant.login("host")
    code = (await client.get("/v1/me/invitations", headers=host)).json()["code"]
    guests = []
    for i in range(20):
        r = await client.post(
            "/v1/auth/wechat",
            json={"appId": tenant.app_id, "code": f"dev:guest-{i}", "inviteCode": code},
        )
        assert r.json()["invitation"]["status"] == "recorded", r.text
        guests.append({"Authorization": f"Bearer {r.json()['accessToken']}"})

    async def finish(h: dict[str, str]) -> None:
        r = await patient.post("/v1/ritual/steps/covenant", json=ACCEPT, headers=h)
        assert r.status_code == 200, r.text

    await asyncio.gather(*(finish(h) for h in guests * 5))
    inv = (await client.get("/v1/me/invitations", headers=host)).json()
    assert (inv["invited"], inv["joined"], inv["rewardsPoints"]) == (20, 20, 600)
    me = (await client.get("/v1/me", headers=host)).json()
    assert me["balances"]["points"] == 600  # the host never completed the ritual: no gift
    for g in guests:
        assert (await client.get("/v1/me", headers=g)).json()["balances"]["points"] == 107
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'referral.joined'",
            tenant.id,
        )
        == 20
    )


async def test_referral_edge_cases(tenant, client, ctx):
    await put_ritual(client, tenant, ONE_STEP)
    a = await tenant.login("ref-a")
    code_a = (await client.get("/v1/me/invitations", headers=a)).json()["code"]
    b = await tenant.login("ref-b")
    code_b = (await client.get("/v1/me/invitations", headers=b)).json()["code"]
    c = await tenant.login("ref-c")
    code_c = (await client.get("/v1/me/invitations", headers=c)).json()["code"]

    async def use(h: dict[str, str], code: str) -> tuple[int, str | None]:
        r = await client.post("/v1/me/inviter", json={"code": code}, headers=h)
        err = r.json().get("error") if r.status_code != 200 else None
        return r.status_code, err["details"]["reason"] if err else r.json()["status"]

    assert await use(a, code_a) == (422, "self")
    assert await use(a, "ZZZZZZZZ") == (422, "unknown")
    assert await use(b, code_a) == (200, "recorded")  # A invites B
    assert await use(b, code_a) == (200, "alreadyRecorded")
    assert await use(b, code_c) == (422, "alreadyReferred")  # a second code
    assert await use(a, code_b) == (422, "cycle")  # B's code used by A
    assert await use(c, "inv=" + code_b.lower()) == (200, "recorded")  # scene form, B invites C
    assert await use(a, code_c) == (422, "cycle")  # A -> B -> C -> A
    # An existing member (completed the ritual) cannot be referred afterwards.
    d = await tenant.login("ref-d")
    r = await client.post("/v1/ritual/steps/covenant", json=ACCEPT, headers=d)
    assert r.status_code == 200
    assert await use(d, code_a) == (422, "alreadyMember")
    # A login with an unknown code still succeeds; the outcome says why it did not count.
    r = await client.post(
        "/v1/auth/wechat",
        json={"appId": tenant.app_id, "code": "dev:ref-e", "inviteCode": "NOPE2345"},
    )
    assert r.status_code == 200
    assert r.json()["invitation"]["status"] == "rejected"
    assert r.json()["invitation"]["error"]["code"] == "INVITE_CODE_INVALID"
    assert await count(ctx, "SELECT count(*) FROM referrals WHERE tenant_id = $1", tenant.id) == 2


async def test_codes_used_at_the_same_instant_never_form_a_cycle(tenant, client, ctx):
    await put_ritual(client, tenant, ONE_STEP)
    pairs = []
    for i in range(10):
        x = await tenant.login(f"cyc-x{i}")
        y = await tenant.login(f"cyc-y{i}")
        cx = (await client.get("/v1/me/invitations", headers=x)).json()["code"]
        cy = (await client.get("/v1/me/invitations", headers=y)).json()["code"]
        pairs += [(x, cy), (y, cx)]
    rs = await asyncio.gather(
        *(client.post("/v1/me/inviter", json={"code": code}, headers=h) for h, code in pairs)
    )
    assert sorted(r.status_code for r in rs) == [200] * 10 + [422] * 10
    async with ctx.db.connection() as conn:
        mutual = await conn.fetchval(
            "SELECT count(*) FROM referrals a JOIN referrals b ON a.inviter_id = b.invitee_id "
            "AND a.invitee_id = b.inviter_id WHERE a.tenant_id = $1",
            tenant.id,
        )
    assert mutual == 0


async def test_daily_limit_per_inviter_and_first_order_trigger(tenant, client, ctx):
    from tests.badge_helpers import deliver

    await put_ritual(
        client,
        tenant,
        {**ONE_STEP, "referral": {"trigger": "firstOrder", "dailyLimitPerInviter": 1}},
    )
    r = await client.put(
        "/admin/v1/rules/invite",
        headers=tenant.admin,
        json={
            "eventType": "referral.joined",
            "effect": {"kind": "credit", "currency": "points", "amount": 30},
            "conditions": [{"attribute": "role", "op": "eq", "value": "inviter"}],
        },
    )
    assert r.status_code == 200
    _, host = await tenant.member("host-ext")
    code = (await client.get("/v1/me/invitations", headers=host)).json()["code"]
    for ext in ("g1", "g2"):
        r = await client.post(
            f"/admin/v1/members/{ext}/token", json={"inviteCode": code}, headers=tenant.admin
        )
        assert r.json()["invitation"]["status"] == "recorded", r.text
        h = {"Authorization": f"Bearer {r.json()['accessToken']}"}
        r = await client.post("/v1/ritual/steps/covenant", json=ACCEPT, headers=h)
        assert r.status_code == 200
    # Completing the ritual does not count under the firstOrder trigger.
    inv = (await client.get("/v1/me/invitations", headers=host)).json()
    assert inv["joined"] == 0
    events = [
        {
            "eventId": f"o-{ext}-{n}",
            "externalId": ext,
            "type": "order.paid",
            "occurredAt": "2026-11-23T11:00:00+08:00",
            "value": 10,
        }
        for ext in ("g1", "g2")
        for n in (1, 2)
    ]
    r = await client.post("/admin/v1/events", json=events, headers=tenant.admin)
    assert r.status_code == 200, r.text
    await deliver(ctx)
    await ctx.dispatcher.drain(ctx)
    inv = (await client.get("/v1/me/invitations", headers=host)).json()
    states = sorted(i["state"] for i in inv["invitees"])
    assert states == ["capped", "joined"]  # one per day for this inviter
    assert inv["rewardsPoints"] == 30
    assert (await client.get("/v1/me", headers=host)).json()["balances"]["points"] == 30


async def test_hand_assignment_racing_completion_never_leaves_a_gap_or_two_numbers(
    tenant, client, ctx, patient
):
    """An operator giving a reserved number while the member finishes the ritual: the member
    ends with ONE number (the hand-given one if it won, else the sequence's), the completion
    answer names the number the member holds, and the sequence has no gap."""
    await put_ritual(client, tenant, ONE_STEP)
    r = await client.post(
        "/admin/v1/member-numbers/reservations",
        json={"from": 9000, "to": 9100},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    members = [await tenant.member(f"hand-{i}") for i in range(20)]

    async def finish(h: dict[str, str]) -> int:
        r = await patient.post("/v1/ritual/steps/covenant", json=ACCEPT, headers=h)
        assert r.status_code == 200, r.text
        return int(r.json()["memberNo"])

    async def assign(i: int) -> int:
        r = await patient.post(
            f"/admin/v1/members/hand-{i}/member-number",
            json={"number": 9000 + i},
            headers=tenant.admin,
        )
        assert r.status_code in (200, 409), r.text
        return r.status_code

    results = await asyncio.gather(
        *(finish(h) for _, h in members), *(assign(i) for i in range(len(members)))
    )
    answered, statuses = results[: len(members)], results[len(members) :]
    async with ctx.db.connection() as conn:
        held = {
            r["external_id"]: r["member_no"]
            for r in await conn.fetch(
                "SELECT external_id, member_no FROM members WHERE tenant_id = $1 "
                "AND external_id LIKE 'hand-%'",
                tenant.id,
            )
        }
    for i, n in enumerate(answered):
        assert held[f"hand-{i}"] == n  # the answer names the number the member holds
        assert (n == 9000 + i) == (statuses[i] == 200)  # hand-given exactly when assign won
    sequence = sorted(n for n in held.values() if n < 9000)
    assert sequence == list(range(1, len(sequence) + 1))  # no gap in the sequence
