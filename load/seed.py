"""Seed everything a sale-day load run needs: tenant, key, app, members, campaign, wheel, board.

    python load/seed.py --host http://127.0.0.1:8311 --members 1000

The tenant, the operator API key and the dev mini-program app are made with the CLI, so run it
with the same ENGAGE_DATABASE_URL (or ENGAGE_DATA_DIR, for the embedded servers) as the server
under test. Members, the check-in campaign, the wheel, the weekly board and the event rule go
through the operator API of that server, as a brand's back end would. Writes load/.seed.json
(it holds an API key: it is git-ignored). Running it again re-uses the tenant and replaces the
configs with the same keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The keys the scenarios read from the seed file; fixed so a rerun replaces, not adds.
CAMPAIGN_KEY = "sale-daily"
WHEEL_KEY = "sale-wheel"
BOARD_KEY = "sale-week"
RULE_KEY = "sale-order-points"
# Scopes of the seeded operator key: minting member tokens, putting the configs, posting events.
SCOPES = "members,config,events"


def configs(now: datetime) -> dict[str, tuple[str, dict[str, Any]]]:
    """The operator PUTs a run needs, as {what: (path, body)}; tests PUT them into the app.

    The windows open a day before `now` so the campaign and the wheel are live whatever the
    server's clock or time zone, and end a month later so a long soak stays inside them.
    """
    starts = (now - timedelta(days=1)).astimezone(UTC).isoformat()
    ends = (now + timedelta(days=30)).astimezone(UTC).isoformat()
    campaign = {
        "startsAt": starts,
        "state": "live",
        "title": "双11 每日签到",
        "baseReward": {"points": 10},
        "streakRewards": [{"day": 3, "points": 20}, {"day": 7, "points": 100, "growth": 5}],
        "makeup": {"perMonth": 2, "costPoints": 30, "windowDays": 7},
    }
    wheel = {
        "name": "双11 幸运大转盘",
        "startsAt": starts,
        "endsAt": ends,
        "state": "live",
        # Three free spins, then paid ones up to a daily cap: a busy member meets the cap (409)
        # within a minute, which is the business answer the wheel scenario expects to see.
        "freeSpinsPerDay": 3,
        "costPoints": 10,
        "maxSpinsPerDay": 6,
        "consolationPrize": "thanks",
        "prizes": [
            # A handful of big prizes: the stock runs out early in a run, so the run also
            # measures the out-of-stock path (consolation) under contention.
            {"key": "phone", "name": "手机", "kind": "physical", "weight": 1, "totalStock": 5},
            {"key": "pts20", "name": "20 积分", "kind": "points", "weight": 25, "value": 20},
            {"key": "pts5", "name": "5 积分", "kind": "points", "weight": 30, "value": 5},
            {"key": "growth", "name": "成长值", "kind": "growth", "weight": 14, "value": 3},
            {"key": "thanks", "name": "谢谢参与", "kind": "nothing", "weight": 30},
        ],
    }
    board = {"metric": "points", "period": "weekly"}
    rule = {
        "eventType": "order.paid",
        "effect": {"kind": "credit", "currency": "points", "mode": "per_unit", "amount": 1},
        "description": "1 point per yuan",
    }
    return {
        "campaign": (f"/admin/v1/checkin-campaigns/{CAMPAIGN_KEY}", campaign),
        "wheel": (f"/admin/v1/wheels/{WHEEL_KEY}", wheel),
        "board": (f"/admin/v1/leaderboards/{BOARD_KEY}", board),
        "rule": (f"/admin/v1/rules/{RULE_KEY}", rule),
    }


def engage(*args: str) -> tuple[int, str]:
    """Run an `engage` CLI command with this interpreter; (exit code, stdout)."""
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout


def json_line(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"seed: expected a JSON line from the CLI, got:\n{out}")


async def put_configs(client: httpx.AsyncClient, seed: dict) -> None:
    for what, (path, body) in configs(datetime.now(UTC)).items():
        r = await client.put(path, json=body, headers={"Authorization": f"Bearer {seed['apiKey']}"})
        if r.status_code != 200:
            raise SystemExit(f"seed: {what} {path}: {r.status_code} {r.text[:500]}")
    seed.update(campaign=CAMPAIGN_KEY, wheel=WHEEL_KEY, board=BOARD_KEY, rule=RULE_KEY)


async def seed_server(host: str, seed: dict, n: int, login: str, concurrency: int) -> None:
    async with httpx.AsyncClient(base_url=host, timeout=30) as client:
        # Configs first: members who check in the moment the run starts find a live campaign.
        await put_configs(client, seed)
        await create_members(client, seed, n, login, concurrency)


async def create_members(
    client: httpx.AsyncClient, seed: dict, n: int, login: str, concurrency: int
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict:
        openid, external_id = f"load-{seed['tenant']}-{i}", f"load-{i}"
        async with sem:
            if login == "h5":
                r = await client.post(
                    f"/admin/v1/members/{external_id}/token",
                    headers={"Authorization": f"Bearer {seed['apiKey']}"},
                )
            else:
                r = await client.post(
                    "/v1/auth/wechat",
                    json={"appId": seed["appId"], "code": f"dev:{openid}"},
                )
        if r.status_code != 200:
            raise SystemExit(f"seed: member {i}: {r.status_code} {r.text[:300]}")
        return {
            "openid": openid,
            "externalId": external_id,
            "memberId": r.json()["member"]["id"],
        }

    seed["members"] = await asyncio.gather(*[one(i) for i in range(n)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="http://127.0.0.1:8311", help="the server under test")
    # At least the peak number of users: each simulated user plays its own member, and two users
    # sharing one would race on the same check-in Idempotency-Key (409 IDEMPOTENCY_IN_FLIGHT).
    p.add_argument("--members", type=int, default=1000)
    p.add_argument("--tenant", default="load", help="tenant slug (created when missing)")
    p.add_argument("--login", choices=["dev", "h5"], default="dev")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--out", default=str(HERE / ".seed.json"))
    args = p.parse_args()

    code, out = engage("tenant", "create", args.tenant, "--name", f"Load test {args.tenant}")
    if code not in (0, 1):  # 1: the tenant exists already, which is fine
        raise SystemExit(f"seed: tenant create failed:\n{out}")
    code, out = engage("apikey", "create", "--tenant", args.tenant, "--scopes", SCOPES)
    if code != 0:
        raise SystemExit(f"seed: apikey create failed:\n{out}")
    api_key = json_line(out)["apiKey"]
    app_id = f"wxload{secrets.token_hex(4)}"
    code, out = engage(
        "app", "register", "--tenant", args.tenant, "--app-id", app_id, "--verifier", "dev"
    )
    if code != 0:
        raise SystemExit(f"seed: app register failed:\n{out}")

    seed = {"host": args.host, "tenant": args.tenant, "appId": app_id, "apiKey": api_key}
    asyncio.run(seed_server(args.host, seed, args.members, args.login, args.concurrency))
    Path(args.out).write_text(json.dumps(seed, indent=1))
    print(
        f"seeded {len(seed['members'])} members, campaign {CAMPAIGN_KEY!r}, wheel {WHEEL_KEY!r}, "
        f"board {BOARD_KEY!r} and rule {RULE_KEY!r} of tenant {args.tenant!r} into {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
