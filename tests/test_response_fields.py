"""Answers speak one language: every timestamp is RFC 3339 with an offset, every avatar is
`avatarUrl`. The main routes of both APIs are called on a seeded tenant and their bodies walked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_api_conformance import _seed

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parent.parent
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_KEYS = re.compile(r"(At|Time|Until|^now)$")
DATE_KEYS = re.compile(r"(Date|^date|^today)$")


def walk(value: Any, path: str = "$") -> list[str]:
    """Every problem with a time or an avatar field in one body, as `path: problem`."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if "avatar" in key.lower() and not key.startswith("show") and key != "avatarUrl":
                problems.append(f"{where}: avatar fields are named avatarUrl")
            if TIME_KEYS.search(key) and item is not None and not isinstance(item, str):
                problems.append(f"{where}: a time must be an RFC 3339 string, got {item!r}")
            if DATE_KEYS.search(key) and isinstance(item, str) and not FULL_DATE.match(item):
                problems.append(f"{where}: a date must be YYYY-MM-DD, got {item!r}")
            if (
                TIME_KEYS.search(key)
                and isinstance(item, str)
                and not LOOKS_LIKE_TIME.match(item)
                and not RFC3339.match(item)
            ):
                problems.append(f"{where}: not RFC 3339 with an offset: {item!r}")
            problems += walk(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems += walk(item, f"{path}[{i}]")
    elif isinstance(value, str) and LOOKS_LIKE_TIME.match(value) and not RFC3339.match(value):
        problems.append(f"{path}: not RFC 3339 with an offset: {value!r}")
    return problems


def test_the_walk_catches_what_it_looks_for():
    bad = {
        "a": {"createdAt": "2026-11-11T00:00:00"},
        "b": [{"avatar": "x"}],
        "c": {"reachedAt": 1700000000},
        "d": "2026-11-11 00:00:00+00:00",
        "e": {"startDate": "2026-11-11T00:00:00Z"},
    }
    assert len(walk(bad)) == 5
    good = {"createdAt": "2026-11-11T00:00:00Z", "x": "2026-11-11T08:00:00.5+08:00"}
    assert walk(good | {"showAvatar": True, "avatarUrl": "", "date": "2026-11-11"}) == []


def test_the_openapi_document_names_avatars_avatar_url():
    doc = json.loads((ROOT / "frontend-api-spec" / "openapi.json").read_text())
    names = {
        f"{schema}.{prop}"
        for schema, body in doc["components"]["schemas"].items()
        for prop in (body.get("properties") or {})
        if "avatar" in prop.lower() and not prop.startswith("show")
    }
    assert names and all(n.endswith(".avatarUrl") for n in names), names


async def test_main_answers_use_one_time_format_and_one_avatar_name(client, tenant, ctx):
    auth = await _seed(client, tenant)
    member, admin = auth["member"], auth["operator"]
    _, second = await tenant.member("u2")
    r = await client.post("/v1/checkins/daily", headers=member)
    assert r.status_code == 200, r.text
    r = await client.post("/v1/challenges/c3/entries", headers=member)
    assert r.status_code in (200, 409), r.text
    calls = [
        ("GET", "/v1/me", member, None),
        ("PATCH", "/v1/me", member, {"nickname": "小林"}),
        ("GET", "/v1/me/ledger", member, None),
        ("GET", "/v1/checkins/daily", member, None),
        ("GET", "/v1/wheels/wheel", member, None),
        ("POST", "/v1/wheels/wheel/spins", second, None),
        ("GET", "/v1/me/prizes", member, None),
        ("GET", "/v1/challenges", member, None),
        ("GET", "/v1/leaderboards/pts", member, None),
        ("GET", "/v1/leaderboards/pts/around-me", member, None),
        ("POST", "/v1/leaderboards/pts/friends", member, {"externalIds": ["u2"]}),
        ("GET", "/admin/v1/members/u1/ledger", admin, None),
        ("POST", "/admin/v1/members/u1/token", admin, None),
        ("GET", "/admin/v1/wheels/wheel", admin, None),
        ("GET", "/admin/v1/wheels/wheel/draws", admin, None),
        ("GET", "/admin/v1/wheels/wheel/awards", admin, None),
        ("GET", "/admin/v1/checkin-campaigns/daily", admin, None),
        ("GET", "/admin/v1/challenges/c3", admin, None),
        ("GET", "/admin/v1/leaderboards/pts", admin, None),
        ("GET", "/admin/v1/leaderboards/pts/entries", admin, None),
        ("GET", "/admin/v1/red-black/rb", admin, None),
        ("GET", "/admin/v1/rules/orders", admin, None),
        ("GET", "/admin/v1/rules", admin, None),
        ("GET", "/admin/v1/points/policy", admin, None),
    ]
    problems: list[str] = []
    times = 0
    offsets: set[str] = set()
    for method, path, headers, body in calls:
        r = await client.request(method, path, headers=headers, json=body)
        assert r.status_code == 200, f"{method} {path}: {r.text}"
        found = walk(r.json())
        problems += [f"{method} {path} {p}" for p in found]
        times += len(re.findall(r'"\d{4}-\d{2}-\d{2}T', r.text))
        offsets.update(re.findall(r'"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})"', r.text))
    assert times > 30  # the walk saw real timestamps
    assert offsets == {"Z"}, f"answers give times in UTC (Z), one format; saw {offsets}"
    assert not problems, "\n".join(problems)
