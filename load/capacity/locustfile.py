"""The capacity run's Locust users and ramp (loaded by `python -m load.capacity`, not by hand).

Every write is a real write: each iteration of `FreshMember` is a member never seen before
(dev login with a new code creates it), who checks in (a first check-in: one transaction) and
spins (a free spin: one draw). `BoardReader`s read the top 100 with their own rank. Users do
not wait between requests (a closed loop): the ramp raises the number of users step by step
until the server saturates. Every request is logged to `<out>/requests-<pid>.jsonl` (time,
kind, milliseconds, status, error code), which the analysis reads; with `--processes` each
worker process writes its own file.

Two phases, two Locust runs (ENGAGE_CAPACITY_PHASE): `reference` runs `LiveProbe` alone, a
closed loop on the bare `GET /health/live` for PLAN["reference"]["s"] seconds at
PLAN["reference"]["users"] users (the figure every throughput is divided by: the performance
targets are ratios to it); `ramp` (the default) runs the steps with `FreshMember` and
`BoardReader`. The command picks the classes of each phase on Locust's command line.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from pathlib import Path

from locust import FastHttpUser, LoadTestShape, events, task

PLAN = json.loads(Path(os.environ["ENGAGE_CAPACITY_PLAN"]).read_text())
SEED = json.loads(Path(PLAN["seed"]).read_text())
OUT = Path(PLAN["out"])
RUN = PLAN["run"]
_log = None
_seq = itertools.count()


def _logfile():  # type: ignore[no-untyped-def]
    global _log
    if _log is None:
        _log = (OUT / f"requests-{os.getpid()}.jsonl").open("a", buffering=1 << 16)
    return _log


@events.request.add_listener
def _record(
    request_type, name, response_time, response_length, response=None, exception=None, **kw
):  # type: ignore[no-untyped-def]
    status = getattr(response, "status_code", 0) or 0
    code = ""
    if status >= 400:
        try:
            code = response.json()["error"]["code"]
        except Exception:
            code = "NO_ERROR_BODY"
    elif exception is not None and not status:
        code = type(exception).__name__
    _logfile().write(
        json.dumps([round(time.time(), 3), name, round(response_time, 2), status, code]) + "\n"
    )


@events.quitting.add_listener
def _close(**_):  # type: ignore[no-untyped-def]
    if _log is not None:
        _log.flush()


def _ok(resp, name: str) -> dict | None:  # type: ignore[no-untyped-def]
    if resp.status_code != 200:
        resp.failure(f"{resp.status_code}")
        return None
    return resp.json()  # type: ignore[no-any-return]


class FreshMember(FastHttpUser):
    """A member opening the mini-program for the first time: login, check in, spin."""

    weight = PLAN["mix"]["fresh"]

    def wait_time(self) -> float:  # type: ignore[override]
        return 0.0

    @task
    def first_visit(self) -> None:
        code = f"dev:cap-{RUN}-{os.getpid()}-{next(_seq)}"
        with self.client.post(
            "/v1/auth/wechat",
            json={"appId": SEED["appId"], "code": code},
            name="login",
            catch_response=True,
        ) as resp:
            body = _ok(resp, "login")
        if body is None:
            return
        auth = {"Authorization": f"Bearer {body['accessToken']}"}
        with self.client.post(
            f"/v1/checkins/{SEED['campaign']}",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            name="checkin",
            catch_response=True,
        ) as resp:
            got = _ok(resp, "checkin")
            if got is not None and got.get("replayed"):
                resp.failure("a fresh member's check-in was a replay")
        with self.client.post(
            f"/v1/wheels/{SEED['wheel']}/spins",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            name="spin",
            catch_response=True,
        ) as resp:
            _ok(resp, "spin")


class BoardReader(FastHttpUser):
    """A seeded member reading the sale board: the top 100 and their own rank."""

    weight = PLAN["mix"]["board"]

    def wait_time(self) -> float:  # type: ignore[override]
        return 0.0

    def on_start(self) -> None:
        members = SEED["members"]
        m = members[(os.getpid() * 7919 + next(_seq)) % len(members)]
        r = self.client.post(
            "/v1/auth/wechat",
            json={"appId": SEED["appId"], "code": f"dev:{m['openid']}"},
            name="login (reader)",
        )
        self.auth = {"Authorization": f"Bearer {r.json()['accessToken']}"} if r.ok else {}

    @task
    def board(self) -> None:
        with self.client.get(
            f"/v1/leaderboards/{SEED['board']}",
            headers=self.auth,
            params={"limit": 100},
            name="board",
            catch_response=True,
        ) as resp:
            body = _ok(resp, "board")
            if body is not None and "me" not in body:
                resp.failure("no `me` in the board")


class LiveProbe(FastHttpUser):
    """The reference phase: the bare /health/live, no wait (its ceiling on this server)."""

    def wait_time(self) -> float:  # type: ignore[override]
        return 0.0

    @task
    def live(self) -> None:
        with self.client.get("/health/live", name="live", catch_response=True) as resp:
            body = _ok(resp, "live")
            if body is not None and body != {"status": "ok"}:
                resp.failure(f"unexpected body {resp.text[:100]!r}")


PHASE = os.environ.get("ENGAGE_CAPACITY_PHASE", "ramp")


class Ramp(LoadTestShape):
    """Users step up: PLAN["steps"] users, each held PLAN["step_s"] seconds, then stop. In the
    reference phase: PLAN["reference"]["users"] for PLAN["reference"]["s"] seconds."""

    def tick(self):  # type: ignore[no-untyped-def]
        t = self.get_run_time()
        if PHASE == "reference":
            ref = PLAN["reference"]
            return None if t >= ref["s"] else (ref["users"], max(ref["users"], 50))
        i = int(t // PLAN["step_s"])
        if i >= len(PLAN["steps"]):
            return None
        users = PLAN["steps"][i]
        return users, max(users, 50)
