"""Seed a load-test tenant: tenant, API key and dev mini-program app via the CLI, members via HTTP.

    python load/seed.py --host http://127.0.0.1:8311 --members 200

Run it with the same ENGAGE_DATABASE_URL (or ENGAGE_DATA_DIR, for the embedded servers) as the
server under test: the CLI writes to that database. Writes load/.seed.json (it holds an API
key: it is git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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


async def create_members(host: str, seed: dict, n: int, login: str, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=host, timeout=30) as client:

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
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--tenant", default="load", help="tenant slug (created when missing)")
    p.add_argument("--login", choices=["dev", "h5"], default="dev")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--out", default=str(HERE / ".seed.json"))
    args = p.parse_args()

    code, out = engage("tenant", "create", args.tenant, "--name", f"Load test {args.tenant}")
    if code not in (0, 1):  # 1: the tenant exists already, which is fine
        raise SystemExit(f"seed: tenant create failed:\n{out}")
    code, out = engage("apikey", "create", "--tenant", args.tenant, "--scopes", "members")
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
    asyncio.run(create_members(args.host, seed, args.members, args.login, args.concurrency))
    Path(args.out).write_text(json.dumps(seed, indent=1))
    print(f"seeded {len(seed['members'])} members of tenant {args.tenant!r} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
