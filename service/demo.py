"""What `engage demo` puts in place for a newcomer: one campaign of each kind, live now,
written through the running server's operator API (each a PUT, so running it again changes
nothing)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any


def configs(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of every demo config; windows open a week ago and close in 30 days."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = (day - timedelta(days=7)).isoformat()
    end = (day + timedelta(days=30)).isoformat()
    prizes = [
        {"key": "grand", "name": "蓝牙耳机", "kind": "physical", "weight": 1, "totalStock": 1},
        {"key": "p20", "name": "20 积分", "kind": "points", "weight": 30, "value": 20},
        {"key": "p5", "name": "5 积分", "kind": "points", "weight": 40, "value": 5},
        {"key": "none", "name": "谢谢参与", "kind": "nothing", "weight": 29},
    ]
    return [
        (
            "/admin/v1/levels",
            {
                "levels": [
                    {"name": "新朋友", "threshold": 0},
                    {"name": "银卡", "threshold": 100, "pointsMultiplierPct": 110},
                    {"name": "金卡", "threshold": 500, "pointsMultiplierPct": 120},
                ]
            },
        ),
        (
            "/admin/v1/rituals",
            {
                "title": "欢迎加入",
                "steps": [
                    {
                        "kind": "covenant",
                        "key": "covenant",
                        "title": "会员公约",
                        "text": "尊重彼此，诚信参与活动。",
                        "version": "v1",
                    },
                    {
                        "kind": "profile",
                        "key": "profile",
                        "title": "介绍一下你自己",
                        "fields": ["nickname", "birthday"],
                        "requiredFields": ["nickname"],
                    },
                ],
                "gift": {"points": 50},
            },
        ),
        (
            "/admin/v1/checkin-campaigns/daily",
            {
                "title": "每日签到",
                "startsAt": start,
                "state": "live",
                "baseReward": {"points": 5},
                "makeup": {"perMonth": 3, "costPoints": 0, "windowDays": 7},
            },
        ),
        (
            "/admin/v1/wheels/lucky",
            {
                "name": "幸运大转盘",
                "startsAt": start,
                "endsAt": end,
                "state": "live",
                "freeSpinsPerDay": 1,
                "costPoints": 10,
                "outOfStock": "consolation",
                "consolationPrize": "p5",
                "prizes": prizes,
            },
        ),
        (
            "/admin/v1/leaderboards/points-weekly",
            {"metric": "points", "period": "weekly"},
        ),
        (
            "/admin/v1/teams/east",
            {"name": "东区门店", "kind": "store", "teamSet": "stores", "open": True},
        ),
        (
            "/admin/v1/teams/west",
            {"name": "西区门店", "kind": "store", "teamSet": "stores", "open": True},
        ),
        (
            "/admin/v1/pks/store-pk",
            {
                "name": "门店积分 PK",
                "teams": ["east", "west"],
                "metric": "points",
                "startsAt": start,
                "endsAt": end,
            },
        ),
    ]


def seed(base: str, api_key: str, now: datetime) -> list[str]:
    """PUT every demo config to the server at ``base``; one line per result. Stops with a
    hint when the server is not running."""
    out = []
    for path, body in configs(now):
        req = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                out.append(f"  {r.status} PUT {path}")
        except urllib.error.HTTPError as err:
            text = err.read()[:300].decode(errors="replace")
            if err.code == 409 and "PK_STARTED" in text:
                out.append(f"  kept PUT {path}: already running (a started PK is not changed)")
            else:
                out.append(f"  {err.code} PUT {path}: {text}")
        except OSError as err:
            out.append(
                f"  skipped: no server at {base} ({err}). Start it (python3 dev.py serve) and "
                "run `engage demo` again for the demo campaigns."
            )
            break
    return out
