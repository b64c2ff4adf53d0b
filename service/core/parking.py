"""Per-definition isolation for outbox subscribers: one bad definition never stops the others.

A subscriber such as the boards one applies each event to many operator definitions (boards;
later badges, team PKs). When applying one definition raises (not an outage: a bug or a bad
stored config), that definition alone is *parked*: a ``parked_definitions`` row records the
feature, the definition, why (``reason``), when (``parked_at``) and the outbox position of the
first event it missed. The subscriber skips parked definitions, so every other definition,
feature and tenant keeps counting and no event goes to the dead letters for it.

A correction (the operator's PUT) sets the row ``resuming``; the dispatcher then replays the
events since that position to the feature's catch-up function for that one definition (which
must be idempotent per event, like every handler), and deletes the row. If the catch-up fails
again, the definition is parked again with the new reason.

Usage by a feature::

    parked = await parking.parked_ids(conn, FEATURE, ids)       # skip these
    ...except Exception as exc: await parking.park(ctx, FEATURE, tenant, id, exc, events)
    dispatcher.on_catch_up(FEATURE, fn)                          # fn(ctx, events, id)
    await parking.resume(conn, FEATURE, id)                      # in the correcting PUT
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

if TYPE_CHECKING:
    from service.core.context import Context
    from service.core.outbox import Event

log = structlog.get_logger("engage.parking")

_EARLIER = (
    "(EXCLUDED.from_txid, EXCLUDED.from_id) < "
    "(parked_definitions.from_txid, parked_definitions.from_id)"
)

CatchUp = Callable[["Context", list["Event"], int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Parked:
    state: str  # parked | resuming
    reason: str
    parked_at: datetime


def reason_of(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


async def park(
    ctx: Context,
    feature: str,
    tenant_id: int,
    definition_id: int,
    exc: BaseException,
    events: Sequence[Event],
    position: tuple[int, int] | None = None,
) -> None:
    """Park a definition (own connection: the caller's transaction may be aborted). It missed
    ``events`` (their earliest outbox position is kept) or, found broken outside delivery,
    everything from ``position`` on. Parking again keeps the earliest missed position."""
    first = min(((e.txid, e.id) for e in events), default=position or (0, 0))
    reason = reason_of(exc)
    async with ctx.db.connection() as conn:
        await conn.execute(
            "INSERT INTO parked_definitions (feature, definition_id, tenant_id, state, reason, "
            "parked_at, from_txid, from_id) VALUES ($1, $2, $3, 'parked', $4, $5, $6, $7) "
            "ON CONFLICT (feature, definition_id) DO UPDATE SET state = 'parked', "
            "reason = EXCLUDED.reason, parked_at = EXCLUDED.parked_at, "
            f"from_txid = CASE WHEN {_EARLIER} THEN EXCLUDED.from_txid "
            "ELSE parked_definitions.from_txid END, "
            f"from_id = CASE WHEN {_EARLIER} THEN EXCLUDED.from_id "
            "ELSE parked_definitions.from_id END",
            feature,
            definition_id,
            tenant_id,
            reason,
            ctx.clock.now(),
            first[0],
            first[1],
        )
    log.error(
        "definition parked",
        feature=feature,
        definition=definition_id,
        tenant=tenant_id,
        reason=reason,
    )


async def parked_ids(conn: asyncpg.Connection, feature: str, ids: Sequence[int]) -> set[int]:
    """The definitions among ``ids`` its subscriber must skip (parked, not resuming)."""
    if not ids:
        return set()
    rows = await conn.fetch(
        "SELECT definition_id FROM parked_definitions WHERE feature = $1 "
        "AND definition_id = ANY($2::bigint[]) AND state = 'parked'",
        feature,
        list(ids),
    )
    return {r["definition_id"] for r in rows}


async def state_of(conn: asyncpg.Connection, feature: str, definition_id: int) -> Parked | None:
    row = await conn.fetchrow(
        "SELECT state, reason, parked_at FROM parked_definitions "
        "WHERE feature = $1 AND definition_id = $2",
        feature,
        definition_id,
    )
    return None if row is None else Parked(row["state"], row["reason"], row["parked_at"])


async def states_of(
    conn: asyncpg.Connection, feature: str, ids: Sequence[int]
) -> dict[int, Parked]:
    rows = await conn.fetch(
        "SELECT definition_id, state, reason, parked_at FROM parked_definitions "
        "WHERE feature = $1 AND definition_id = ANY($2::bigint[])",
        feature,
        list(ids),
    )
    return {r["definition_id"]: Parked(r["state"], r["reason"], r["parked_at"]) for r in rows}


async def resume(conn: asyncpg.Connection, feature: str, definition_id: int) -> bool:
    """After a correction (in the caller's transaction): let the dispatcher catch it up."""
    status = await conn.execute(
        "UPDATE parked_definitions SET state = 'resuming' "
        "WHERE feature = $1 AND definition_id = $2",
        feature,
        definition_id,
    )
    return status.endswith(" 1")


async def forget(conn: asyncpg.Connection, feature: str, definition_id: int) -> None:
    await conn.execute(
        "DELETE FROM parked_definitions WHERE feature = $1 AND definition_id = $2",
        feature,
        definition_id,
    )


async def catch_up(ctx: Context, feature: str, fn: CatchUp, batch_size: int = 500) -> int:
    """Replay, to each ``resuming`` definition of the feature, the events of its tenant since
    it was parked (up to what is committed), then delete its row. Returns events replayed."""
    from service.core.outbox import event_of, is_outage

    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT definition_id, tenant_id, from_txid, from_id FROM parked_definitions "
            "WHERE feature = $1 AND state = 'resuming' ORDER BY definition_id",
            feature,
        )
    total = 0
    for r in rows:
        pos: tuple[int, int] = (r["from_txid"], r["from_id"])
        try:
            while True:
                async with ctx.db.connection() as conn:
                    got = await conn.fetch(
                        "SELECT id, txid, event_id, tenant_id, type, member_id, payload, "
                        "occurred_at FROM outbox WHERE tenant_id = $1 AND (txid, id) >= ($2, $3) "
                        "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                        "ORDER BY txid, id LIMIT $4",
                        r["tenant_id"],
                        pos[0],
                        pos[1],
                        batch_size,
                    )
                if not got:
                    break
                await fn(ctx, [event_of(e) for e in got], r["definition_id"])
                total += len(got)
                pos = (got[-1]["txid"], got[-1]["id"] + 1)
                if len(got) < batch_size:
                    break
        except Exception as exc:
            if is_outage(exc):
                raise
            async with ctx.db.connection() as conn:
                await conn.execute(
                    # The earlier of where the replay failed and where a delivery meanwhile
                    # parked it again.
                    "UPDATE parked_definitions SET state = 'parked', reason = $3, parked_at = $4, "
                    "from_txid = CASE WHEN ($5, $6) < (from_txid, from_id) OR state = 'resuming' "
                    "THEN $5 ELSE from_txid END, "
                    "from_id = CASE WHEN ($5, $6) < (from_txid, from_id) OR state = 'resuming' "
                    "THEN $6 ELSE from_id END WHERE feature = $1 AND definition_id = $2",
                    feature,
                    r["definition_id"],
                    reason_of(exc),
                    ctx.clock.now(),
                    pos[0],
                    pos[1],
                )
            log.error("definition parked again", feature=feature, definition=r["definition_id"])
            continue
        async with ctx.db.connection() as conn:
            await conn.execute(
                "DELETE FROM parked_definitions WHERE feature = $1 AND definition_id = $2 "
                "AND state = 'resuming'",
                feature,
                r["definition_id"],
            )
        log.info("definition resumed", feature=feature, definition=r["definition_id"])
    return total


def as_dict(p: Parked | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"state": p.state, "reason": p.reason, "parkedAt": p.parked_at.isoformat()}
