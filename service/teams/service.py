"""Teams: definitions, membership by operator or by join code, leave, and public lookups
(the team a member was in at an instant, headcounts) for team PKs and team boards."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.uow import UnitOfWork
from service.members import service as members
from service.teams import repository as repo
from service.teams import rules
from service.teams.schemas import (
    JoinIn,
    LeaveOut,
    MembershipIn,
    MembershipOut,
    MyTeam,
    MyTeams,
    StayOut,
    TeamIn,
    TeamList,
    TeamMembersOut,
    TeamOut,
)

register_codes(
    {
        "TEAM_NOT_FOUND": (404, "团队不存在", "No such team."),
        "TEAM_SET_TAKEN": (
            409,
            "你已加入同组的其他团队",
            "The member is already in another team of the same team set; details name it. "
            "Leave it first (operators: send move=true).",
        ),
        "TEAM_FULL": (409, "团队已满员", "The team has reached its capacity."),
        "TEAM_JOIN_CODE_INVALID": (
            403,
            "邀请码不正确",
            "This team is invite-only and the join code is missing or wrong.",
        ),
        "TEAM_SET_FIXED": (
            409,
            "团队已有成员，不能更换分组",
            "The team has had members: its team set cannot change (create a new team).",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class TeamInfo:
    """A team as other features see it."""

    id: int
    key: str
    name: str
    kind: str
    team_set: str
    captain_id: int | None


def _info(r: Any) -> TeamInfo:
    return TeamInfo(r["id"], r["key"], r["name"], r["kind"], r["team_set"], r["captain_id"])


def _out(row: Any, count: int | None = None) -> TeamOut:
    return TeamOut(
        key=row["key"],
        version=row["version"],
        name=row["name"],
        kind=row["kind"],
        team_set=row["team_set"],
        captain_member_id=row["captain_id"],
        capacity=row["capacity"],
        open=row["open"],
        join_code=row["join_code"],
        member_count=row["member_count"] if count is None else count,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _emit_all(
    uow: UnitOfWork, rows: list[tuple[int, str, int | None, dict[str, Any], datetime]]
) -> None:
    """Queue events (tenant, type, member, payload, occurred_at) in the unit of work."""
    for tenant_id, type_, member_id, payload, at in rows:
        uow.emit(
            tenant_id=tenant_id, type=type_, member_id=member_id, payload=payload, occurred_at=at
        )


# ---------------------------------------------------------------- operators


async def put_team(uow: UnitOfWork, tenant_id: int, key: str, data: TeamIn) -> TeamOut:
    """Create or change a team (versioned). 409 TEAM_SET_FIXED when the set would change
    under members."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    existing = await repo.lock_team(conn, tenant_id, key)
    captain_id = None
    if data.captain is not None:
        found = await members.resolve_many(uow, tenant_id, [data.captain])
        captain_id = found[data.captain]
    doc = {
        "team_set": data.team_set,
        "kind": data.kind,
        "name": data.name,
        "captain_id": captain_id,
        "capacity": data.capacity,
        "open": data.open,
        "join_code": (data.join_code or "").upper()
        or (existing["join_code"] if existing else rules.new_join_code(ctx.rng)),
    }
    if existing is None:
        row = await repo.insert_team(conn, tenant_id, key, doc, now)
        if row is None:
            raise DomainError("CONFLICT")
    else:
        if existing["team_set"] != data.team_set and await repo.has_history(conn, existing["id"]):
            raise DomainError(
                "TEAM_SET_FIXED", details={"key": key, "teamSet": existing["team_set"]}
            )
        row = await repo.update_team(conn, existing["id"], doc, now)
    return _out(row, await repo.active_count(conn, row["id"]))


async def get_team(ctx: Context, tenant_id: int, key: str) -> TeamOut:
    async with ctx.db.connection() as conn:
        row = await repo.get_team(conn, tenant_id, key)
    if row is None:
        raise DomainError("TEAM_NOT_FOUND", details={"key": key})
    return _out(row)


async def list_teams(ctx: Context, tenant_id: int, team_set: str | None) -> TeamList:
    async with ctx.db.connection() as conn:
        rows = await repo.list_teams(conn, tenant_id, team_set)
    return TeamList([_out(r) for r in rows])


async def _join(
    uow: UnitOfWork,
    tenant_id: int,
    team: Any,
    member_ids: list[int],
    *,
    move: bool,
    via: str,
) -> tuple[list[int], list[int]]:
    """Members into a locked team: (joined, moved). 409 TEAM_SET_TAKEN when one is in another
    team of the set (unless ``move``), 409 TEAM_FULL past capacity; all or nothing."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    stays = await repo.open_stays(conn, tenant_id, team["team_set"], member_ids)
    here = {s["member_id"] for s in stays if s["team_id"] == team["id"]}
    elsewhere = [s for s in stays if s["team_id"] != team["id"]]
    if elsewhere and not move:
        raise DomainError(
            "TEAM_SET_TAKEN",
            details={
                "teamSet": team["team_set"],
                "members": [{"memberId": s["member_id"], "team": s["key"]} for s in elsewhere],
            },
        )
    adding = [m for m in dict.fromkeys(member_ids) if m not in here]
    active = await repo.active_count(conn, team["id"])
    if not rules.room_for(team["capacity"], active, len(adding)):
        raise DomainError(
            "TEAM_FULL",
            details={"capacity": team["capacity"], "memberCount": active, "adding": len(adding)},
        )
    moved = [s["member_id"] for s in elsewhere]
    if elsewhere:
        await repo.end_stays(conn, [s["id"] for s in elsewhere], now)
        _emit_all(
            uow,
            [
                (tenant_id, "team.left", s["member_id"], {"team": s["key"], "via": via}, now)
                for s in elsewhere
            ],
        )
    joined = await repo.start_stays(conn, tenant_id, team["id"], team["team_set"], adding, now, via)
    if len(joined) != len(adding):
        # A concurrent join of the same member to another team of the set won the race.
        raise DomainError(
            "TEAM_SET_TAKEN",
            details={"teamSet": team["team_set"], "memberIds": sorted(set(adding) - set(joined))},
        )
    _emit_all(
        uow,
        [
            (
                tenant_id,
                "team.joined",
                m,
                {"team": team["key"], "teamSet": team["team_set"], "via": via},
                now,
            )
            for m in joined
        ],
    )
    return joined, moved


async def _leave(
    uow: UnitOfWork,
    tenant_id: int,
    team: Any,
    member_ids: list[int],
    via: str,
) -> list[int]:
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    stays = await repo.open_stays(conn, tenant_id, team["team_set"], member_ids)
    mine = [s for s in stays if s["team_id"] == team["id"]]
    await repo.end_stays(conn, [s["id"] for s in mine], now)
    _emit_all(
        uow,
        [
            (tenant_id, "team.left", s["member_id"], {"team": team["key"], "via": via}, now)
            for s in mine
        ],
    )
    return [s["member_id"] for s in mine]


async def set_members(
    uow: UnitOfWork, tenant_id: int, key: str, data: MembershipIn
) -> MembershipOut:
    """Operator bulk membership by externalId: removes first, then adds (members are created
    on first use). All or nothing."""
    conn = uow.conn
    team = await repo.lock_team(conn, tenant_id, key)
    if team is None:
        raise DomainError("TEAM_NOT_FOUND", details={"key": key})
    ids = await members.resolve_many(uow, tenant_id, sorted(set(data.add) | set(data.remove)))
    by_id = {v: k for k, v in ids.items()}
    removed = await _leave(uow, tenant_id, team, [ids[e] for e in data.remove], "operator")
    joined, moved = await _join(
        uow, tenant_id, team, [ids[e] for e in data.add], move=data.move, via="operator"
    )
    return MembershipOut(
        key,
        sorted(by_id[m] for m in joined),
        sorted(by_id[m] for m in moved),
        sorted(by_id[m] for m in removed),
        await repo.active_count(conn, team["id"]),
    )


async def team_members(ctx: Context, tenant_id: int, key: str, history: bool) -> TeamMembersOut:
    async with ctx.db.connection() as conn:
        team = await repo.get_team(conn, tenant_id, key)
        if team is None:
            raise DomainError("TEAM_NOT_FOUND", details={"key": key})
        rows = await repo.stays_of_team(conn, team["id"], history)
    return TeamMembersOut(
        key, [StayOut(r["member_id"], r["joined_at"], r["left_at"], r["joined_via"]) for r in rows]
    )


# ---------------------------------------------------------------- members


async def join(uow: UnitOfWork, tenant_id: int, member_id: int, key: str, data: JoinIn) -> MyTeam:
    """A member joins with the team's code (open teams need none). Already in: the same
    answer, nothing changes."""
    conn = uow.conn
    team = await repo.lock_team(conn, tenant_id, key)
    if team is None:
        raise DomainError("TEAM_NOT_FOUND", details={"key": key})
    if not rules.may_join(team["open"], data.join_code, team["join_code"]):
        raise DomainError("TEAM_JOIN_CODE_INVALID", details={"key": key})
    await _join(uow, tenant_id, team, [member_id], move=False, via="code")
    return next(t for t in await _my(conn, tenant_id, member_id) if t.key == key)


async def leave(uow: UnitOfWork, tenant_id: int, member_id: int, key: str) -> LeaveOut:
    conn = uow.conn
    team = await repo.lock_team(conn, tenant_id, key)
    if team is None:
        raise DomainError("TEAM_NOT_FOUND", details={"key": key})
    left = await _leave(uow, tenant_id, team, [member_id], "member")
    return LeaveOut(key, bool(left))


async def _my(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> list[MyTeam]:
    rows = await repo.my_teams(conn, tenant_id, member_id)
    return [
        MyTeam(
            r["key"],
            r["name"],
            r["kind"],
            r["team_set"],
            r["captain_id"] == member_id,
            r["member_count"],
            r["capacity"],
            r["joined_at"],
        )
        for r in rows
    ]


async def mine(ctx: Context, tenant_id: int, member_id: int) -> MyTeams:
    async with ctx.db.connection() as conn:
        return MyTeams(await _my(conn, tenant_id, member_id))


# ---------------------------------------------------------------- public lookups


async def teams_by_keys(
    conn: asyncpg.Connection, tenant_id: int, keys: Sequence[str]
) -> dict[str, TeamInfo]:
    """Public: teams of the tenant by key (unknown keys absent)."""
    return {r["key"]: _info(r) for r in await repo.teams_by(conn, tenant_id, keys=list(keys))}


async def teams_by_ids(
    conn: asyncpg.Connection, tenant_id: int, ids: Sequence[int]
) -> dict[int, TeamInfo]:
    """Public: teams of the tenant by id (ids of another tenant absent)."""
    return {r["id"]: _info(r) for r in await repo.teams_by(conn, tenant_id, ids=list(ids))}


async def teams_in_set(conn: asyncpg.Connection, tenant_id: int, team_set: str) -> list[TeamInfo]:
    """Public: every team of a set, by id."""
    return [_info(r) for r in await repo.teams_by(conn, tenant_id, team_set=team_set)]


async def teams_at(
    conn: asyncpg.Connection,
    tenant_id: int,
    team_ids: Sequence[int],
    pairs: Sequence[tuple[int, datetime]],
) -> dict[tuple[int, datetime], int]:
    """Public: for each (member, instant), the team among ``team_ids`` the member was in at
    that instant (from the membership history); pairs in none are absent. The teams must be
    of one set (a member is in at most one of them at any instant)."""
    if not pairs or not team_ids:
        return {}
    rows = await repo.stays_at(conn, tenant_id, list(team_ids), sorted({m for m, _ in pairs}))
    stays: dict[int, list[rules.Stay]] = defaultdict(list)
    for r in rows:
        stays[r["member_id"]].append((r["team_id"], r["joined_at"], r["left_at"]))
    out = {}
    for m, at in pairs:
        t = rules.team_at(stays.get(m, ()), at)
        if t is not None:
            out[(m, at)] = t
    return out


async def members_at(
    conn: asyncpg.Connection, team_ids: Sequence[int], at: datetime
) -> dict[int, list[int]]:
    """Public: the members of each team at an instant."""
    out: dict[int, list[int]] = {t: [] for t in team_ids}
    for r in await repo.members_at(conn, list(team_ids), at):
        out[r["team_id"]].append(r["member_id"])
    return out


async def headcounts(
    conn: asyncpg.Connection, team_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, int]:
    """Public: distinct members who were in each team at some time in ``[start, end)``."""
    got = await repo.headcounts(conn, list(team_ids), start, end)
    return {t: got.get(t, 0) for t in team_ids}
