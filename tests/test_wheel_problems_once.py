"""A wheel PUT answers every problem in one 422: shape problems (a required field malformed)
and rule problems (repeated prize keys, a points prize without value, end before start, a
bad consolation prize) together; nothing is saved."""

from __future__ import annotations

from tests.wheel_helpers import wheel_config


def _bad_wheel() -> dict:
    cfg = wheel_config(
        prizes=[
            {"key": "a", "name": "A", "kind": "points", "weight": 10},  # no value
            {"key": "a", "name": "A2", "kind": "nothing", "weight": 10},  # repeated key
            {"key": "c", "name": "C", "kind": "nothing", "weight": "heavy"},  # shape
        ],
        consolationPrize="ghost",
    )
    cfg["name"] = ""  # a required field malformed
    cfg["startsAt"], cfg["endsAt"] = cfg["endsAt"], cfg["startsAt"]
    return cfg


async def test_wheel_put_lists_shape_and_rule_problems_at_once(client, tenant) -> None:
    r = await client.put("/admin/v1/wheels/once", json=_bad_wheel(), headers=tenant.admin)
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "VALIDATION_FAILED"
    paths = {p["path"] for p in body["details"]["problems"]}
    assert {
        "name",
        "prizes[2].weight",
        "prizes[0].value",
        "prizes[1].key",
        "endsAt",
        "consolationPrize",
    } <= paths, paths
    r = await client.get("/admin/v1/wheels/once", headers=tenant.admin)
    assert r.status_code == 404  # nothing saved
