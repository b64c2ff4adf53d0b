"""Webhooks out: Standard Webhooks signatures verified by the library on a loopback receiver,
at-least-once delivery in commit order per member through a failing receiver, backoff,
disabling, redelivery, test events, SSRF refusals, and the issue's "done when" flow."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.core import outbox
from service.core.clock import SystemClock
from service.webhooks import rules
from service.webhooks import service as webhooks
from tests.loopback import Received, Receiver
from tests.test_foundation_api import assert_error
from tests.wheel_helpers import prize, put_wheel, wheel_config

pytestmark = pytest.mark.asyncio


def verifying(secret_box: dict[str, str], accepted: list[Received], fail: list[bool]):  # type: ignore[no-untyped-def]
    """A receiver rule that verifies with the library (wall-clock tolerance) and answers 500
    while ``fail[0]`` is set."""

    def rule(r: Received) -> tuple[int, bytes]:
        if fail[0]:
            return 500, b'{"error": "down"}'
        try:
            Webhook(secret_box["secret"]).verify(r.body, r.headers)
        except WebhookVerificationError:
            return 401, b"bad signature"
        accepted.append(r)
        return 204, b""

    return rule


def signed_by(secret: str, r: Received) -> bool:
    """The library's own signing, compared without the timestamp window (tests move time)."""
    ts = datetime.fromtimestamp(int(r.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(r.headers["webhook-id"], ts, r.body.decode())
    return expected in r.headers["webhook-signature"].split(" ")


async def put_hook(client, tenant, key, url, types, **kw):  # type: ignore[no-untyped-def]
    r = await client.put(
        f"/admin/v1/webhooks/{key}",
        headers=tenant.admin,
        json={"url": url, "eventTypes": types, **kw},
    )
    assert r.status_code == 200, r.text
    return r.json()


async def emit(ctx, tenant_id, type_, member_id, **payload):  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as conn:
        return await outbox.emit(
            conn,
            tenant_id=tenant_id,
            type=type_,
            member_id=member_id,
            payload=payload,
            occurred_at=ctx.clock.now(),
        )


async def pump(ctx) -> int:  # type: ignore[no-untyped-def]
    """What `serve` does in the background: dispatch the outbox, then send what is due.

    The dispatcher only hands over events older than every open transaction of the
    PostgreSQL cluster (other suites may share it), so wait until it has caught up."""
    await ctx.dispatcher.drain(ctx, settle_s=60)
    return await webhooks.deliver_due(ctx)


@pytest.fixture(autouse=True)
async def _no_leftover_deliveries(ctx):  # type: ignore[no-untyped-def]
    """Receivers reuse loopback ports: a test's unsent deliveries must not reach the next
    test's receiver."""
    yield
    async with ctx.db.connection() as conn:
        await conn.execute("UPDATE webhooks SET enabled = false WHERE enabled")


def wall_clock(clock) -> None:  # type: ignore[no-untyped-def]
    # The library's verifier checks webhook-timestamp against the wall clock (5 minutes).
    clock.set(datetime.now(UTC).replace(microsecond=0))


async def test_signature_verifies_with_the_library_on_a_loopback_receiver(
    client, tenant, ctx, clock
):
    wall_clock(clock)
    box: dict[str, str] = {}
    accepted: list[Received] = []
    rx = Receiver(verifying(box, accepted, [False])).start()
    try:
        out = await put_hook(client, tenant, "crm", rx.url + "/hook", ["prize.*"])
        assert out["secret"].startswith("whsec_") and out["enabled"] is True
        box["secret"] = out["secret"]
        # The secret is shown once: never again.
        got = (await client.get("/admin/v1/webhooks/crm", headers=tenant.admin)).json()
        assert "secret" not in got
        mid, _ = await tenant.member("sig")
        eid = await emit(ctx, tenant.id, "prize.won", mid, prizeKey="p1")
        await emit(ctx, tenant.id, "points.credited", mid, amount=5)  # not subscribed
        await pump(ctx)
        assert len(accepted) == 1
        body = accepted[0].json()
        assert body["type"] == "prize.won" and body["data"]["eventId"] == str(eid)
        assert body["data"]["memberId"] == mid and body["data"]["prizeKey"] == "p1"
        # Trial 11 F11: the brand's own member id rides along, so its CRM can match it.
        assert body["data"]["externalId"] == "sig"
        assert accepted[0].headers["webhook-id"] == "msg_" + eid.hex
        # A receiver with another secret rejects it: the signature really binds the secret.
        with pytest.raises(WebhookVerificationError):
            Webhook(rules.new_secret(random.Random(7))).verify(
                accepted[0].body, accepted[0].headers
            )
        # A tampered body fails the library's verifier too.
        with pytest.raises(WebhookVerificationError):
            Webhook(box["secret"]).verify(accepted[0].body + b" ", accepted[0].headers)
        log = (await client.get("/admin/v1/webhooks/crm/deliveries", headers=tenant.admin)).json()
        [entry] = log["items"]
        assert entry["status"] == "delivered" and entry["attempts"] == 1
        assert entry["lastStatusCode"] == 204 and entry["latencyMs"] >= 0
    finally:
        rx.stop()


async def test_the_timestamp_header_is_the_wall_clock_under_a_shifted_dev_clock(ctx, monkeypatch):
    """Trial 11 F3: with the dev clock 20 days ahead, a real receiver still accepts it."""
    monkeypatch.setattr(ctx, "clock", SystemClock(timedelta(days=20)))
    secret = rules.new_secret(random.Random(3))
    accepted: list[Received] = []
    rx = Receiver(verifying({"secret": secret}, accepted, [False])).start()
    try:
        attempt = await webhooks.send(ctx, rx.url + "/hook", secret, "msg_clock", '{"a":1}')
    finally:
        rx.stop()
    assert attempt.ok and attempt.status_code == 204, attempt
    assert len(accepted) == 1


async def test_failing_then_recovering_receiver_gets_every_event_in_member_order(
    client, tenant, ctx, clock
):
    fail = [True]
    accepted: list[Received] = []
    box: dict[str, str] = {}

    def rule(r: Received) -> tuple[int, bytes]:
        if fail[0]:
            return 503, b"down"
        assert signed_by(box["secret"], r)
        accepted.append(r)
        return 200, b"ok"

    rx = Receiver(rule).start()
    try:
        out = await put_hook(client, tenant, "ord", rx.url, ["points.*"])
        box["secret"] = out["secret"]
        members = [(await tenant.member(f"ord{i}"))[0] for i in range(3)]
        expected: dict[int, list[str]] = defaultdict(list)
        for round_ in range(4):
            for m in members:
                eid = await emit(ctx, tenant.id, "points.credited", m, n=round_)
                expected[m].append("msg_" + eid.hex)
        await pump(ctx)
        # Down: one attempt per member's head event, later ones held back behind it.
        assert len(rx.requests) == 3 and not accepted
        log = (await client.get("/admin/v1/webhooks/ord/deliveries", headers=tenant.admin)).json()
        heads = [d for d in log["items"] if d["attempts"]]
        assert {d["lastError"] for d in heads} == {"HTTP 503"}
        assert all(d["status"] == "pending" for d in log["items"])
        # Retried with growing, jittered delays while down; nothing is due before its time.
        first_due = min(datetime.fromisoformat(d["nextAttemptAt"]) for d in heads)
        assert rules.BASE_S / 2 <= (first_due - clock.now()).total_seconds() <= rules.BASE_S
        assert await webhooks.deliver_due(ctx) == 0
        for _ in range(3):
            clock.advance(hours=1)
            await pump(ctx)
        assert len(rx.requests) == 12 and not accepted
        fail[0] = False
        clock.advance(hours=3)
        for _ in range(10):
            await pump(ctx)
        got: dict[int, list[str]] = defaultdict(list)
        for r in accepted:
            got[r.json()["data"]["memberId"]].append(r.headers["webhook-id"])
        assert got == expected  # every event, once, in commit order per member
        async with ctx.db.connection() as conn:
            states = await conn.fetch(
                "SELECT status, count(*) FROM webhook_deliveries WHERE tenant_id = $1 "
                "GROUP BY status",
                tenant.id,
            )
        assert {r["status"]: r["count"] for r in states} == {"delivered": 12}
        hook = (await client.get("/admin/v1/webhooks/ord", headers=tenant.admin)).json()
        assert hook["consecutiveFailures"] == 0 and hook["enabled"]
        # Manual redelivery sends the same webhook-id and body again (at least once).
        first = log["items"][-1]
        r = await client.post(
            f"/admin/v1/webhooks/ord/deliveries/{first['id']}/redeliver", headers=tenant.admin
        )
        assert r.status_code == 200 and r.json()["status"] == "pending"
        before = len(accepted)
        await pump(ctx)
        assert len(accepted) == before + 1
        assert accepted[-1].headers["webhook-id"] == first["webhookId"]
        assert accepted[-1].body == next(
            a.body for a in accepted if a.headers["webhook-id"] == first["webhookId"]
        )
        r = await client.post(
            "/admin/v1/webhooks/ord/deliveries/999999999/redeliver", headers=tenant.admin
        )
        assert_error(r, 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    finally:
        rx.stop()


async def test_the_dispatcher_handing_events_over_twice_queues_them_once(client, tenant, ctx):
    rx = Receiver().start()
    try:
        await put_hook(client, tenant, "dup", rx.url, ["level.*"])
        mid, _ = await tenant.member("dup")
        eid = await emit(ctx, tenant.id, "level.up", mid, level=2)
        await ctx.dispatcher.drain(ctx, settle_s=60)
        async with ctx.db.connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, event_id, tenant_id, type, member_id, payload, occurred_at "
                "FROM outbox WHERE event_id = $1",
                eid,
            )
        ev = outbox.Event(*row)
        await asyncio.gather(*(webhooks.on_events(ctx, [ev]) for _ in range(5)))
        await webhooks.deliver_due(ctx)
        assert [r.headers["webhook-id"] for r in rx.requests] == ["msg_" + eid.hex]
    finally:
        rx.stop()


async def test_a_long_run_of_failures_disables_the_endpoint_with_the_reason(
    client, tenant, ctx, clock
):
    rx = Receiver(lambda r: (500, b"boom")).start()
    try:
        await put_hook(client, tenant, "dead", rx.url, ["*"])
        policy = webhooks.disable_policy(ctx)
        for i in range(40):
            mid, _ = await tenant.member(f"dead{i}")
            await emit(ctx, tenant.id, "checkin.done", mid)
            await pump(ctx)
            clock.advance(hours=1)
            hook = (await client.get("/admin/v1/webhooks/dead", headers=tenant.admin)).json()
            if not hook["enabled"]:
                break
        assert not hook["enabled"]
        assert hook["consecutiveFailures"] >= policy.min_failures
        assert "failed attempts in a row" in hook["disabledReason"]
        assert "HTTP 500" in hook["disabledReason"]
        assert i + 1 >= policy.after.total_seconds() / 3600  # not before the run is long
        # Disabled: nothing more is sent, new events are not queued.
        sent = len(rx.requests)
        clock.advance(hours=5)
        await emit(ctx, tenant.id, "checkin.done", mid)
        await pump(ctx)
        assert len(rx.requests) == sent
        # The test event still goes out (to check a fix) and does not change the health.
        r = await client.post("/admin/v1/webhooks/dead/test", headers=tenant.admin)
        assert r.status_code == 200 and r.json()["status"] == "failed"
        assert r.json()["lastStatusCode"] == 500
        # Fixed and re-enabled: the held-back deliveries go out.
        rx.rule = lambda r: (200, b"ok")
        await put_hook(client, tenant, "dead", rx.url, ["*"], enabled=True)
        hook = (await client.get("/admin/v1/webhooks/dead", headers=tenant.admin)).json()
        assert hook["enabled"] and hook.get("disabledReason") is None
        await pump(ctx)
        async with ctx.db.connection() as conn:
            pending = await conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 "
                "AND status = 'pending'",
                tenant.id,
            )
        assert pending == 0
    finally:
        rx.stop()


async def test_retry_schedule_backs_off_for_hours_with_jitter():
    rng = random.Random(3)
    delays = [rules.retry_delay(n, rng).total_seconds() for n in range(1, rules.MAX_ATTEMPTS)]
    assert all(
        rules.BASE_S * 2 ** (n - 1) / 2 <= d <= rules.BASE_S * 2 ** (n - 1)
        for n, d in enumerate(delays[:6], 1)
    )
    assert max(delays) <= rules.CAP_S
    assert 10 * 3600 <= sum(delays) <= 17 * 3600
    # Jitter: two endpoints failing together do not retry in lockstep.
    other = [rules.retry_delay(n, random.Random(4)).total_seconds() for n in range(1, 6)]
    assert other != delays[:5]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "2002:7f00:0001::1",
        # Trial 11 F7: IPv6 forms that embed a private IPv4 address are judged by it.
        "64:ff9b::a00:1",  # NAT64 -> 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:1",  # local-use NAT64
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:a00:1",  # IPv4-translated
        "2002:a00:1::1",  # 6to4 -> 10.0.0.1
        "192.0.0.8",  # IETF protocol assignments (not global, whatever the Python patch level)
        "fec0::1",  # site-local
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address):
    assert rules.address_problem(address) is not None


def test_public_addresses_are_allowed():
    assert rules.address_problem("8.8.8.8") is None
    assert rules.address_problem("2001:4860:4860::8888") is None
    assert rules.address_problem("64:ff9b::808:808") is None  # NAT64 of 8.8.8.8
    assert rules.address_problem("2002:808:808::1") is None  # 6to4 of 8.8.8.8


async def test_ipv4_embedding_targets_are_refused_on_save_and_at_send(
    client, tenant, ctx, monkeypatch
):
    strict = ctx.settings.__class__(**{**_fields(ctx.settings), "webhook_allow_private": False})
    monkeypatch.setattr(ctx, "settings", strict)
    for url in ("http://[64:ff9b::a00:1]/", "http://[::127.0.0.1]:8190/"):
        r = await client.put(
            "/admin/v1/webhooks/fz", headers=tenant.admin, json={"url": url, "eventTypes": ["*"]}
        )
        err = assert_error(r, 422, "VALIDATION_FAILED")
        assert [p["code"] for p in err["details"]["problems"]] == ["TARGET_NOT_PUBLIC"]
        attempt = await webhooks.send(ctx, url, rules.new_secret(random.Random(1)), "msg_1", "{}")
        assert not attempt.ok and attempt.error and attempt.error.startswith("target refused")
    assert (await client.get("/admin/v1/webhooks/fz", headers=tenant.admin)).status_code == 404


async def test_ssrf_targets_are_refused_on_save_and_at_send_time(client, tenant, ctx, monkeypatch):
    strict = ctx.settings.__class__(**{**_fields(ctx.settings), "webhook_allow_private": False})
    monkeypatch.setattr(ctx, "settings", strict)
    for url in ("http://127.0.0.1:8190/x", "http://[::1]/x", "http://169.254.169.254/latest"):
        r = await client.put(
            "/admin/v1/webhooks/ssrf", headers=tenant.admin, json={"url": url, "eventTypes": ["*"]}
        )
        err = assert_error(r, 422, "VALIDATION_FAILED")
        assert err["details"]["problems"][0]["code"] == "TARGET_NOT_PUBLIC"
    r = await client.put(
        "/admin/v1/webhooks/ssrf",
        headers=tenant.admin,
        json={"url": "ftp://example.com/x", "eventTypes": ["bad type"], "secret": "nope"},
    )
    assert r.status_code in (400, 422)
    assert (await client.get("/admin/v1/webhooks/ssrf", headers=tenant.admin)).status_code == 404

    # A name that resolves to loopback at send time (DNS changed after saving) is not sent to.
    async def fake_resolve(host, port, limit_s):  # type: ignore[no-untyped-def]
        return ["127.0.0.1"]

    monkeypatch.setattr(webhooks, "resolve", fake_resolve)
    r = await client.put(
        "/admin/v1/webhooks/ssrf",
        headers=tenant.admin,
        json={"url": "https://hooks.example.com/x", "eventTypes": ["*"]},
    )
    err = assert_error(r, 422, "VALIDATION_FAILED")
    assert err["details"]["problems"][0]["code"] == "TARGET_NOT_PUBLIC"
    attempt = await webhooks.send(
        ctx,
        "http://hooks.example.com/x",
        rules.new_secret(random.Random(1)),
        "msg_1",
        "{}",
    )
    assert not attempt.ok and attempt.error and attempt.error.startswith("target refused")


def _fields(settings):  # type: ignore[no-untyped-def]
    return {f: getattr(settings, f) for f in settings.__struct_fields__}


async def test_config_problems_are_listed_and_other_tenants_see_nothing(
    client, tenant, other_tenant
):
    r = await client.put(
        "/admin/v1/webhooks/x",
        headers=tenant.admin,
        json={"url": "ftp://a.example/x", "eventTypes": ["*"], "secret": "whsec_!!"},
    )
    err = assert_error(r, 422, "VALIDATION_FAILED")
    assert {p["path"] for p in err["details"]["problems"]} == {"url", "secret"}
    given = rules.new_secret(random.Random(9))
    out = await put_hook(
        client, tenant, "mine", "http://127.0.0.1:8199/", ["badge.*"], secret=given
    )
    assert out["secret"] == given
    again = await put_hook(client, tenant, "mine", "http://127.0.0.1:8199/", ["badge.earned"])
    assert again.get("secret") is None  # kept, not shown
    assert_error(
        await client.get("/admin/v1/webhooks/mine", headers=other_tenant.admin),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    assert (await client.get("/admin/v1/webhooks", headers=other_tenant.admin)).json() == {
        "items": []
    }
    mine = (await client.get("/admin/v1/webhooks", headers=tenant.admin)).json()
    assert [h["key"] for h in mine["items"]] == ["mine"]
    r = await client.delete("/admin/v1/webhooks/mine", headers=other_tenant.admin)
    assert_error(r, 404, "WEBHOOK_NOT_FOUND")
    assert (await client.delete("/admin/v1/webhooks/mine", headers=tenant.admin)).status_code == 204


def test_event_type_patterns():
    assert rules.matches(["badge.*"], "badge.earned")
    assert rules.matches(["*"], "anything.at.all")
    assert rules.matches(["prize.won", "badge.earned"], "badge.earned")
    assert not rules.matches(["badge.*"], "badges.earned")
    assert not rules.matches(["prize.won"], "prize.shipped")


async def test_done_when_badge_and_prize_arrive_verified_and_survive_a_receiver_outage(
    client, tenant, ctx, clock
):
    """The issue's acceptance: register a loopback receiver for badge.earned and prize.won;
    earn both; both verify; stop the receiver, earn another, start it again: it arrives."""
    wall_clock(clock)
    box: dict[str, str] = {}
    accepted: list[Received] = []
    rx = Receiver(verifying(box, accepted, [False])).start()
    try:
        out = await put_hook(
            client, tenant, "crm", rx.url + "/engage", ["badge.earned", "prize.won"]
        )
        box["secret"] = out["secret"]
        await put_wheel(
            client,
            tenant,
            "w",
            wheel_config(
                [prize("pts", "points", 1, value=5)], consolationPrize="pts", freeSpinsPerDay=5
            ),
        )
        mid, h = await tenant.member("winner")
        r = await client.post("/v1/wheels/w/spins", headers=h)
        assert r.status_code == 200, r.text
        # badge.earned as the badges feature emits it (written with the change it describes).
        await emit(ctx, tenant.id, "badge.earned", mid, badgeKey="first-spin")
        await pump(ctx)
        assert sorted(a.json()["type"] for a in accepted) == ["badge.earned", "prize.won"]
        port = rx.port
        rx.stop()
        r = await client.post("/v1/wheels/w/spins", headers=h)
        assert r.status_code == 200, r.text
        await pump(ctx)  # the receiver is down: the attempt fails and is scheduled again
        log = (await client.get("/admin/v1/webhooks/crm/deliveries", headers=tenant.admin)).json()
        assert log["items"][0]["status"] == "pending" and log["items"][0]["lastError"]
        rx = Receiver(verifying(box, accepted, [False]), port=port).start()
        clock.advance(seconds=rules.BASE_S)
        await pump(ctx)
        assert [a.json()["type"] for a in accepted] == ["prize.won", "badge.earned", "prize.won"]
        assert len({a.headers["webhook-id"] for a in accepted}) == 3
    finally:
        rx.stop()


async def test_the_worker_inside_serve_delivers_without_being_called(servers, ctx, client):
    """The app's lifespan (what `engage serve` runs) dispatches and delivers on its own."""
    from service.app import create_app
    from service.core.rng import seeded_rng
    from tests.conftest import http_client, make_settings, new_tenant

    accepted: list[Received] = []
    rx = Receiver(lambda r: (accepted.append(r), (200, b"ok"))[1]).start()
    app = create_app(make_settings(servers, outbox_poll_s=0.1), rng=seeded_rng(5), background=True)
    try:
        async with http_client(app) as live:
            live_ctx = app.state.ctx
            tenant = await new_tenant(live_ctx, live)
            await put_hook(live, tenant, "live", rx.url, ["prize.won"])
            mid, _ = await tenant.member("live")
            eid = await emit(live_ctx, tenant.id, "prize.won", mid, prizeKey="p")
            for _ in range(200):
                if accepted:
                    break
                await asyncio.sleep(0.05)
            assert [a.headers["webhook-id"] for a in accepted] == ["msg_" + eid.hex]
    finally:
        rx.stop()


async def test_the_log_pages_and_forgets_finished_deliveries_after_30_days(
    client, tenant, ctx, clock
):
    rx = Receiver().start()
    try:
        await put_hook(client, tenant, "pg", rx.url, ["level.*"])
        mid, _ = await tenant.member("pg")
        for n in range(5):
            await emit(ctx, tenant.id, "level.up", mid, level=n)
        await pump(ctx)
        url = "/admin/v1/webhooks/pg/deliveries"
        first = (await client.get(url, headers=tenant.admin, params={"limit": 3})).json()
        rest = (
            await client.get(
                url, headers=tenant.admin, params={"limit": 3, "cursor": first["nextCursor"]}
            )
        ).json()
        ids = [d["id"] for d in first["items"] + rest["items"]]
        assert len(ids) == 5 and ids == sorted(ids, reverse=True) and "nextCursor" not in rest
        clock.advance(days=31)
        await emit(ctx, tenant.id, "level.up", mid, level=9)
        await ctx.dispatcher.drain(ctx, settle_s=60)  # queued, not yet sent: kept
        await webhooks.purge_log(ctx)
        left = (await client.get(url, headers=tenant.admin)).json()["items"]
        assert [d["status"] for d in left] == ["pending"]
    finally:
        rx.stop()


async def test_queueing_moves_the_outbox_cursor_in_the_same_transaction(client, tenant, ctx):
    """The subscriber records the deliveries and its position together: once the queue row
    is committed the dispatcher will not hand the event over again, even if it crashed
    before its own cursor update."""
    rx = Receiver().start()
    try:
        await put_hook(client, tenant, "cur", rx.url, ["level.*"])
        await ctx.dispatcher.drain(ctx, settle_s=60)  # every cursor exists and is current
        mid, _ = await tenant.member("cur")
        eid = await emit(ctx, tenant.id, "level.up", mid, level=3)
        async with ctx.db.connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, txid, event_id, tenant_id, type, member_id, payload, occurred_at "
                "FROM outbox WHERE event_id = $1",
                eid,
            )
        # The dispatcher hands the event over and "crashes" before moving the cursor itself.
        await webhooks.on_events(ctx, [outbox.event_of(row)])
        async with ctx.db.connection() as conn:
            cursor = await conn.fetchrow(
                "SELECT last_txid, last_id FROM outbox_cursors WHERE subscriber = 'webhooks'"
            )
            queued = await conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE event_id = $1", str(eid)
            )
        assert (cursor["last_txid"], cursor["last_id"]) >= (row["txid"], row["id"])
        assert queued == 1
        await pump(ctx)
        assert [r.headers["webhook-id"] for r in rx.requests] == ["msg_" + eid.hex]
    finally:
        rx.stop()
