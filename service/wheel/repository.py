"""SQL of the wheel: wheels and versions, stock guards, member state, draws, coupons, awards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from service.core import outbox
from service.wheel.rules import SpinWrite

WHEEL_COLUMNS = (
    "id, tenant_id, key, version, layout_version, config, seed, seed_hash, created_at, updated_at"
)


# ----------------------------------------------------------------------------- wheels


async def get_wheel(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {WHEEL_COLUMNS} FROM wheels WHERE tenant_id = $1 AND key = $2", tenant_id, key
    )


async def lock_wheel(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {WHEEL_COLUMNS} FROM wheels WHERE tenant_id = $1 AND key = $2 FOR UPDATE",
        tenant_id,
        key,
    )


async def insert_wheel(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    config: dict,
    seed: bytes,
    seed_hash: str,
    now: datetime,
) -> asyncpg.Record | None:
    """None when another request created the wheel first."""
    return await conn.fetchrow(
        "INSERT INTO wheels (tenant_id, key, version, layout_version, config, seed, seed_hash, "
        "created_at, updated_at) VALUES ($1, $2, 1, 1, $3, $4, $5, $6, $6) "
        f"ON CONFLICT (tenant_id, key) DO NOTHING RETURNING {WHEEL_COLUMNS}",
        tenant_id,
        key,
        config,
        seed,
        seed_hash,
        now,
    )


async def update_wheel(
    conn: asyncpg.Connection,
    wheel_id: int,
    config: dict,
    version: int,
    layout_version: int,
    now: datetime,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE wheels SET config = $2, version = $3, layout_version = $4, updated_at = $5 "
        f"WHERE id = $1 RETURNING {WHEEL_COLUMNS}",
        wheel_id,
        config,
        version,
        layout_version,
        now,
    )


async def insert_version(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    version: int,
    layout_version: int,
    config: dict,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO wheel_versions (tenant_id, wheel_id, version, layout_version, config, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        tenant_id,
        wheel_id,
        version,
        layout_version,
        config,
        now,
    )


async def version_configs(conn: asyncpg.Connection, wheel_id: int) -> dict[int, dict]:
    rows = await conn.fetch(
        "SELECT version, config FROM wheel_versions WHERE wheel_id = $1", wheel_id
    )
    return {r["version"]: r["config"] for r in rows}


async def all_wheels(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {WHEEL_COLUMNS} FROM wheels ORDER BY id")


# ----------------------------------------------------------------------------- stock guards


async def sync_stock(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, totals: list[tuple[str, int | None]]
) -> None:
    """Set each prize's total. A prize that becomes limited starts from the wins it already
    has (it was not counted while unlimited, to keep hot rows off the spin path)."""
    await conn.execute(
        "INSERT INTO wheel_prize_stock (tenant_id, wheel_id, prize_key, total, issued) "
        "SELECT $1, $2, k, t, (SELECT count(*) FROM wheel_draws d "
        "  WHERE d.wheel_id = $2 AND d.prize_key = k) "
        "FROM unnest($3::text[], $4::int[]) AS u(k, t) "
        "ON CONFLICT (wheel_id, prize_key) DO UPDATE SET total = EXCLUDED.total, "
        "issued = CASE WHEN wheel_prize_stock.total IS NULL THEN EXCLUDED.issued "
        "ELSE wheel_prize_stock.issued END",
        tenant_id,
        wheel_id,
        [k for k, _ in totals],
        [t for _, t in totals],
    )


async def stock_rows(conn: asyncpg.Connection, wheel_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT prize_key, total, issued FROM wheel_prize_stock WHERE wheel_id = $1", wheel_id
    )


async def day_rows(conn: asyncpg.Connection, wheel_id: int, since: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT prize_key, day, issued FROM wheel_prize_days WHERE wheel_id = $1 AND day >= $2",
        wheel_id,
        since,
    )


async def wins_by_prize(conn: asyncpg.Connection, wheel_id: int) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT prize_key, count(*) AS n FROM wheel_draws WHERE wheel_id = $1 GROUP BY prize_key",
        wheel_id,
    )
    return {r["prize_key"]: r["n"] for r in rows}


# ----------------------------------------------------------------------------- members


_AWARD_ID = "nextval(pg_get_serial_sequence('wheel_awards', 'id')) AS award_id"


async def spin_state(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    member_id: int,
    now: datetime,
    *,
    lock: bool,
) -> asyncpg.Record:
    """The member's counters (NULLs: never spun) and an id for the award this spin may give,
    in one round trip. Without ``lock`` a plain read: a spin planned from it that another
    spin overtakes collides on its draw's number (``record_spin``). With ``lock`` (inside a
    transaction) the row is created if needed and locked until commit: the member's spins
    queue instead of colliding."""
    if lock:
        return await conn.fetchrow(
            "WITH m AS (INSERT INTO wheel_members (tenant_id, wheel_id, member_id, spins, "
            "spins_day, free_used_day, pity, wins, updated_at) "
            "VALUES ($1, $2, $3, 0, 0, 0, 0, '{}', $4) ON CONFLICT (wheel_id, member_id) "
            "DO UPDATE SET updated_at = wheel_members.updated_at "
            "RETURNING spins, day, spins_day, free_used_day, pity, wins) "
            f"SELECT m.*, {_AWARD_ID} FROM m",
            tenant_id,
            wheel_id,
            member_id,
            now,
        )
    return await conn.fetchrow(
        f"SELECT m.spins, m.day, m.spins_day, m.free_used_day, m.pity, m.wins, {_AWARD_ID} "
        "FROM (SELECT 1) AS one LEFT JOIN wheel_members m "
        "ON m.wheel_id = $1 AND m.member_id = $2",
        wheel_id,
        member_id,
    )


async def get_member(
    conn: asyncpg.Connection, wheel_id: int, member_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, spins, day, spins_day, free_used_day, pity, wins FROM wheel_members "
        "WHERE wheel_id = $1 AND member_id = $2",
        wheel_id,
        member_id,
    )


# ----------------------------------------------------------------------------- draws

DRAW_COLUMNS = (
    "id, spin_id, member_id, spin_no, prize_key, slot_index, kind, value, table_version, "
    "layout_version, word_index, random_word, random_value, weight_total, stock_seen, pity, "
    "fallback, free, cost, day, created_at"
)


class _Params:
    """Numbered placeholders for a statement assembled from parts: ``p(value)`` -> ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{'::' + cast if cast else ''}"


#: Raised by ``record_spin`` when another spin of the member committed since the state was
#: read (both drew the same spin number): re-read and re-plan.
SPIN_NUMBER_TAKEN = "wheel_draws_one_per_spin"
#: The coupon pool had no free code (the award's check refuses a coupon without one).
POOL_EMPTY = "wheel_awards_coupon_has_code"
#: PostgreSQL's stock guards (a stale Redis let a win through that the counts refuse).
DAILY_STOCK_GUARD = "wheel_prize_days_within_limit"
TOTAL_STOCK_GUARD = "wheel_prize_stock_within_total"


@dataclass(frozen=True, slots=True)
class SpinRecorded:
    draw_id: int
    ledger_entries: Any  # the ledger's answer (decoded jsonb), None without postings
    award_id: int | None
    coupon_code: str | None


class _SpinSql:
    """The spin statement's parts, each a data-modifying CTE (see ``spin_statement``)."""

    def __init__(self, w: SpinWrite) -> None:
        self.w = w
        self.p = p = _Params()
        k = w.keys
        self.t, self.wid, self.mid, self.now = (
            p(k.tenant_id),
            p(k.wheel_id),
            p(k.member_id),
            p(k.now),
        )
        self.pk = p(w.prize.key)
        self.ctes: list[str] = []
        self.code = "NULL::text"
        self.award = "NULL::bigint"
        self.entries = "NULL::jsonb"

    def advance(self) -> None:
        a, p = self.w.advance, self.p
        self.ctes.append(
            "adv AS (INSERT INTO wheel_members AS m (tenant_id, wheel_id, member_id, spins, "
            "day, spins_day, free_used_day, pity, wins, updated_at) VALUES "
            f"({self.t}, {self.wid}, {self.mid}, {p(a.spins)}, {p(a.day)}, {p(a.spins_day)}, "
            f"{p(a.free_used_day)}, {p(a.pity)}, {p(a.wins)}, {self.now}) "
            "ON CONFLICT (wheel_id, member_id) DO UPDATE SET spins = EXCLUDED.spins, "
            "day = EXCLUDED.day, spins_day = EXCLUDED.spins_day, "
            "free_used_day = EXCLUDED.free_used_day, pity = EXCLUDED.pity, "
            "wins = EXCLUDED.wins, updated_at = EXCLUDED.updated_at)"
        )

    def draw(self) -> None:
        w, k, d, p = self.w, self.w.keys, self.w.drawn, self.p
        self.ctes.append(
            "d AS (INSERT INTO wheel_draws (spin_id, tenant_id, wheel_id, member_id, spin_no, "
            "prize_key, slot_index, kind, value, table_version, layout_version, word_index, "
            "random_word, random_value, weight_total, stock_seen, pity, fallback, free, cost, "
            f"day, created_at) VALUES ({p(k.spin_id)}, {self.t}, {self.wid}, {self.mid}, "
            f"{p(w.plan.spin_no)}, {self.pk}, {p(d.index)}, {p(w.prize.kind)}, "
            f"{p(w.prize.value)}, {p(k.table_version)}, {p(k.layout_version)}, "
            f"{p(d.word_index)}, {p(w.random_word)}, {p(d.value)}, {p(d.weight_total)}, "
            f"{p(w.stock_seen)}, {p(d.forced)}, {p(d.fallback)}, {p(w.plan.free)}, "
            f"{p(w.plan.cost)}, {p(k.today)}, {self.now}) RETURNING id)"
        )

    def coupon(self) -> None:
        # SKIP LOCKED: concurrent winners take different codes.
        self.ctes.append(
            f"c AS (UPDATE wheel_coupon_codes SET member_id = {self.mid}, "
            f"draw_id = (SELECT id FROM d), issued_at = {self.now} WHERE id = (SELECT id FROM "
            f"wheel_coupon_codes WHERE wheel_id = {self.wid} AND prize_key = {self.pk} AND "
            "member_id IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING code)"
        )
        self.code = "(SELECT code FROM c)"

    def award_row(self) -> None:
        w, p = self.w, self.p
        self.ctes.append(
            "aw AS (INSERT INTO wheel_awards (id, tenant_id, wheel_id, draw_id, member_id, "
            "prize_key, kind, name, value, coupon_code, state, won_at) "
            f"SELECT {p(w.award_id)}, {self.t}, {self.wid}, d.id, {self.mid}, {self.pk}, "
            f"{p(w.prize.kind)}, {p(w.prize.name)}, {p(w.prize.value)}, {self.code}, "
            f"{p(w.award_state)}, {self.now} FROM d RETURNING id)"
        )
        self.award = "(SELECT id FROM aw)"

    def ledger(self, call: LedgerCall) -> None:
        # Fed from the draw: runs after it (a lost race fails there first), and before the
        # events below, so the ledger's events come first in the outbox.
        self.ctes.append(f"led AS (SELECT {call(self.p)} AS entries FROM d)")
        self.entries = "(SELECT entries FROM led)"

    def events(self, events: list[outbox.OutboxRow]) -> None:
        self.ctes.append(f"ev AS ({outbox.insert_sql(len(self.p.values) + 1)})")
        self.p.values.extend(outbox.params(events))

    def stock(self) -> None:
        w, p = self.w, self.p
        if w.daily_limit is not None:
            self.ctes.append(
                "sd AS (INSERT INTO wheel_prize_days (tenant_id, wheel_id, prize_key, day, "
                f"daily_limit, issued) VALUES ({self.t}, {self.wid}, {self.pk}, "
                f"{p(w.keys.today)}, {p(w.daily_limit)}, 1) "
                "ON CONFLICT (wheel_id, prize_key, day) DO UPDATE SET "
                "issued = wheel_prize_days.issued + 1, daily_limit = EXCLUDED.daily_limit)"
            )
        if w.take_total:
            self.ctes.append(
                "st AS (UPDATE wheel_prize_stock SET issued = issued + 1 "
                f"WHERE wheel_id = {self.wid} AND prize_key = {self.pk})"
            )

    def sql(self) -> str:
        return (
            "WITH "
            + ", ".join(self.ctes)
            + f" SELECT (SELECT id FROM d) AS draw_id, {self.entries} AS entries, "
            f"{self.award} AS award_id, {self.code} AS coupon_code"
        )


#: The ledger's call as an SQL expression (its values numbered with the statement's ``p``).
LedgerCall = Callable[[_Params], str]


def spin_statement(
    w: SpinWrite, events: list[outbox.OutboxRow], ledger: LedgerCall | None = None
) -> tuple[str, list[Any]]:
    """The ONE statement of a spin (data-modifying CTEs on one snapshot): the member's
    advance, the draw, the coupon, the award, the ledger's postings (``ledger``), the events,
    and the stock counts last (the hot stock row is locked only until the statement commits;
    unreferenced CTEs run after the final SELECT, in order).

    Guards, each failing the whole statement: the draw's (wheel, member, spin number) is
    unique (SPIN_NUMBER_TAKEN: another spin of the member came first), a coupon award needs
    a code (POOL_EMPTY), the stock counts stay within their limits (the STOCK_GUARDs), and
    the ledger's refusals (INSUFFICIENT_POINTS)."""
    s = _SpinSql(w)
    s.advance()
    s.draw()
    if w.prize.kind == "coupon":
        s.coupon()
    if w.award_id is not None:
        s.award_row()
    if ledger is not None:
        s.ledger(ledger)
    if events:
        s.events(events)
    s.stock()
    return s.sql(), s.p.values


async def record_spin(
    conn: asyncpg.Connection,
    w: SpinWrite,
    events: list[outbox.OutboxRow],
    ledger: LedgerCall | None = None,
) -> SpinRecorded:
    """Run ``spin_statement`` (one round trip; its own transaction outside one)."""
    sql, args = spin_statement(w, events, ledger)
    row = await conn.fetchrow(sql, *args)
    return SpinRecorded(row["draw_id"], row["entries"], row["award_id"], row["coupon_code"])


async def list_draws(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, after_id: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {DRAW_COLUMNS} FROM wheel_draws WHERE tenant_id = $1 AND wheel_id = $2 "
        "AND id > $3 ORDER BY id LIMIT $4",
        tenant_id,
        wheel_id,
        after_id,
        limit,
    )


async def count_draws(conn: asyncpg.Connection, wheel_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM wheel_draws WHERE wheel_id = $1", wheel_id)


# ----------------------------------------------------------------------------- coupons


async def add_codes(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    prize_key: str,
    codes: list[str],
    now: datetime,
) -> int:
    status = await conn.execute(
        "INSERT INTO wheel_coupon_codes (tenant_id, wheel_id, prize_key, code, uploaded_at) "
        "SELECT $1, $2, $3, c, $5 FROM unnest($4::text[]) AS u(c) "
        "ON CONFLICT (wheel_id, prize_key, code) DO NOTHING",
        tenant_id,
        wheel_id,
        prize_key,
        codes,
        now,
    )
    return int(status.split()[-1])


async def code_counts(conn: asyncpg.Connection, wheel_id: int) -> dict[str, tuple[int, int]]:
    """prize -> (codes uploaded, codes still free)."""
    rows = await conn.fetch(
        "SELECT prize_key, count(*) AS n, count(*) FILTER (WHERE member_id IS NULL) AS free "
        "FROM wheel_coupon_codes WHERE wheel_id = $1 GROUP BY prize_key",
        wheel_id,
    )
    return {r["prize_key"]: (r["n"], r["free"]) for r in rows}


# ----------------------------------------------------------------------------- awards

AWARD_COLUMNS = (
    "a.id, a.wheel_id, w.key AS wheel_key, a.draw_id, a.member_id, a.prize_key, a.kind, a.name, "
    "a.value, a.coupon_code, a.state, a.contact, a.shipment, a.won_at, a.claimed_at, a.shipped_at"
)


async def member_awards(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.member_id = $2 AND ($3::bigint IS NULL OR a.id < $3) "
        "ORDER BY a.id DESC LIMIT $4",
        tenant_id,
        member_id,
        before_id,
        limit,
    )


async def lock_award(
    conn: asyncpg.Connection, tenant_id: int, award_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.id = $2 FOR UPDATE OF a",
        tenant_id,
        award_id,
    )


async def get_award(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, award_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.wheel_id = $2 AND a.id = $3",
        tenant_id,
        wheel_id,
        award_id,
    )


async def set_claimed(
    conn: asyncpg.Connection, award_id: int, contact: dict, now: datetime
) -> None:
    await conn.execute(
        "UPDATE wheel_awards SET state = 'claimed', contact = $2, claimed_at = $3 WHERE id = $1",
        award_id,
        contact,
        now,
    )


async def set_shipped(
    conn: asyncpg.Connection, award_id: int, shipment: dict, now: datetime
) -> None:
    await conn.execute(
        "UPDATE wheel_awards SET state = 'shipped', shipment = $2, shipped_at = $3 WHERE id = $1",
        award_id,
        shipment,
        now,
    )


async def wheel_awards(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    state: str | None,
    after_id: int,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.wheel_id = $2 AND ($3::text IS NULL OR a.state = $3) "
        "AND a.id > $4 ORDER BY a.id LIMIT $5",
        tenant_id,
        wheel_id,
        state,
        after_id,
        limit,
    )


# Every wheel of tenant $1 with member $2's counters; also embedded in the member read model
# (service/me/repository.py), so the rule lives here only.
WHEELS_WITH_MEMBER_SQL = (
    "SELECT w.key, w.config, m.spins, m.day, m.spins_day, m.free_used_day FROM wheels w "
    "LEFT JOIN wheel_members m ON m.wheel_id = w.id AND m.member_id = $2 WHERE w.tenant_id = $1"
)


async def wheels_with_member(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    """Every wheel of a tenant with the member's counters (one statement)."""
    return await conn.fetch(
        WHEELS_WITH_MEMBER_SQL + " ORDER BY w.key",
        tenant_id,
        member_id,
    )


async def erase_contacts(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> int:
    """Remove the shipping contacts of a member's prizes (names, phones, addresses)."""
    status = await conn.execute(
        "UPDATE wheel_awards SET contact = NULL WHERE tenant_id = $1 AND member_id = $2 "
        "AND contact IS NOT NULL",
        tenant_id,
        member_id,
    )
    return int(status.split()[-1])
