"""Back-off between the bounded retries of a lost race (a single-statement write whose guard
refused because another write of the same member committed first: check-in, make-up, spin).

Waiting a random time ("full jitter": uniform in [0, base * 2**attempt], the exponent capped)
spreads the member's competing requests apart, so each retry is likelier to win than the
last instead of all of them colliding again at once. The jitter comes from ``ctx.jitter``
(injected, never the business ``ctx.rng``); the wait is a real ``asyncio.sleep``, independent
of the injected clock (a pinned clock must not stop retries from spacing out).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.core.context import Context

MAX_EXPONENT = 5


def back_off_s(ctx: Context, attempt: int, base_s: float) -> float:
    """Seconds to wait after lost race number ``attempt`` (0-based): uniform in
    [0, base_s * 2**min(attempt, MAX_EXPONENT)] from ``ctx.jitter``."""
    return ctx.jitter.uniform(0, base_s * 2 ** min(attempt, MAX_EXPONENT))


async def back_off(ctx: Context, attempt: int, base_s: float) -> None:
    """Sleep ``back_off_s(ctx, attempt, base_s)`` seconds."""
    await asyncio.sleep(back_off_s(ctx, attempt, base_s))
