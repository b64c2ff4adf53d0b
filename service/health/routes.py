"""Service endpoints: liveness, readiness (PostgreSQL and Redis reachable), dev clock hook."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Response, Router, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from msgspec import Meta

from service.core.apidoc import errors
from service.core.constraints import AwareDatetime, problem, validation_failed
from service.core.errors import DomainError
from service.core.http import get_ctx, json_response, operator_principal
from service.core.tenancy import Operator


class Live(msgspec.Struct):
    status: str


class Ready(msgspec.Struct):
    status: str
    postgresql: bool
    redis: bool


_LIVE = msgspec.json.encode(Live("ok"))


@errors(dependencies=False)
@get("/health/live", summary="Liveness", tags=["service"])
async def live() -> Response[Live]:
    # Pre-encoded once: the body is Live's JSON, documented by the return annotation.
    return Response(content=_LIVE, media_type="application/json")  # type: ignore[arg-type]


@errors()
@get(
    "/health/ready",
    summary="Readiness: PostgreSQL and Redis reachable",
    description=(
        "200 with both checks when ready; otherwise 503 with the one error shape, code "
        "`DEPENDENCY_UNAVAILABLE` and `details` naming which dependency failed."
    ),
    tags=["service"],
    responses={},
)
async def ready(state: State) -> Response[Ready]:
    ctx = get_ctx(state)

    async def redis_ok() -> bool:
        with contextlib.suppress(Exception):
            return bool(await asyncio.wait_for(ctx.redis.ping(), 1.0))
        return False

    async def pg_ok() -> bool:
        # The pool's acquire timeout is db_timeout_s; a probe must answer faster than that.
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(ctx.db.ping(), 1.5)
        return False

    pg, rd = await asyncio.gather(pg_ok(), redis_ok())
    if not (pg and rd):
        # The one error shape, like every other failure; load balancers only read the status.
        raise DomainError(
            "DEPENDENCY_UNAVAILABLE",
            details={"postgresql": pg, "redis": rd},
            headers={"Retry-After": "1"},
        )
    return json_response(Ready("ok", pg, rd))


MAX_SHIFT_S = 100 * 366 * 86400


class ClockIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Shift the service clock: set ``now`` (ISO 8601) or ``advanceSeconds``; empty resets."""

    now: AwareDatetime | None = None
    advance_seconds: (
        Annotated[
            int,
            Meta(
                ge=-MAX_SHIFT_S,
                le=MAX_SHIFT_S,
                description="Seconds to move the clock by; at most 100 years either way.",
            ),
        ]
        | None
    ) = None


class ClockOut(msgspec.Struct, rename="camel"):
    now: datetime
    offset_seconds: float


DEV_CLOCK_KEY = "devclock:offset"


@post(
    "/dev/clock",
    status_code=200,
    summary="Shift the service clock (dev and demos only)",
    tags=["dev"],
    opt={"scope": "admin"},
    include_in_schema=False,
)
async def set_clock(
    data: JSONBody[ClockIn], state: State, operator: NamedDependency[Operator]
) -> ClockOut:
    ctx = get_ctx(state)
    if not ctx.settings.dev_clock_enabled:
        raise DomainError("NOT_FOUND")
    clock = ctx.clock
    current = getattr(clock, "offset", timedelta(0))
    real_now = datetime.now(UTC)
    if data.now is not None:
        offset = data.now - real_now
    elif data.advance_seconds is not None:
        offset = current + timedelta(seconds=data.advance_seconds)
    else:
        offset = timedelta(0)
    try:
        real_now + offset
    except OverflowError:
        raise validation_failed(
            [
                problem(
                    "body",
                    "advanceSeconds",
                    "OUT_OF_RANGE",
                    "the shifted clock would leave the years 1-9999",
                )
            ]
        ) from None
    await ctx.redis.set(ctx.keys.global_(DEV_CLOCK_KEY), str(offset.total_seconds()))
    clock.offset = offset  # type: ignore[attr-defined]
    return ClockOut(ctx.clock.now(), offset.total_seconds())


service_router = Router(path="/", route_handlers=[live, ready])
dev_router = Router(
    path="/admin/v1",
    route_handlers=[set_clock],
    dependencies={"operator": Provide(operator_principal)},
)
