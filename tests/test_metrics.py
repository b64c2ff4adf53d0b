"""/metrics: per-route request metrics by template, the pool, Redis latency, the outbox, prizes
left per live wheel and check-ins, each equal to what PostgreSQL holds."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.core import metrics
from tests.test_checkins_api import CAMPAIGN
from tests.wheel_helpers import prize, put_wheel, wheel_config, wheel_id, wins_in_db

pytestmark = pytest.mark.asyncio


async def scrape(client) -> dict[str, list]:  # type: ignore[no-untyped-def]
    r = await client.get("/metrics")
    assert r.status_code == 200
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    got = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert got, (name, labels)
    return sum(got)


async def test_metrics_show_routes_pool_redis_outbox_prizes_and_checkins(ctx, client, tenant):
    before = await scrape(client)
    checkins_before = value(before, "engage_checkins_total")
    await put_wheel(
        client,
        tenant,
        "mx",
        wheel_config([prize("big", "physical", 1000, totalStock=4), prize("thanks", "nothing", 1)]),
    )
    r = await client.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    assert r.status_code == 200, r.text
    for i in range(3):
        _, h = await tenant.member(f"mx{i}")
        assert (await client.post("/v1/wheels/mx/spins", headers=h)).status_code == 200
        assert (await client.post("/v1/checkins/daily", headers=h)).status_code == 200
        # A repeated tap is a replay, not a check-in.
        assert (await client.post("/v1/checkins/daily", headers=h)).status_code == 200

    await metrics.refresh(ctx)
    after = await scrape(client)
    # Per route template, never the raw path.
    spins = [
        s
        for s in after["engage_request_duration_seconds_count"]
        if s.labels.get("path") == "/v1/wheels/{wheelKey}/spins"
    ]
    assert spins and sum(s.value for s in spins) >= 3
    assert not any(
        "/v1/wheels/mx" in s.labels.get("path", "") for s in after["engage_requests_total"]
    )
    assert value(after, "engage_checkins_total") - checkins_before == 3
    assert value(after, "engage_redis_command_seconds_count", command="EVALSHA") > 0
    assert value(after, "engage_db_pool_connections", state="idle") >= 0
    assert "engage_db_pool_waiting" in after
    left = value(after, "engage_wheel_prizes_left", tenant=str(tenant.id), wheel="mx", prize="big")
    assert left == 4 - await wins_in_db(ctx, await wheel_id(ctx, tenant.id, "mx"), "big")
    async with ctx.db.connection() as conn:
        dead = await conn.fetchval("SELECT count(*) FROM outbox_dead_letters")
    assert value(after, "engage_outbox_dead_letters") == dead
    assert value(after, "engage_outbox_oldest_undelivered_age_seconds") >= 0
    assert value(after, "engage_outbox_undelivered_events") >= 0


async def test_each_pipeline_round_trip_is_one_redis_observation(
    ctx, client, tenant, monkeypatch, patient
):
    """A pipeline (the leaderboard, PK and calendar batches) is one PIPELINE observation per
    round trip, a transaction one MULTI, whatever they carry (see core/redis.py), and both
    show on /metrics. (The cache poller and dispatcher use Redis meanwhile: the exact count is
    taken over this task's own observations.)"""
    import asyncio

    from service.core import redis as core_redis

    mine: list[str] = []
    observe = core_redis.observe_redis

    def recording(command: str, started: float) -> None:
        if asyncio.current_task() is task:
            mine.append(command)
        observe(command, started)

    task = asyncio.current_task()
    monkeypatch.setattr(core_redis, "observe_redis", recording)

    def count(samples, label: str) -> float:  # type: ignore[no-untyped-def]
        got = [
            s.value
            for s in samples.get("engage_redis_command_seconds_count", [])
            if s.labels.get("command") == label
        ]
        return sum(got)

    before = await scrape(client)
    key = ctx.keys.tenant(tenant.id, "metrics-probe")
    # (Through the patient app's client: the session's 1 s Redis timeout is about the box.)
    redis = patient.ctx.redis
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(25):
            pipe.set(key, i)
        pipe.get(key)
        assert (await pipe.execute())[-1] == b"24"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.delete(key)
        assert await pipe.execute() == [25, 1]
    assert mine == ["PIPELINE", "MULTI"]
    after = await scrape(client)
    assert count(after, "PIPELINE") - count(before, "PIPELINE") >= 1
    assert count(after, "MULTI") - count(before, "MULTI") >= 1


def test_grafana_dashboard_is_current_and_uses_exported_metrics():
    import json
    import re
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    made = runpy.run_path(str(root / "load/grafana/make_dashboard.py"))["dashboard"]()
    on_disk = json.loads((root / "load/grafana/engage.json").read_text())
    assert on_disk == made, "run `uv run python load/grafana/make_dashboard.py`"
    exported = {
        "engage_requests_total",
        "engage_request_duration_seconds_bucket",
        "engage_checkins_total",
        "engage_wheel_prizes_left",
        "engage_db_pool_connections",
        "engage_db_pool_waiting",
        "engage_redis_command_seconds_bucket",
        "engage_outbox_oldest_undelivered_age_seconds",
        "engage_outbox_undelivered_events",
        "engage_outbox_dead_letters",
    }
    used = {
        m
        for p in on_disk["panels"]
        for t in p["targets"]
        for m in re.findall(r"engage_[a-z_]+", t["expr"])
    }
    assert used == exported
