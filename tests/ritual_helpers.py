"""Helpers of the ritual tests: a 3-step ritual, completing it, reading balances."""

from __future__ import annotations

from typing import Any

COVENANT = {
    "kind": "covenant",
    "key": "covenant",
    "title": "会员公约",
    "text": "我们一起成长。",
    "version": "v1",
}
PROFILE = {
    "kind": "profile",
    "key": "profile",
    "title": "介绍一下你自己",
    "fields": ["nickname", "birthday", "phone"],
    "requiredFields": ["nickname"],
}
PRIVILEGES = {"kind": "privileges", "key": "privileges", "title": "你的会员特权"}


def ritual(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": "入会仪式",
        "steps": [COVENANT, PROFILE, PRIVILEGES],
        "gift": {"points": 100},
    }
    doc.update(over)
    return doc


async def put_ritual(client, tenant, doc: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    r = await client.put("/admin/v1/rituals", json=doc or ritual(), headers=tenant.admin)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


STEP_DATA = {
    "covenant": {"accept": True, "covenantVersion": "v1"},
    "profile": {"nickname": "小明"},
    "privileges": {},
}


async def complete(client, headers, steps=("covenant", "profile", "privileges")) -> dict:  # type: ignore[no-untyped-def]
    body: dict = {}
    for key in steps:
        r = await client.post(f"/v1/ritual/steps/{key}", json=STEP_DATA[key], headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
    return body


async def balance(client, headers) -> int:  # type: ignore[no-untyped-def]
    r = await client.get("/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["balances"]["points"])
