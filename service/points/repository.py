"""SQL of the ledger. Every balance change locks the member's account row first, so changes
of one member serialize and a concurrent retry sees the first attempt's entry."""

from __future__ import annotations

from datetime import datetime

import asyncpg

ENTRY_COLUMNS = (
    "id, member_id, currency, kind, delta, balance_after, reason, note, source_ref, "
    "reverses_entry_id, shortfall, expires_at, created_at"
)

# The one definition of a balance at an instant: the sum of the member's lots of that currency
# that still hold something and are not past their date (``expires_at`` after the instant, or
# none). The expiry job writes expiries some time after the date; until then the account row
# still counts those lots. So every write first writes the expiry of that member's due lots
# (lazily, in the same transaction, under the account lock) and every read subtracts the due
# lots the job has not written yet: answers, checks and ``balance_after`` agree at any instant.
DUE_LOTS = "remaining > 0 AND expires_at IS NOT NULL AND expires_at <= {now}"


async def lock_accounts(
    conn: asyncpg.Connection, tenant_id: int, pairs: list[tuple[int, str]], now: datetime
) -> dict[tuple[int, str], tuple[int, int]]:
    """Create missing accounts and lock all of them (in a fixed order, to avoid deadlocks).
    Returns {(member, currency): (balance, earned_total)}."""
    ordered = sorted(set(pairs))
    rows = await conn.fetch(
        "INSERT INTO point_accounts (tenant_id, member_id, currency, balance, earned_total, "
        "updated_at) SELECT $1, m, c, 0, 0, $4 FROM unnest($2::bigint[], $3::text[]) AS u(m, c) "
        "ON CONFLICT (tenant_id, member_id, currency) DO UPDATE "
        "SET updated_at = point_accounts.updated_at "
        "RETURNING member_id, currency, balance, earned_total",
        tenant_id,
        [m for m, _ in ordered],
        [c for _, c in ordered],
        now,
    )
    return {(r["member_id"], r["currency"]): (r["balance"], r["earned_total"]) for r in rows}


async def find_entries_by_keys(
    conn: asyncpg.Connection, tenant_id: int, keys: list[str]
) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        f"SELECT idempotency_key, {ENTRY_COLUMNS} FROM ledger_entries "
        "WHERE tenant_id = $1 AND idempotency_key = ANY($2::text[])",
        tenant_id,
        keys,
    )
    return {r["idempotency_key"]: r for r in rows}


async def add_to_accounts(
    conn: asyncpg.Connection,
    tenant_id: int,
    changes: list[tuple[int, str, int, int]],
    now: datetime,
) -> None:
    """changes: (member, currency, balance delta, earned_total delta)."""
    await conn.execute(
        "UPDATE point_accounts a SET balance = a.balance + d.db, "
        "earned_total = a.earned_total + d.de, updated_at = $6 "
        "FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[]) AS d(m, c, db, de) "
        "WHERE a.tenant_id = $1 AND a.member_id = d.m AND a.currency = d.c",
        tenant_id,
        [c[0] for c in changes],
        [c[1] for c in changes],
        [c[2] for c in changes],
        [c[3] for c in changes],
        now,
    )


async def insert_entries(
    conn: asyncpg.Connection, tenant_id: int, rows: list[tuple], now: datetime
) -> list[int]:
    """rows: (member, currency, kind, delta, balance_after, reason, note, source_ref,
    idempotency_key, reverses_entry_id, shortfall, expires_at). Returns ids in row order."""
    if not rows:
        return []
    cols = list(zip(*rows, strict=True))
    result = await conn.fetch(
        "INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta, balance_after, "
        "reason, note, source_ref, idempotency_key, reverses_entry_id, shortfall, expires_at, "
        "created_at) "
        "SELECT $1, m, c, k, d, b, r, n, s, i, rv, sf, e, $14 FROM unnest($2::bigint[], "
        "$3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], "
        "$10::text[], $11::bigint[], $12::bigint[], $13::timestamptz[]) WITH ORDINALITY "
        "AS u(m, c, k, d, b, r, n, s, i, rv, sf, e, ord) ORDER BY ord "
        "RETURNING id",
        tenant_id,
        *[list(col) for col in cols],
        now,
    )
    # INSERT ... SELECT ... ORDER BY assigns serial ids in that order.
    return sorted(r["id"] for r in result)


async def insert_lots(
    conn: asyncpg.Connection,
    tenant_id: int,
    rows: list[tuple[int, str, int, int, datetime | None]],
    now: datetime,
) -> None:
    """rows: (member, currency, entry id, amount, expires_at)."""
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        "INSERT INTO point_lots (tenant_id, member_id, currency, entry_id, amount, remaining, "
        "expires_at, created_at) SELECT $1, m, c, e, a, a, x, $7 FROM unnest($2::bigint[], "
        "$3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[]) AS u(m, c, e, a, x)",
        tenant_id,
        *[list(col) for col in cols],
        now,
    )


async def open_lots(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, currency: str
) -> list[asyncpg.Record]:
    """Lots with something left, locked, earliest-expiring first."""
    return await conn.fetch(
        "SELECT id, remaining, expires_at FROM point_lots WHERE tenant_id = $1 "
        "AND member_id = $2 AND currency = $3 AND remaining > 0 "
        "ORDER BY expires_at NULLS LAST, id FOR UPDATE",
        tenant_id,
        member_id,
        currency,
    )


async def take_from_lots(
    conn: asyncpg.Connection, entry_id: int, takes: list[tuple[int, int]]
) -> None:
    """Record the allocation of an entry to lots and lower the lots' remainders."""
    if not takes:
        return
    lot_ids = [t[0] for t in takes]
    amounts = [t[1] for t in takes]
    await conn.execute(
        "INSERT INTO lot_allocations (entry_id, lot_id, amount) "
        "SELECT $1, l, a FROM unnest($2::bigint[], $3::bigint[]) AS u(l, a)",
        entry_id,
        lot_ids,
        amounts,
    )
    await conn.execute(
        "UPDATE point_lots p SET remaining = p.remaining - u.a "
        "FROM unnest($1::bigint[], $2::bigint[]) AS u(l, a) WHERE p.id = u.l",
        lot_ids,
        amounts,
    )


async def get_entry(conn: asyncpg.Connection, tenant_id: int, entry_id: int):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        entry_id,
    )


async def credit_entries_by_source(
    conn: asyncpg.Connection, tenant_id: int, source_ref: str
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND source_ref = $2 "
        "AND kind = 'credit' ORDER BY id",
        tenant_id,
        source_ref,
    )


async def reversal_of(conn: asyncpg.Connection, entry_id: int):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE reverses_entry_id = $1", entry_id
    )


async def lots_of_entry(conn: asyncpg.Connection, entry_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, amount, remaining, expires_at FROM point_lots WHERE entry_id = $1 "
        "ORDER BY id FOR UPDATE",
        entry_id,
    )


async def due_accounts(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT DISTINCT tenant_id, member_id, currency FROM point_lots "
        f"WHERE {DUE_LOTS.format(now='$1')} LIMIT $2",
        now,
        limit,
    )


async def upcoming_expiries(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime, until: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT expires_at, remaining FROM point_lots WHERE tenant_id = $1 AND member_id = $2 "
        "AND currency = 'points' AND remaining > 0 AND expires_at > $3 AND expires_at <= $4 "
        "ORDER BY expires_at",
        tenant_id,
        member_id,
        now,
        until,
    )


async def history(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    currency: str | None,
    before_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2 "
        "AND ($3::text IS NULL OR currency = $3) AND ($4::bigint IS NULL OR id < $4) "
        "ORDER BY id DESC LIMIT $5",
        tenant_id,
        member_id,
        currency,
        before_id,
        limit,
    )


# ----------------------------------------------------------------------------- levels


async def get_ladder(conn: asyncpg.Connection, tenant_id: int):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        "SELECT version, config, updated_at FROM level_ladders WHERE tenant_id = $1", tenant_id
    )


async def put_ladder(conn: asyncpg.Connection, tenant_id: int, config: dict, now: datetime) -> int:
    return await conn.fetchval(
        "INSERT INTO level_ladders (tenant_id, version, config, updated_at) "
        "VALUES ($1, 1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE SET "
        "version = level_ladders.version + 1, config = EXCLUDED.config, "
        "updated_at = EXCLUDED.updated_at RETURNING version",
        tenant_id,
        config,
        now,
    )


async def lock_member_levels(
    conn: asyncpg.Connection, tenant_id: int, member_ids: list[int], now: datetime
) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(
        "INSERT INTO member_levels (tenant_id, member_id, level_index, since) "
        "SELECT $1, m, 0, $3 FROM unnest($2::bigint[]) AS u(m) ORDER BY m "
        "ON CONFLICT (tenant_id, member_id) DO UPDATE SET since = member_levels.since "
        "RETURNING member_id, level_index, since, review_at",
        tenant_id,
        sorted(set(member_ids)),
        now,
    )
    return {r["member_id"]: r for r in rows}


async def member_level(conn: asyncpg.Connection, tenant_id: int, member_id: int):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        "SELECT level_index, since, review_at FROM member_levels "
        "WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )


async def member_level_indexes(
    conn: asyncpg.Connection, tenant_id: int, member_ids: list[int]
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT member_id, level_index FROM member_levels WHERE tenant_id = $1 "
        "AND member_id = ANY($2::bigint[])",
        tenant_id,
        member_ids,
    )
    return {r["member_id"]: r["level_index"] for r in rows}


async def set_levels(
    conn: asyncpg.Connection,
    tenant_id: int,
    rows: list[tuple[int, int, datetime, datetime | None]],
) -> None:
    """rows: (member, level index, since, review_at)."""
    await conn.execute(
        "UPDATE member_levels l SET level_index = u.i, since = u.s, review_at = u.r "
        "FROM unnest($2::bigint[], $3::smallint[], $4::timestamptz[], $5::timestamptz[]) "
        "AS u(m, i, s, r) WHERE l.tenant_id = $1 AND l.member_id = u.m",
        tenant_id,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


async def window_growth(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_ids: list[int],
    start: datetime,
    end: datetime,
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT member_id, COALESCE(sum(delta), 0) AS g FROM ledger_entries "
        "WHERE tenant_id = $1 AND member_id = ANY($2::bigint[]) AND currency = 'growth' "
        "AND kind IN ('credit', 'reverse') AND created_at >= $3 AND created_at <= $4 "
        "GROUP BY member_id",
        tenant_id,
        member_ids,
        start,
        end,
    )
    return {r["member_id"]: int(r["g"]) for r in rows}


async def due_reviews(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT tenant_id, member_id FROM member_levels WHERE review_at IS NOT NULL "
        "AND review_at <= $1 ORDER BY review_at LIMIT $2",
        now,
        limit,
    )


async def write_credits(
    conn: asyncpg.Connection, tenant_id: int, rows: list[tuple], now: datetime
) -> list[tuple[int, int]]:
    """Credits in one statement: first the expiry of the credited members' lots already past
    their date (``expire`` entries, allocations, lots emptied, ``points.expired`` events), then
    the entries, their lots, the balances and the ``*.credited`` events.

    rows: (member, currency, amount, balance_after before expiries, reason, note, source_ref,
    idempotency_key, expires_at). Returns (entry id, balance_after) of the credits in row
    order; balance_after is the balance at ``now`` (due lots not counted). The caller holds
    the accounts' locks (``lock_accounts``), so this statement's snapshot sees every lot
    change committed before. One round trip instead of many matters: every check-in, prize
    and event pays through here.
    """
    cols = list(zip(*rows, strict=True))
    due_lots = DUE_LOTS.format(now="$11")
    result = await conn.fetch(
        "WITH u AS (SELECT * FROM unnest($2::bigint[], $3::text[], $4::bigint[], "
        "$5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[]) "
        "WITH ORDINALITY AS u(m, c, d, b, r, n, s, i, x, ord)), "
        "due AS (SELECT id, member_id, currency, remaining FROM point_lots "
        "WHERE tenant_id = $1 AND (member_id, currency) IN (SELECT m, c FROM u) "
        f"AND {due_lots}), "
        "ds AS (SELECT member_id, currency, sum(remaining)::bigint AS amount FROM due "
        "GROUP BY member_id, currency), "
        "w AS (SELECT 0 AS g, ds.member_id AS m, ds.currency AS c, 'expire' AS k, "
        "-ds.amount AS d, p.balance - ds.amount AS b, 'expiry' AS r, '' AS n, NULL::text AS s, "
        "NULL::text AS i, NULL::timestamptz AS x, 0::bigint AS ord FROM ds "
        "JOIN point_accounts p ON p.tenant_id = $1 AND p.member_id = ds.member_id "
        "AND p.currency = ds.currency "
        "UNION ALL SELECT 1, u.m, u.c, 'credit', u.d, u.b - COALESCE(ds.amount, 0), u.r, u.n, "
        "u.s, u.i, u.x, u.ord FROM u LEFT JOIN ds ON ds.member_id = u.m AND ds.currency = u.c), "
        "e AS (INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta, "
        "balance_after, reason, note, source_ref, idempotency_key, reverses_entry_id, shortfall, "
        "expires_at, created_at) SELECT $1, m, c, k, d, b, r, n, s, i, NULL, 0, x, $11 "
        "FROM w ORDER BY g, ord, m, c "
        "RETURNING id, kind, member_id, currency, delta, balance_after, reason, expires_at), "
        "l AS (INSERT INTO point_lots (tenant_id, member_id, currency, entry_id, amount, "
        "remaining, expires_at, created_at) SELECT $1, member_id, currency, id, delta, delta, "
        "expires_at, $11 FROM e WHERE kind = 'credit'), "
        "al AS (INSERT INTO lot_allocations (entry_id, lot_id, amount) SELECT e.id, due.id, "
        "due.remaining FROM e JOIN due ON e.kind = 'expire' AND due.member_id = e.member_id "
        "AND due.currency = e.currency), "
        "dl AS (UPDATE point_lots p SET remaining = p.remaining - due.remaining FROM due "
        "WHERE p.id = due.id), "
        "a AS (UPDATE point_accounts p SET balance = p.balance + t.d, "
        "earned_total = p.earned_total + t.earned, updated_at = $11 FROM (SELECT member_id, "
        "currency, sum(delta) AS d, COALESCE(sum(delta) FILTER (WHERE kind = 'credit'), 0) "
        "AS earned FROM e GROUP BY member_id, currency) t WHERE p.tenant_id = $1 "
        "AND p.member_id = t.member_id AND p.currency = t.currency), "
        "o AS (INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, "
        "occurred_at) SELECT pg_current_xact_id()::text::bigint, $1, gen_random_uuid(), "
        "e.currency || CASE e.kind WHEN 'credit' THEN '.credited' ELSE '.expired' END, "
        "e.member_id, CASE e.kind WHEN 'credit' THEN jsonb_build_object('currency', "
        "e.currency, 'amount', e.delta, 'entryId', e.id, 'reason', e.reason, 'balance', "
        "e.balance_after) ELSE jsonb_build_object('currency', e.currency, 'amount', -e.delta, "
        "'entryId', e.id) END, $11 FROM e ORDER BY e.id) "
        "SELECT id, balance_after FROM e WHERE kind = 'credit' ORDER BY id",
        tenant_id,
        *[list(c) for c in cols],
        now,
    )
    return [(r["id"], r["balance_after"]) for r in result]


async def due_lots(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, currency: str, now: datetime
) -> list[asyncpg.Record]:
    """The member's lots past their date that still hold something, locked."""
    return await conn.fetch(
        "SELECT id, remaining, expires_at FROM point_lots WHERE tenant_id = $1 "
        f"AND member_id = $2 AND currency = $3 AND {DUE_LOTS.format(now='$4')} "
        "ORDER BY id FOR UPDATE",
        tenant_id,
        member_id,
        currency,
        now,
    )


async def card_facts(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime, until: datetime
) -> asyncpg.Record:
    """Everything the member card needs in one round trip: balances (points past their date
    not counted), growth earned, level, and the lots expiring before ``until``."""
    return await conn.fetchrow(
        "SELECT "
        "(SELECT balance FROM point_accounts WHERE tenant_id = $1 AND member_id = $2 "
        " AND currency = 'points') AS points, "
        "(SELECT COALESCE(sum(remaining), 0)::bigint FROM point_lots WHERE tenant_id = $1 "
        f" AND member_id = $2 AND currency = 'points' AND {DUE_LOTS.format(now='$3')}) "
        " AS points_due, "
        "(SELECT balance FROM point_accounts WHERE tenant_id = $1 AND member_id = $2 "
        " AND currency = 'growth') AS growth, "
        "(SELECT earned_total FROM point_accounts WHERE tenant_id = $1 AND member_id = $2 "
        " AND currency = 'growth') AS growth_earned, "
        "(SELECT level_index FROM member_levels WHERE tenant_id = $1 AND member_id = $2) "
        " AS level_index, "
        "(SELECT review_at FROM member_levels WHERE tenant_id = $1 AND member_id = $2) "
        " AS review_at, "
        "(SELECT array_agg(expires_at ORDER BY expires_at) FROM point_lots WHERE tenant_id = $1 "
        " AND member_id = $2 AND currency = 'points' AND remaining > 0 AND expires_at > $3 "
        " AND expires_at <= $4) AS exp_at, "
        "(SELECT array_agg(remaining ORDER BY expires_at) FROM point_lots WHERE tenant_id = $1 "
        " AND member_id = $2 AND currency = 'points' AND remaining > 0 AND expires_at > $3 "
        " AND expires_at <= $4) AS exp_amount",
        tenant_id,
        member_id,
        now,
        until,
    )


async def expiring_by_member(
    conn: asyncpg.Connection, tenant_id: int, now: datetime, until: datetime, limit: int
) -> list[asyncpg.Record]:
    """Per member: points expiring in (now, until] and the first expiry instant."""
    return await conn.fetch(
        "SELECT member_id, sum(remaining)::bigint AS points, min(expires_at) AS first_expiry "
        "FROM point_lots WHERE tenant_id = $1 AND currency = 'points' AND remaining > 0 "
        "AND expires_at > $2 AND expires_at <= $3 GROUP BY member_id ORDER BY member_id "
        "LIMIT $4",
        tenant_id,
        now,
        until,
        limit,
    )
