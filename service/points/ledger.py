"""The one writer of ledger entries: ``engage_ledger_post``, a PL/pgSQL function.

Every change of a balance (credit, debit, reversal, expiry) is written by the server-side
function ``engage_ledger_post`` (installed by the points migration 2026-11-29T14:00), so that a
feature can post to the ledger INSIDE its own single write statement (one round trip), and
Python's own points service (``service.points.service``) posts through the same function.

What one call does, for a list of postings, atomically (it is part of the caller's statement):

1. locks each account (member, currency) once, in one order (no deadlocks), creating missing
   ones; writes the expiry of the account's lots already past their date (``expire`` entry,
   lot allocations, lots emptied, ``<currency>.expired`` event), so balances are at ``now``;
2. per posting, in order: ``credit`` (entry + one lot with ``expires_at``, ``*.credited``),
   ``debit`` (FIFO over the live lots, earliest-expiring first, lots that never expire last,
   ``lot_allocations``, ``*.debited``; refused when short), ``reverse`` (claws back what is left
   of the credit's own lots, records the shortfall, ``*.reversed``; reversing twice replays),
   ``expire`` (only step 1: answers the expiry entry written, or null);
3. writes each account's balance / earned_total once;
4. levels: when growth was credited (or reversed) and the tenant has a ladder, moves the
   member's level (up only on a credit; a reversal may lower it), ``level.up``/``level.down``.

Events go to the outbox in the same statement (``txid`` of the caller's transaction).

**Calling it inside your own statement** (check-in, spin, ...)::

    from service.points import ledger
    from service.points import service as points
    postings = [ledger.Posting(kind="debit", amount=5, reason="wheel:rt", source_ref=...),
                ledger.Posting(kind="credit", amount=10, reason="wheel:prize",
                               expires_at=await points.expiry_at(ctx, conn, tenant_id,
                                                                 "points", now))]
    sql = f'''WITH spin AS (INSERT INTO wheel_spins ... RETURNING member_id),
                  led AS (SELECT {ledger.call_sql("$1", "$2", "$3", "spin.member_id")} AS entries
                          FROM spin)
              SELECT (SELECT entries FROM led) AS entries'''
    with ledger.refusals():                      # INSUFFICIENT_POINTS etc. -> DomainError
        row = await conn.fetchrow(sql, tenant_id, now, postings)
    uow.committed()        # single-statement unit: the commit point (no-op in a transaction)
    entries = ledger.entries_of(row["entries"])  # list[ledger.Entry | None], posting order
    uow.wake_dispatcher()  # it wrote outbox rows: wake the dispatcher once committed

- Parameters: ``tenant integer``, ``now timestamptz``, ``postings jsonb`` (a list of
  ``Posting``; asyncpg's jsonb codec encodes the Structs, datetimes as RFC 3339), and an
  optional default ``member bigint`` for postings without ``member_id`` (so the member can come
  from another CTE). A ``reverse`` posting names ``reverses_entry_id`` only.
- Returns ``jsonb``: one element per posting, in order: the entry written (or, for a known
  idempotency key / an already reversed credit, the first entry with ``replayed: true``;
  for ``expire``, the expiry entry or null). ``entries_of`` makes ``Entry`` objects of it.
- The function runs where its CTE is evaluated: reference the CTE in your final SELECT (an
  unreferenced non-modifying CTE never runs) and feed it from your guard CTE (``FROM spin``) so
  that it runs only when your change happened. A volatile function sees the rows your earlier
  CTEs returned only through its arguments (one snapshot for the CTEs): pass what it needs.
- Refusals (``INSUFFICIENT_POINTS`` with details {balance, requested}, ``ENTRY_NOT_FOUND``,
  ``NOT_REVERSIBLE``, ``REVERSAL_SHORTFALL``) are raised as SQLSTATE P0001 with HINT
  ``engage.ledger``: the WHOLE statement fails and nothing of it stays (stock, rows, events).
  ``refusals()`` / ``refusal(exc)`` turn them into the ``DomainError`` of the same code. In a
  transactional unit, wrap the call in ``uow.savepoint()`` if you catch the refusal and go on.
- Validate amounts and currencies before (``Posting`` carries no checks; the function raises a
  plain error for a non-positive credit/debit amount; growth is never debited).
- Idempotency keys: a posting with ``idempotency_key`` returns the first entry of that key if
  there is one; set ``key_is_new=True`` when the key names something your statement just created
  (a fresh spin id, a check-in row): no lookup is made then, the unique key still refuses a
  duplicate.
- Points expiry: ``expires_at`` of a credit is the caller's (``points.expiry_at``: the tenant's
  policy, cached, no round trip in steady state). Growth never expires (pass None).
- Validation helpers: ``points.check_credit(currency, amount)`` / ``points.check_debit(...)``
  (422 / GROWTH_NOT_SPENDABLE); ``points.credit_posting(Credit, expires_at)`` builds a credit.
- Levels and growth: nothing to do; growth postings move levels inside the call (the ladder is
  read from ``level_ladders`` there). The level multiplier of points is the caller's
  (``points.level_multiplier_pcts``).
- Single-statement units (``uow.single_statement``): the function writes its events itself,
  so it works there; ``uow.emit`` does not.
- Also installed: ``engage_conflict()`` raises SQLSTATE 40001 (asyncpg
  ``SerializationError``): use it as a guard (``CASE WHEN <still true> THEN ... ELSE
  engage_conflict() END``) to make a whole statement fail when the state it was planned on
  changed; re-read and re-plan then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from service.core.errors import DomainError

REFUSAL_HINT = "engage.ledger"

PostingKind = Literal["credit", "debit", "reverse", "expire"]


class Posting(msgspec.Struct, kw_only=True):
    """One change to post. ``kind`` then the fields it uses:

    - credit: member_id?, currency, amount > 0, reason, note, source_ref, idempotency_key,
      key_is_new, expires_at (points only)
    - debit: member_id?, currency ("points"), amount > 0, reason, note, source_ref,
      idempotency_key, key_is_new
    - reverse: reverses_entry_id, reason, note, refuse_shortfall (the tenant's policy)
    - expire: member_id?, currency (writes the expiry of the lots past their date)

    ``member_id`` may be left out when the call passes a default member.
    """

    kind: PostingKind
    currency: str = "points"
    amount: int = 0
    member_id: int | None = None
    reason: str = ""
    note: str = ""
    source_ref: str | None = None
    idempotency_key: str | None = None
    key_is_new: bool = False
    expires_at: datetime | None = None
    reverses_entry_id: int | None = None
    refuse_shortfall: bool = False


class Entry(msgspec.Struct, kw_only=True):
    """A ledger entry as the function returns it (``replayed``: written by an earlier call)."""

    id: int
    member_id: int
    currency: str
    kind: str
    delta: int
    balance_after: int
    reason: str
    note: str
    source_ref: str | None
    reverses_entry_id: int | None
    shortfall: int
    expires_at: datetime | None
    created_at: datetime
    replayed: bool = False


def call_sql(tenant: str, now: str, postings: str, member: str = "NULL") -> str:
    """The call as an SQL expression, from SQL expressions of its arguments (e.g. ``"$1"``,
    ``"$2"``, ``"$3"``, ``"m.id"``); it evaluates to the jsonb list of entries."""
    return (
        f"engage_ledger_post({tenant}::integer, {now}::timestamptz, {postings}::jsonb, "
        f"{member}::bigint)"
    )


def entries_of(raw: Any) -> list[Entry | None]:
    """The function's answer (decoded jsonb) as entries, in posting order."""
    return msgspec.convert(raw or [], list[Entry | None], strict=False)


def refusal(exc: BaseException) -> DomainError | None:
    """The ``DomainError`` a ledger refusal stands for, or None for any other error."""
    if isinstance(exc, asyncpg.RaiseError) and getattr(exc, "hint", None) == REFUSAL_HINT:
        detail = getattr(exc, "detail", None)
        details = msgspec.json.decode(detail) if detail else None
        return DomainError(str(getattr(exc, "message", "")), details=details)
    return None


@contextmanager
def refusals() -> Iterator[None]:
    """Run a statement that posts to the ledger; its refusals raise as ``DomainError``."""
    try:
        yield
    except asyncpg.RaiseError as exc:
        err = refusal(exc)
        if err is None:
            raise
        raise err from None


async def post(
    conn: asyncpg.Connection,
    tenant_id: int,
    now: datetime,
    postings: list[Posting],
    member_id: int | None = None,
) -> list[Entry | None]:
    """Post on ``conn`` as a statement of its own (Python's points service, jobs)."""
    with refusals():
        raw = await conn.fetchval(
            f"SELECT {call_sql('$1', '$2', '$3', '$4')}", tenant_id, now, postings, member_id
        )
    return entries_of(raw)
