"""The load seed's configs are accepted by the app, and its answers have what scenarios check."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest

from tests.conftest import new_tenant

pytestmark = pytest.mark.asyncio

LOAD = Path(__file__).resolve().parent.parent / "load"


def _seed_module():  # type: ignore[no-untyped-def]
    # Loaded by path under its own name: load/ is not a package, and its modules must not
    # shadow the service's (load/config.py).
    spec = importlib.util.spec_from_file_location("engage_load_seed", LOAD / "seed.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_seed_configs_are_accepted_and_the_sale_day_answers_match(ctx, client, clock):  # type: ignore[no-untyped-def]
    seed = _seed_module()
    # The key the seed creates, with exactly its scopes: a missing scope would be a 403 here.
    tenant = await new_tenant(ctx, client, scopes=seed.SCOPES.split(","))
    for what, (path, body) in seed.configs(clock.now()).items():
        r = await client.put(path, json=body, headers=tenant.admin)
        assert r.status_code == 200, f"{what}: {r.text}"
        again = await client.put(path, json=body, headers=tenant.admin)
        assert again.status_code == 200, f"{what} (rerun of the seed): {again.text}"

    # What the scenarios assert on, answered by the seeded configs.
    _, member = await tenant.member("load-0")
    page = await client.get(f"/v1/checkins/{seed.CAMPAIGN_KEY}", headers=member)
    assert page.status_code == 200 and page.json()["state"] == "live", page.text
    key = {"Idempotency-Key": "checkin-load-0-today"}
    first = await client.post(f"/v1/checkins/{seed.CAMPAIGN_KEY}", headers={**member, **key})
    assert first.status_code == 200 and first.json()["streak"] >= 1, first.text
    replay = await client.post(f"/v1/checkins/{seed.CAMPAIGN_KEY}", headers={**member, **key})
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"

    view = await client.get(f"/v1/wheels/{seed.WHEEL_KEY}", headers=member)
    assert view.status_code == 200 and view.json()["status"] == "open", view.text
    slots = {p["key"] for p in view.json()["prizes"]}
    codes = []
    for _ in range(10):
        spin = await client.post(
            f"/v1/wheels/{seed.WHEEL_KEY}/spins",
            headers={**member, "Idempotency-Key": str(uuid.uuid4())},
        )
        if spin.status_code == 200:
            assert spin.json()["prize"]["key"] in slots
            assert isinstance(spin.json()["slotIndex"], int)
        else:
            codes.append((spin.status_code, spin.json()["error"]["code"]))
    # The daily cap is met within one member's run: the scenario's expected 409s.
    assert codes and all(
        status == 409
        and code in {"WHEEL_CAP_REACHED", "WHEEL_NO_SPINS_LEFT", "INSUFFICIENT_POINTS"}
        for status, code in codes
    ), codes

    board = await client.get(f"/v1/leaderboards/{seed.BOARD_KEY}?limit=100", headers=member)
    assert board.status_code == 200 and {"items", "me", "period"} <= set(board.json())
    around = await client.get(f"/v1/leaderboards/{seed.BOARD_KEY}/around-me", headers=member)
    assert around.status_code == 200, around.text

    events = [
        {
            "eventId": f"load-test-{i}",
            "externalId": f"load-{i % 3}",
            "type": "order.paid",
            "occurredAt": clock.now().isoformat(),
            "value": 99.5,
            "attributes": {"channel": "mini-program"},
        }
        for i in range(100)
    ]
    r = await client.post("/admin/v1/events", json=events, headers=tenant.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] == 100 and body["rejected"] == 0
    assert body["results"][0]["effects"][0]["amount"] == 99
