"""`engage bench pk`: events per second through the PK subscriber (batches of 1,000 events, a
live PK of two teams) next to the ingestion rate of the same events without PKs, in the same
run and process; then `GET /v1/pks/{key}` against `/health/live` over HTTP. Run it against a
scratch database: it creates a tenant, a rule, two teams, a PK and members.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from load.bench import subscriber as sub


async def _subscriber_vs_ingestion(ctx, batches: int, batch: int, members: int) -> dict:  # type: ignore[no-untyped-def]
    from service.core.outbox import Event
    from service.core.uow import unit_of_work
    from service.pks import service as pks
    from service.pks.schemas import PkIn
    from service.teams import service as teams
    from service.teams.schemas import MembershipIn, TeamIn

    # a tenant, its rule, members, then the timed ingestion (see subscriber.ingest_batches)
    ing = await sub.ingest_batches(ctx, "pkbench-", "points", batches, batch, members)
    now, tid = ing.now, ing.tenant_id
    half = members // 2
    async with unit_of_work(ctx) as uow:
        for key, ids in (("red", range(half)), ("blue", range(half, members))):
            await teams.put_team(uow, tid, key, TeamIn(name=key, kind="store", team_set="stores"))
            await teams.set_members(
                uow,
                tid,
                key,
                MembershipIn(add=[f"m-{i}" for i in ids]),
            )
    async with unit_of_work(ctx) as uow:
        await pks.put_pk(
            uow,
            tid,
            "bench",
            PkIn(
                name="bench",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=1),
                metric="points",
                teams=["red", "blue"],
            ),
        )
    rows = await sub.outbox_rows(ctx, ing, pks.EVENT_TYPES)
    # The counted events happen after the memberships began (they were ingested before).
    later = ctx.clock.now() + timedelta(seconds=1)
    evs = [Event(r[0], r[1], r[2], r[3], r[4], r[5], later) for r in rows]
    pk_s = await sub.time_subscriber(pks.on_events, ctx, evs, batch)
    async with ctx.db.connection() as conn:
        counted = await conn.fetchval(
            "SELECT coalesce(sum(total), 0) FROM pk_team_scores s JOIN pks p ON p.id = s.pk_id "
            "WHERE p.tenant_id = $1",
            tid,
        )
    return {**sub.summary(ing, evs, pk_s), "pointsCounted": int(counted)}


def run(args: argparse.Namespace) -> int:
    with sub.scratch_run(args, _subscriber_vs_ingestion) as (out, api_key, env):
        # Warm-up (not measured): the first read rebuilds the view, per-process caches fill.
        return sub.reads_vs_live(
            args,
            out,
            api_key,
            env,
            path="/v1/pks/bench",
            subscriber_row=("PK subscriber, 1 live PK (events/s)", "ingestion, no PKs"),
            read_row="GET /v1/pks/{key} (req/s)",
            key="pk",
            warm_up=True,
        )


def add_parser(bench: argparse._SubParsersAction) -> None:
    b = bench.add_parser(
        "pk", help="events/s through the PK subscriber vs ingestion; GET /v1/pks vs live"
    )
    sub.add_arguments(b, tokens_help="members who read the board")
    b.set_defaults(fn=run)
