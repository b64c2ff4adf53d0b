"""What the operator API does to the ledger: manual credits and debits, reversals, the ladder.

Each function runs inside the request's unit of work (see service.core.uow) and returns the
answer the route sends.
"""

from __future__ import annotations

import functools

import msgspec

from service.core.errors import DomainError
from service.core.uow import UnitOfWork
from service.members import service as members
from service.points import ledger, service
from service.points.schemas import AdjustIn, AdjustOut, EntryOut, LadderIn, LadderOut, ReverseIn


def entry_out(e: service.Entry) -> EntryOut:
    return EntryOut(
        e.id,
        e.currency,
        e.kind,
        e.delta,
        e.balance_after,
        e.reason,
        e.note,
        e.source_ref,
        e.reverses_entry_id,
        e.shortfall,
        e.expires_at,
        e.created_at,
    )


async def member_id_of(uow: UnitOfWork, tenant_id: int, external_id: str) -> int:
    """The member behind ``external_id``; created when the policy says so, else 404."""
    policy = await service.policy_of(uow.ctx, uow.conn, tenant_id)
    if policy.unknown_member == "create":
        found = await members.resolve_many(uow, tenant_id, [external_id])
    else:
        found = await members.find_many(uow.conn, tenant_id, [external_id])
    if external_id not in found:
        raise DomainError("MEMBER_NOT_FOUND", details={"externalId": external_id})
    return found[external_id]


# The member by externalId and the posting, in one statement: a credit or debit by hand is one
# round trip when the member exists (the refusal of a short debit fails it as a whole).
ADJUST_SQL = (
    "WITH m AS (SELECT id FROM members WHERE tenant_id = $1 AND external_id = $2) "
    f"SELECT (SELECT id FROM m) AS member_id, "
    f"(SELECT {ledger.call_sql('$1', '$3', '$4', 'm.id')} FROM m) AS entries"
)


async def adjust(
    uow: UnitOfWork,
    tenant_id: int,
    key_id: str,
    external_id: str,
    data: AdjustIn,
    ledger_key: str | None,
) -> AdjustOut:
    """Credit (amount > 0) or debit (amount < 0) a member by hand; ``ledger_key`` dedupes.

    One statement when the member exists (works in a single-statement unit); an unknown member
    is created first when the policy says so (then in a transaction), else 404."""
    ctx, conn = uow.ctx, uow.conn
    if data.amount > 0:
        service.check_credit(data.currency, data.amount)
    else:
        service.check_debit(data.currency, -data.amount)
    now = ctx.clock.now()
    posting = ledger.Posting(
        kind="credit" if data.amount > 0 else "debit",
        currency=data.currency,
        amount=abs(data.amount),
        reason=data.reason,
        note=data.note,
        source_ref=f"manual:{key_id}",
        idempotency_key=ledger_key,
        expires_at=await service.expiry_at(ctx, conn, tenant_id, data.currency, now)
        if data.amount > 0
        else None,
    )
    with ledger.refusals():
        row = await conn.fetchrow(ADJUST_SQL, tenant_id, external_id, now, [posting])
    if row["member_id"] is None:
        async with uow.transactional() as tx:  # its COMMIT is the unit's commit point
            member_id = await member_id_of(tx, tenant_id, external_id)
            [entry] = await ledger.post(tx.conn, tenant_id, now, [posting], member_id)
    else:
        uow.committed()  # single-statement unit: the statement committed the posting
        [entry] = ledger.entries_of(row["entries"])
    uow.wake_dispatcher()
    assert entry is not None
    return AdjustOut(entry_out(entry), entry.balance_after, entry.replayed)


async def reverse(uow: UnitOfWork, tenant_id: int, external_id: str, data: ReverseIn) -> AdjustOut:
    """Reverse an earlier credit of this member (404 ENTRY_NOT_FOUND for another member's)."""
    member_id = await member_id_of(uow, tenant_id, external_id)
    entry = await service.reverse(uow, tenant_id, data.entry_id, reason=data.reason, note=data.note)
    if entry.member_id != member_id:
        raise DomainError("ENTRY_NOT_FOUND", details={"entryId": data.entry_id})
    return AdjustOut(entry_out(entry), entry.balance_after, entry.replayed)


async def put_ladder(uow: UnitOfWork, tenant_id: int, data: LadderIn) -> LadderOut:
    """Store an already validated ladder; caches drop once it is committed."""
    ctx = uow.ctx
    version = await service.repo.put_ladder(
        uow.conn, tenant_id, msgspec.to_builtins(data), ctx.clock.now()
    )
    uow.after_commit(functools.partial(service.invalidate_caches, ctx, tenant_id))
    return LadderOut(version, data.levels, data.validity, ctx.clock.now())
