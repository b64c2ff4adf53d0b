"""The hot paths of issue 10, one small adapter each.

A durable write's adapter says (1) what the HTTP load sends (``load``: every request a real
write: a member who has not checked in or spun today, a new event id, a new credit), (2) how to
make ONE real request in process (``one``), whose recorded statements are the path's pgbench
reference (the SQL the service's repository functions executed, see load/bench/capture.py) and
whose round trips are the path's count, and (3) how many ledger entries one request writes
(``entries``), to check afterwards that every answered request was a real write.

After the single-statement rewrites (h10-writes / h10-checkin / h10-spin) nothing here has to
change: the recording follows whatever the service executes. To pin a path's reference to a
given repository statement instead, set ``reference`` (it receives the recorded statements and
returns the ones pgbench replays, e.g. only those whose ``source`` is
``service.checkins.repository.<function>``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from load.bench.capture import Fresh, Statement
from load.bench.kit import Request

WHEEL_STARTS = "2020-01-01T00:00:00+00:00"
WHEEL_ENDS = "2100-01-01T00:00:00+00:00"


@dataclass
class Setup:
    """What the run created before measuring (see __main__.setup)."""

    tenant_id: int
    api_key: str
    members: int  # externalIds b1..bN exist
    fresh_tokens: list[str]  # members who have neither checked in nor spun
    pool_tokens: list[str]  # members holding points (paid spins, reads, PK teams)
    now: datetime
    pool_ids: tuple[int, int]  # ids of the pool members (contiguous)
    # members p1..pN holding 1 point each: pgbench's paid spins (each once), credits and events
    pgbench_pool: tuple[int, int] = (0, 0)
    made: list[int] = field(default_factory=lambda: [0])
    used: dict[str, int] = field(default_factory=dict)  # fresh tokens used, per feature

    def fresh(self, feature: str) -> list[str]:
        """Tokens of members who have not yet used ``feature`` (check-in, wheel) today."""
        return self.fresh_tokens[self.used.get(feature, 0) :]

    def consume(self, feature: str, n: int) -> None:
        self.used[feature] = self.used.get(feature, 0) + n

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def new_member(self, client: httpx.AsyncClient, points: int = 0) -> tuple[int, str]:
        """A member made for one recorded request: (member id, access token)."""
        self.made[0] += 1
        ext = f"rec-{self.made[0]}"
        r = await client.post(f"/admin/v1/members/{ext}/token", headers=self.admin)
        r.raise_for_status()
        if points:
            c = await client.post(
                f"/admin/v1/members/{ext}/points",
                headers=self.admin,
                json={"amount": points, "currency": "points", "reason": "bench"},
            )
            c.raise_for_status()
        return r.json()["member"]["id"], r.json()["accessToken"]


Send = Callable[[], Awaitable[httpx.Response]]
# Makes what one request needs (a member, points; not counted) and returns the values that
# must be fresh in every pgbench transaction and the request itself (counted, recorded).
One = Callable[[httpx.AsyncClient, Setup], Awaitable[tuple[Fresh, Send]]]


@dataclass
class WritePath:
    name: str
    load: Callable[[Setup], Request]
    one: One
    entries: int  # ledger entries one request writes
    fresh_group: str | None = None  # the feature whose fresh members the load uses up
    reference: Callable[[list[Statement]], list[Statement]] = lambda statements: statements


@dataclass
class ReadPath:
    name: str
    load: Callable[[Setup], Request]
    target: float  # ratio to /health/live
    target_note: str


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _check_in(client: httpx.AsyncClient, s: Setup) -> tuple[Fresh, Send]:
    member, token = await s.new_member(client)
    return Fresh(member), lambda: client.post("/v1/checkins/bench", headers=_bearer(token))


def _spin(wheel: str, points: int) -> One:
    """A spin of a new member; a paid one (``points``) replays in pgbench as a new member of
    the pgbench pool, who holds a point (one lot) to pay with."""

    async def one(client: httpx.AsyncClient, s: Setup) -> tuple[Fresh, Send]:
        member, token = await s.new_member(client, points)
        fresh = Fresh(member, pool=s.pgbench_pool, sequential=True) if points else Fresh(member)
        return fresh, lambda: client.post(f"/v1/wheels/{wheel}/spins", headers=_bearer(token))

    return one


async def _credit(client: httpx.AsyncClient, s: Setup) -> tuple[Fresh, Send]:
    member, _ = await s.new_member(client)
    ext = f"rec-{s.made[0]}"
    fresh = Fresh(member, pool=s.pgbench_pool, external=ext)
    return fresh, lambda: client.post(
        f"/admin/v1/members/{ext}/points",
        headers=s.admin,
        json={"amount": 10, "currency": "points", "reason": "bench"},
    )


async def _event(client: httpx.AsyncClient, s: Setup) -> tuple[Fresh, Send]:
    member, _ = await s.new_member(client)
    event_id = f"rec-event-{s.made[0]}"
    ext = f"rec-{s.made[0]}"
    body = event(s, event_id, ext)
    fresh = Fresh(member, keys=(event_id,), pool=s.pgbench_pool, external=ext)
    return fresh, lambda: client.post("/admin/v1/events", headers=s.admin, json=body)


def event(s: Setup, event_id: str, ext: str) -> dict[str, object]:
    return {
        "eventId": event_id,
        "externalId": ext,
        "type": "order.paid",
        "occurredAt": s.now.isoformat(),
        "value": 10,
    }


def _event_body(s: Setup) -> str:
    """A single event with an id new in the run ({n}) and this call (the salt)."""
    return json.dumps(event(s, f"bench-{secrets.token_hex(4)}-{{n}}", "b{r}"))


WRITES = [
    WritePath(
        "check-in",
        lambda s: Request("POST", "/v1/checkins/bench", tokens=s.fresh("checkin")),
        _check_in,
        entries=1,
        fresh_group="checkin",
    ),
    WritePath(
        "free spin",
        lambda s: Request("POST", "/v1/wheels/benchfree/spins", tokens=s.fresh("wheel")),
        _spin("benchfree", 0),
        entries=1,
        fresh_group="wheel",
    ),
    WritePath(
        "paid spin",
        lambda s: Request("POST", "/v1/wheels/benchpaid/spins", tokens=s.pool_tokens),
        _spin("benchpaid", 100),
        entries=2,
    ),
    WritePath(
        "points credit",
        lambda s: Request(
            "POST",
            "/admin/v1/members/b{r}/points",
            headers={**s.admin, "Content-Type": "application/json"},
            body='{"amount": 10, "currency": "points", "reason": "bench"}',
            modulus=s.members,
        ),
        _credit,
        entries=1,
    ),
    WritePath(
        "brand event",
        lambda s: Request(
            "POST",
            "/admin/v1/events",
            headers={**s.admin, "Content-Type": "application/json"},
            body=_event_body(s),
            modulus=s.members,
        ),
        _event,
        entries=1,
    ),
]

READS = [
    ReadPath(
        "board top 100 + my rank",
        lambda s: Request("GET", "/v1/leaderboards/bench?limit=100", tokens=s.pool_tokens),
        0.35,
        "issue 10",
    ),
    ReadPath(
        "around-me",
        lambda s: Request("GET", "/v1/leaderboards/bench/around-me?radius=5", tokens=s.pool_tokens),
        0.25,
        "issue 10",
    ),
    ReadPath("/v1/me", lambda s: Request("GET", "/v1/me", tokens=s.pool_tokens), 0.25, "issue 10"),
    ReadPath(
        "PK scoreboard",
        lambda s: Request("GET", "/v1/pks/bench", tokens=s.pool_tokens),
        0.25,
        "issue 13",
    ),
]


def configs(s: Setup) -> list[tuple[str, str, dict[str, object]]]:
    """The operator calls that create what the paths use: (method, path, body)."""
    only_points = {
        "prizes": [{"key": "pts", "name": "pts", "kind": "points", "weight": 1, "value": 10}],
        "consolationPrize": "pts",
    }
    wheel = {"name": "bench", "startsAt": WHEEL_STARTS, "endsAt": WHEEL_ENDS, "state": "live"}
    return [
        (
            "PUT",
            "/admin/v1/checkin-campaigns/bench",
            {"startsAt": WHEEL_STARTS, "state": "live", "baseReward": {"points": 10}},
        ),
        ("PUT", "/admin/v1/wheels/benchfree", {**wheel, **only_points, "freeSpinsPerDay": 1}),
        (
            "PUT",
            "/admin/v1/wheels/benchpaid",
            {**wheel, **only_points, "freeSpinsPerDay": 0, "costPoints": 1},
        ),
        (
            "PUT",
            "/admin/v1/rules/bench-order",
            {
                "eventType": "order.paid",
                "effect": {"kind": "credit", "currency": "points", "mode": "fixed", "amount": 1},
            },
        ),
        (
            "PUT",
            "/admin/v1/leaderboards/bench",
            {"metric": "points", "period": "weekly", "title": "bench"},
        ),
    ]
