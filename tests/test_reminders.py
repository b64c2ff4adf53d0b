"""Reminders against a loopback fake of WeChat's token and subscribe/send API: one message per
grant and per occasion, never without a grant, WeChat errors mapped, quiet hours, field limits,
and the scans for streaks at risk and expiring points."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks.webhooks import Webhook

from service.core import outbox
from service.reminders import rules
from service.reminders import service as reminders
from service.webhooks import rules as webhook_rules
from tests.loopback import Received, Receiver
from tests.test_checkins_api import put_campaign
from tests.test_foundation_api import assert_error
from tests.test_points_api import adjust

pytestmark = pytest.mark.asyncio

SH = ZoneInfo("Asia/Shanghai")
SHIP_TEXT = "您的奖品{prize}已经发货啦，请留意快递并及时查收"


class FakeWechat:
    """/cgi-bin/stable_token hands out tokens; /cgi-bin/message/subscribe/send answers the errcode
    queued for the openid (0 when none is queued) and records every message."""

    def __init__(self) -> None:
        self.token_calls = 0
        self.token = ""
        self.sent: list[dict] = []  # type: ignore[type-arg]
        self.answers: dict[str, list[int]] = {}
        self.rx = Receiver(self.rule)

    def rule(self, r: Received) -> tuple[int, bytes]:
        url = urlsplit(r.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/cgi-bin/stable_token":
            # Like WeChat: the same token while it is valid, a new one only when forced.
            body = r.json()
            assert body["grant_type"] == "client_credential" and body["appid"]
            self.token_calls += 1
            if body["force_refresh"] or not self.token:
                self.token = f"TOKEN{self.token_calls}"
            return 200, json.dumps({"access_token": self.token, "expires_in": 7200}).encode()
        if url.path == "/cgi-bin/message/subscribe/send":
            body = r.json()
            if query.get("access_token") != self.token:
                return 200, b'{"errcode": 40001, "errmsg": "invalid credential"}'
            queued = self.answers.get(body["touser"], [])
            code = queued.pop(0) if queued else 0
            if code == 40001:
                self.token = ""  # WeChat revoked it
                return 200, b'{"errcode": 40001, "errmsg": "invalid credential"}'
            if code == 0:
                self.sent.append({**body, "token": query["access_token"]})
            return 200, json.dumps({"errcode": code, "errmsg": "fake"}).encode()
        return 404, b"{}"


@pytest.fixture
async def wechat(ctx, monkeypatch):  # type: ignore[no-untyped-def]
    fake = FakeWechat()
    fake.rx.start()
    fields = {f: getattr(ctx.settings, f) for f in ctx.settings.__struct_fields__}
    monkeypatch.setattr(
        ctx, "settings", ctx.settings.__class__(**{**fields, "wechat_api_base": fake.rx.url})
    )
    yield fake
    fake.rx.stop()


async def configure(client, tenant, **kw):  # type: ignore[no-untyped-def]
    cfg = {
        "sender": "wechat",
        "appId": tenant.app_id,
        "templates": {
            "prize.shipped": {
                "templateId": "TPL_SHIP",
                "page": "pages/prizes/index",
                "fields": {"thing1": SHIP_TEXT, "character_string2": "{trackingNo}"},
            },
            "pk.result": {
                "templateId": "TPL_PK",
                "fields": {"thing1": "{pk}", "phrase2": "{result}"},
            },
        },
        **kw,
    }
    r = await client.put("/admin/v1/reminders/config", headers=tenant.admin, json=cfg)
    assert r.status_code == 200, r.text
    return r.json()


async def wechat_member(ctx, tenant, openid):  # type: ignore[no-untyped-def]
    headers = await tenant.login(openid)
    async with ctx.db.connection() as conn:
        mid = await conn.fetchval(
            "SELECT member_id FROM member_identities WHERE tenant_id = $1 AND subject = $2",
            tenant.id,
            openid,
        )
    return mid, headers


async def grant(client, headers, results, key=None):  # type: ignore[no-untyped-def]
    h = dict(headers)
    if key:
        h["Idempotency-Key"] = key
    return await client.post("/v1/me/subscriptions", headers=h, json={"results": results})


async def ship(ctx, tenant_id, member_id, award_id, **extra):  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as conn:
        await outbox.emit(
            conn,
            tenant_id=tenant_id,
            type="prize.shipped",
            member_id=member_id,
            payload={
                "awardId": award_id,
                "prizeKey": "phone",
                "name": "华为手机Mate七十旗舰版",
                **extra,
            },
            occurred_at=ctx.clock.now(),
        )


async def run_all(ctx):  # type: ignore[no-untyped-def]
    await ctx.dispatcher.drain(ctx, settle_s=60)
    await reminders.scan(ctx)
    while await reminders.send_due(ctx):
        pass


async def statuses(ctx, tenant_id):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT member_id, kind, occasion, status, attempts FROM reminders "
            "WHERE tenant_id = $1 ORDER BY id",
            tenant_id,
        )
    return [dict(r) for r in rows]


async def test_sent_once_per_occasion_with_a_grant_and_never_without(
    client, tenant, ctx, wechat, clock
):
    clock.set(datetime(2026, 11, 23, 4, 0, tzinfo=UTC))  # 12:00 in Shanghai
    await configure(client, tenant)
    a, ha = await wechat_member(ctx, tenant, "openid-a")
    b, _ = await wechat_member(ctx, tenant, "openid-b")
    # The same tap sent ten times at once (a retried request) is one grant.
    answers = await asyncio.gather(
        *(
            grant(client, ha, {"TPL_SHIP": "accept", "TPL_PK": "reject"}, key="tap-1")
            for _ in range(10)
        )
    )
    assert {r.status_code for r in answers} <= {200, 409}
    mine = (await client.get("/v1/me/subscriptions", headers=ha)).json()
    assert {t["templateId"]: t["available"] for t in mine["templates"]} == {
        "TPL_PK": 0,
        "TPL_SHIP": 1,
    }
    assert {t["templateId"]: t["kinds"] for t in mine["templates"]}["TPL_SHIP"] == ["prize.shipped"]

    await ship(ctx, tenant.id, a, 11, trackingNo="SF1234567890")
    await ship(ctx, tenant.id, a, 11, trackingNo="SF1234567890")  # the same occasion again
    await ship(ctx, tenant.id, b, 12)  # b never allowed it
    await run_all(ctx)
    assert len(wechat.sent) == 1
    [msg] = wechat.sent
    assert msg["touser"] == "openid-a" and msg["template_id"] == "TPL_SHIP"
    assert msg["page"] == "pages/prizes/index"
    thing = msg["data"]["thing1"]["value"]
    assert len(thing) == 20 and thing.endswith("…") and thing.startswith("您的奖品华为手机")
    assert msg["data"]["character_string2"]["value"] == "SF1234567890"
    got = {(s["member_id"], s["occasion"]): s["status"] for s in await statuses(ctx, tenant.id)}
    assert got == {(a, "award:11"): "sent", (b, "award:12"): "no_grant"}
    # The grant is spent: a new occasion without a new grant is not sent.
    await ship(ctx, tenant.id, a, 13)
    await run_all(ctx)
    assert len(wechat.sent) == 1
    mine = (await client.get("/v1/me/subscriptions", headers=ha)).json()
    assert {t["templateId"]: t["available"] for t in mine["templates"]}["TPL_SHIP"] == 0
    # Two taps, two occasions: two messages, and the access token was fetched once.
    r = await grant(client, ha, {"TPL_SHIP": "accept"}, key="tap-2")
    assert r.status_code == 200
    r = await grant(client, ha, {"TPL_SHIP": "accept"}, key="tap-3")
    await ship(ctx, tenant.id, a, 14)
    await ship(ctx, tenant.id, a, 15)
    await run_all(ctx)
    assert len(wechat.sent) == 3 and wechat.token_calls == 1
    log = (await client.get("/admin/v1/reminders", headers=tenant.admin)).json()
    assert [i["status"] for i in log["items"]][:2] == ["sent", "sent"]


async def test_wechat_errors_refused_grant_is_spent_busy_is_retried_token_refreshed(
    client, tenant, ctx, wechat, clock
):
    clock.set(datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    await configure(client, tenant)
    c, hc = await wechat_member(ctx, tenant, "openid-c")
    d, hd = await wechat_member(ctx, tenant, "openid-d")
    await grant(client, hc, {"TPL_SHIP": "accept"})
    await grant(client, hd, {"TPL_SHIP": "accept"})
    wechat.answers["openid-c"] = [43101]  # the member's consent is gone
    wechat.answers["openid-d"] = [-1, 45009]  # WeChat busy, then rate-limited
    await ship(ctx, tenant.id, c, 21)
    await ship(ctx, tenant.id, d, 22)
    await run_all(ctx)
    got = {s["member_id"]: s for s in await statuses(ctx, tenant.id)}
    assert got[c]["status"] == "refused" and got[c]["attempts"] == 1
    assert got[d]["status"] == "pending" and got[d]["attempts"] == 1
    for _ in range(3):
        clock.advance(minutes=10)
        await run_all(ctx)
    got = {s["member_id"]: s for s in await statuses(ctx, tenant.id)}
    assert got[c]["status"] == "refused" and got[c]["attempts"] == 1  # never retried
    assert got[d]["status"] == "sent" and got[d]["attempts"] == 3
    assert [m["touser"] for m in wechat.sent] == ["openid-d"]
    async with ctx.db.connection() as conn:
        spent = await conn.fetch(
            "SELECT member_id, count(*) FROM reminder_grants WHERE tenant_id = $1 "
            "AND used_at IS NOT NULL GROUP BY member_id",
            tenant.id,
        )
    assert {r["member_id"]: r["count"] for r in spent} == {c: 1, d: 1}  # retries spend no more
    # An access token WeChat no longer accepts is refreshed once and the message goes out.
    await grant(client, hd, {"TPL_SHIP": "accept"})
    wechat.answers["openid-d"] = [40001]
    await ship(ctx, tenant.id, d, 23)
    await run_all(ctx)
    assert len(wechat.sent) == 2 and wechat.sent[-1]["token"] == "TOKEN2"


async def test_quiet_hours_hold_a_reminder_until_they_end(client, tenant, ctx, wechat, clock):
    clock.set(datetime(2026, 11, 23, 23, 30, tzinfo=SH))
    await configure(client, tenant, quietHours={"start": "22:00", "end": "08:00"})
    e, he = await wechat_member(ctx, tenant, "openid-e")
    await grant(client, he, {"TPL_PK": "accept"})
    async with ctx.db.transaction() as conn:
        await outbox.emit(
            conn,
            tenant_id=tenant.id,
            type="pk.settled",
            member_id=e,
            payload={"pkKey": "week-47", "title": "第47周门店PK", "result": "胜利"},
            occurred_at=ctx.clock.now(),
        )
    await run_all(ctx)
    assert wechat.sent == []
    [s] = await statuses(ctx, tenant.id)
    assert s["status"] == "pending" and s["kind"] == "pk.result"
    clock.set(datetime(2026, 11, 24, 7, 59, tzinfo=SH))
    await run_all(ctx)
    assert wechat.sent == []
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=SH))
    await run_all(ctx)
    [msg] = wechat.sent
    assert msg["data"] == {"thing1": {"value": "第47周门店PK"}, "phrase2": {"value": "胜利"}}


async def scanned_setup(client, tenant, clock, **config):  # type: ignore[no-untyped-def]
    """Day 1 (11-23): two members check in, one gets 50 points; points expire after 10 days."""
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=SH))
    r = await client.put(
        "/admin/v1/points/policy",
        headers=tenant.admin,
        json={"expiry": {"mode": "days", "days": 10}},
    )
    assert r.status_code == 200, r.text
    await put_campaign(client, tenant)
    mid, h = await tenant.member("streaker")
    assert (await client.post("/v1/checkins/daily", headers=h)).status_code == 200
    assert (await adjust(client, tenant, "streaker", 50)).status_code == 200
    other, h2 = await tenant.member("done-today")
    assert (await client.post("/v1/checkins/daily", headers=h2)).status_code == 200
    r = await client.put(
        "/admin/v1/reminders/config",
        headers=tenant.admin,
        json={
            "sender": "log",
            "checkinRemindAt": "20:00",
            "pointsExpiringDays": 7,
            "templates": {
                "checkin.streak_at_risk": {
                    "templateId": "TPL_STREAK",
                    "fields": {
                        "thing1": "{campaign}连签{streak}天，今天别断签",
                        "time2": "{deadline}",
                    },
                },
                "points.expiring": {
                    "templateId": "TPL_EXP",
                    "fields": {"number1": "{points}", "date2": "{expiresOn}"},
                },
            },
            **config,
        },
    )
    assert r.status_code == 200, r.text
    return mid, other


async def test_streak_at_risk_and_points_expiring_are_scanned_once_per_occasion(
    client, tenant, ctx, clock
):
    mid, other = await scanned_setup(client, tenant, clock)
    # Next day: the second member checks in, the first does not. Before 20:00 nothing.
    clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=SH))
    _, h2 = await tenant.member("done-today")  # a fresh token: the clock moved a day
    assert (await client.post("/v1/checkins/daily", headers=h2)).status_code == 200
    _, h = await tenant.member("streaker")
    assert (await grant(client, h, {"TPL_STREAK": "accept"})).status_code == 200
    await run_all(ctx)
    assert await statuses(ctx, tenant.id) == []
    clock.set(datetime(2026, 11, 24, 20, 30, tzinfo=SH))
    await run_all(ctx)
    await run_all(ctx)
    risky = await statuses(ctx, tenant.id)
    assert [(s["member_id"], s["occasion"], s["status"]) for s in risky] == [
        (mid, "daily:2026-11-24", "sent")
    ]
    # Points credited on 11-23 expire 10 days later: within 7 days from 11-26 on. Only the
    # member who allowed the template gets a reminder row at all, and only once.
    clock.set(datetime(2026, 11, 27, 10, 0, tzinfo=SH))
    _, h = await tenant.member("streaker")
    assert (await grant(client, h, {"TPL_EXP": "accept"})).status_code == 200
    await run_all(ctx)
    await run_all(ctx)
    expiring = [s for s in await statuses(ctx, tenant.id) if s["kind"] == "points.expiring"]
    assert [(s["member_id"], s["occasion"], s["status"]) for s in expiring] == [
        (mid, "expiry:2026-12-03", "sent")
    ]
    assert other != mid


async def test_a_streak_reminder_held_by_quiet_hours_past_midnight_is_dropped(
    client, tenant, ctx, clock
):
    await scanned_setup(
        client,
        tenant,
        clock,
        quietHours={"start": "21:00", "end": "08:00"},
        checkinRemindAt="21:30",
    )
    clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=SH))
    _, h = await tenant.member("streaker")
    assert (await grant(client, h, {"TPL_STREAK": "accept"})).status_code == 200
    clock.set(datetime(2026, 11, 24, 21, 45, tzinfo=SH))
    await run_all(ctx)
    [s] = await statuses(ctx, tenant.id)
    assert s["status"] == "expired"  # 08:00 tomorrow is too late for today's streak


async def test_config_problems_are_listed(client, tenant, other_tenant):
    r = await client.put(
        "/admin/v1/reminders/config",
        headers=tenant.admin,
        json={
            "sender": "wechat",
            "appId": other_tenant.app_id,
            "templates": {
                "pk.result": {"templateId": "T", "fields": {"thingy": "x", "thing2": "{nope}"}}
            },
        },
    )
    err = assert_error(r, 422, "VALIDATION_FAILED")
    codes = {p["code"] for p in err["details"]["problems"]}
    assert codes == {"APP_UNKNOWN", "FIELD_TYPE_UNKNOWN", "VARIABLE_UNKNOWN"}
    assert_error(
        await client.get("/admin/v1/reminders/config", headers=tenant.admin),
        404,
        "REMINDERS_NOT_CONFIGURED",
    )


def test_field_values_are_cut_by_characters_to_wechat_limits():
    assert (
        rules.fit_value("thing3", "一二三四五六七八九十一二三四五六七八九十")
        == "一二三四五六七八九十一二三四五六七八九十"
    )
    cut = rules.fit_value("thing3", "一二三四五六七八九十一二三四五六七八九十二")
    assert len(cut) == 20 and cut.endswith("…")
    assert rules.fit_value("phrase1", "大获全胜了啊") == "大获全胜了"
    assert rules.fit_value("character_string9", "x" * 40) == "x" * 32
    assert rules.fit_value("thing1", "line\nbreak") == "line break"


def test_quiet_hours_wrap_midnight():
    start, end = rules.parse_hhmm("22:00"), rules.parse_hhmm("08:00")
    late = datetime(2026, 11, 23, 23, 0, tzinfo=SH)
    assert rules.release_at(late, SH, start, end) == datetime(2026, 11, 24, 8, 0, tzinfo=SH)
    early = datetime(2026, 11, 24, 7, 0, tzinfo=SH)
    assert rules.release_at(early, SH, start, end) == datetime(2026, 11, 24, 8, 0, tzinfo=SH)
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=SH)
    assert rules.release_at(noon, SH, start, end) == noon
    assert rules.classify(43101) == "refused" and rules.classify(40001) == "token"
    assert rules.retry_delay(3, 0.0) == timedelta(minutes=2)


async def test_grants_are_per_member_and_tenant_and_bad_input_records_nothing(
    client, tenant, other_tenant, ctx
):
    _, ha = await tenant.member("iso-a")
    _, hb = await other_tenant.member("iso-b")
    assert (await grant(client, ha, {"TPL_X": "accept", "TPL_Y": "ban"})).status_code == 200
    theirs = (await client.get("/v1/me/subscriptions", headers=hb)).json()
    assert theirs == {"templates": []}
    r = await grant(client, hb, {"TPL_X": "maybe", "bad id!": "accept"})
    err = assert_error(r, 422, "VALIDATION_FAILED")
    assert err["details"]["problems"]
    r = await client.post("/v1/me/subscriptions", headers=hb, json={"results": {}})
    assert_error(r, 422, "VALIDATION_FAILED")
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM reminder_grants WHERE tenant_id = $1", other_tenant.id
        )
    assert n == 0
    mine = (await client.get("/v1/me/subscriptions", headers=ha)).json()
    assert mine == {"templates": [{"templateId": "TPL_X", "available": 1}]}
    log = (await client.get("/admin/v1/reminders", headers=other_tenant.admin)).json()
    assert log == {"items": []}


async def test_concurrent_reminders_never_share_a_grant(client, tenant, ctx, wechat, clock):
    clock.set(datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    await configure(client, tenant)
    f, hf = await wechat_member(ctx, tenant, "openid-f")
    for i in range(3):
        r = await grant(client, hf, {"TPL_SHIP": "accept"}, key=f"tap-f-{i}")
        assert r.status_code == 200
    for award in range(100, 112):
        await ship(ctx, tenant.id, f, award)
    await ctx.dispatcher.drain(ctx, settle_s=60)
    assert await reminders.send_due(ctx, parallel=12) == 12  # all twelve at once
    got = [s["status"] for s in await statuses(ctx, tenant.id)]
    assert sorted(got) == ["no_grant"] * 9 + ["sent"] * 3
    assert len(wechat.sent) == 3
    async with ctx.db.connection() as conn:
        bound = await conn.fetchval(
            "SELECT count(DISTINCT grant_id) FROM reminders WHERE tenant_id = $1 "
            "AND grant_id IS NOT NULL",
            tenant.id,
        )
    assert bound == 3


async def test_webhook_sender_posts_a_signed_reminder(client, tenant, ctx, clock):
    clock.set(datetime.now(UTC).replace(microsecond=0))  # the verifier checks the wall clock
    secret = webhook_rules.new_secret(random.Random(11))
    got: list[Received] = []

    def rule(r: Received) -> tuple[int, bytes]:
        Webhook(secret).verify(r.body, r.headers)  # raises (answers 500) when forged
        got.append(r)
        return 204, b""

    rx = Receiver(rule).start()
    try:
        r = await client.put(
            "/admin/v1/reminders/config",
            headers=tenant.admin,
            json={
                "sender": "webhook",
                "webhookUrl": rx.url + "/reminders",
                "webhookSecret": secret,
                "templates": {
                    "prize.shipped": {"templateId": "TPL_SHIP", "fields": {"thing1": SHIP_TEXT}}
                },
            },
        )
        assert r.status_code == 200, r.text
        g, hg = await wechat_member(ctx, tenant, "openid-g")
        async with ctx.db.transaction() as conn:  # the brand's id, as a linked member has
            await conn.execute("UPDATE members SET external_id = 'brand-g' WHERE id = $1", g)
        await grant(client, hg, {"TPL_SHIP": "accept"})
        await ship(ctx, tenant.id, g, 501)
        await ship(ctx, tenant.id, g, 502)  # no second grant: not sent
        await run_all(ctx)
        [msg] = got
        body = msg.json()
        assert body["type"] == "reminder.prize.shipped"
        assert body["data"]["memberId"] == g and body["data"]["templateId"] == "TPL_SHIP"
        assert body["data"]["externalId"] == "brand-g"
        assert len(body["data"]["fields"]["thing1"]["value"]) == 20
        got_statuses = sorted(s["status"] for s in await statuses(ctx, tenant.id))
        assert got_statuses == ["no_grant", "sent"]
    finally:
        rx.stop()
