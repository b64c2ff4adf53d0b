"""Daily figures of one tenant, per day in the tenant's time zone (operator API and console).

Each figure is one grouped query over the table that records it (check-ins, draws, ledger,
members, events, dead letters); days without activity are present with zeros.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import asyncpg
import msgspec

from service.core.context import Context

FIGURES: dict[str, str] = {
    "checkins": "SELECT day AS d, count(*) FILTER (WHERE kind = 'daily') AS n, "
    "count(*) FILTER (WHERE kind = 'makeup') AS m FROM checkins "
    "WHERE tenant_id = $1 AND day BETWEEN $3 AND $4 GROUP BY 1",
    "spins": "SELECT (created_at AT TIME ZONE $2)::date AS d, count(*) AS n, "
    "count(*) FILTER (WHERE kind <> 'nothing') AS m FROM wheel_draws WHERE tenant_id = $1 "
    "AND created_at >= ($3::date::timestamp AT TIME ZONE $2) "
    "AND created_at < (($4::date + 1)::timestamp AT TIME ZONE $2) GROUP BY 1",
    "points": "SELECT (created_at AT TIME ZONE $2)::date AS d, "
    "COALESCE(sum(delta) FILTER (WHERE delta > 0), 0) AS n, "
    "COALESCE(-sum(delta) FILTER (WHERE delta < 0), 0) AS m FROM ledger_entries "
    "WHERE tenant_id = $1 AND currency = 'points' "
    "AND created_at >= ($3::date::timestamp AT TIME ZONE $2) "
    "AND created_at < (($4::date + 1)::timestamp AT TIME ZONE $2) GROUP BY 1",
    "members": "SELECT (created_at AT TIME ZONE $2)::date AS d, count(*) AS n, 0 AS m "
    "FROM members WHERE tenant_id = $1 "
    "AND created_at >= ($3::date::timestamp AT TIME ZONE $2) "
    "AND created_at < (($4::date + 1)::timestamp AT TIME ZONE $2) GROUP BY 1",
}


class DayFigures(msgspec.Struct, rename="camel"):
    day: date
    checkins: int = 0
    makeups: int = 0
    spins: int = 0
    wins: int = 0
    points_issued: int = 0
    points_spent: int = 0
    new_members: int = 0


class StatsOut(msgspec.Struct, rename="camel"):
    timezone: str
    days: list[DayFigures]
    dead_letters: int


_FIELDS = {
    "checkins": ("checkins", "makeups"),
    "spins": ("spins", "wins"),
    "points": ("points_issued", "points_spent"),
    "members": ("new_members", None),
}


async def daily(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, timezone: str, days: int
) -> StatsOut:
    """The last ``days`` local days up to today, oldest first."""
    today = ctx.clock.now().astimezone(_zone(timezone)).date()
    first = today - timedelta(days=days - 1)
    out = {first + timedelta(days=i): DayFigures(first + timedelta(days=i)) for i in range(days)}
    for name, sql in FIGURES.items():
        args = (
            (tenant_id, first, today) if name == "checkins" else (tenant_id, timezone, first, today)
        )
        if name == "checkins":
            sql = sql.replace("$3", "$2").replace("$4", "$3")
        for r in await conn.fetch(sql, *args):
            row = out.get(r["d"])
            if row is None:
                continue
            a, b = _FIELDS[name]
            setattr(row, a, int(r["n"]))
            if b:
                setattr(row, b, int(r["m"]))
    dead = await conn.fetchval(
        "SELECT count(*) FROM outbox_dead_letters d JOIN outbox o ON o.id = d.outbox_id "
        "WHERE o.tenant_id = $1",
        tenant_id,
    )
    return StatsOut(timezone, list(out.values()), int(dead or 0))


def _zone(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def to_csv(stats: StatsOut) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    names = [f for f in DayFigures.__struct_fields__]
    w.writerow([_camel(n) for n in names])
    for d in stats.days:
        w.writerow([getattr(d, n).isoformat() if n == "day" else getattr(d, n) for n in names])
    return buf.getvalue()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
