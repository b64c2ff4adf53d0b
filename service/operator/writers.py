"""Writes every config kind shares, through each feature's own save function (the one its PUT
route calls): JSON Merge Patch (RFC 7396), copy as a new draft, and state changes (archive,
pause, resume) as a save of the stored document with another ``state``.

A kind is one ``Writer`` line: its body type and save function, and which state each action
sets (absent: the action is not offered for that kind, 404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from service.challenges import service as challenges
from service.challenges.schemas import ChallengeIn
from service.checkins import service as checkins
from service.checkins.schemas import CampaignIn
from service.core.constraints import problem, problems_of, rule_problems_of, validation_failed
from service.core.errors import DomainError
from service.core.uow import UnitOfWork
from service.events import service as events
from service.events.schemas import RuleIn
from service.leaderboards import service as boards
from service.leaderboards.schemas import LeaderboardIn, RedBlackIn
from service.operator import configs
from service.pks import service as pks
from service.pks.schemas import PkIn
from service.points import operator as points_operator
from service.points.routes import ladder_problems
from service.points.schemas import LadderIn
from service.rituals import service as rituals
from service.rituals.schemas import RitualIn
from service.teams import service as teams
from service.teams.schemas import TeamIn
from service.wheel import service as wheel
from service.wheel.schemas import WheelIn

Save = Callable[[UnitOfWork, int, str, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Writer:
    body: Any
    save: Save
    actions: dict[str, str] = field(default_factory=dict)  # action -> state it sets
    draft: str | None = None  # the state of a copy (None: copied as is)
    codes: tuple[str, ...] = ()  # error codes the kind's save answers (OpenAPI)
    single: bool = False  # one config per tenant (its key is fixed): no copy


async def _save_ladder(uow: UnitOfWork, tenant_id: int, key: str, data: LadderIn) -> Any:
    """PUT /admin/v1/levels: the ladder's own rules, then the save (the key is ``ladder``)."""
    problems = ladder_problems(data)
    if problems:
        raise validation_failed(problems)
    return await points_operator.put_ladder(uow, tenant_id, data)


async def _save_ritual(uow: UnitOfWork, tenant_id: int, key: str, data: RitualIn) -> Any:
    """PUT /admin/v1/rituals (the key is ``ritual``)."""
    return await rituals.put_definition(uow, tenant_id, data)


WRITERS: dict[str, Writer] = {
    "wheels": Writer(WheelIn, wheel.put_wheel, {"archive": "ended"}, "draft"),
    "checkin-campaigns": Writer(CampaignIn, checkins.put_campaign, {"archive": "ended"}, "draft"),
    "rules": Writer(RuleIn, events.put_rule, {"pause": "paused", "resume": "live"}, "paused"),
    "challenges": Writer(ChallengeIn, challenges.put_challenge, {}, "draft"),
    "leaderboards": Writer(
        LeaderboardIn,
        boards.put_board,
        codes=("LEADERBOARD_KEY_CLASH", "LEADERBOARD_ARCHIVED"),
    ),
    "red-black": Writer(RedBlackIn, boards.put_red_black),
    "levels": Writer(LadderIn, _save_ladder, single=True),
    "rituals": Writer(RitualIn, _save_ritual, single=True, codes=("RITUAL_NOT_CONFIGURED",)),
    "teams": Writer(TeamIn, teams.put_team, codes=("TEAM_SET_FIXED",)),
    "pks": Writer(PkIn, pks.put_pk, codes=("PK_STARTED", "PK_SETTLED")),
}


def check_body(type_: Any, raw: Any) -> Any:
    """The PUT routes' strict check: shape problems, then the kind's rule problems, all at
    once (422 VALIDATION_FAILED)."""
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        shape = problems_of(type_, raw, "body") or [
            problem("body", "", "INVALID", str(exc).split(" - ")[0])
        ]
        raise validation_failed(shape + rule_problems_of(type_, raw, shape)) from exc


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


async def stored(conn: Any, tenant_id: int, kind: str, key: str) -> dict:
    """The stored document of one config. Errors: NOT_FOUND."""
    spec = configs.KINDS[kind]
    row = await conn.fetchrow(
        f"SELECT {spec.config_sql} AS config FROM {spec.table} t "
        f"WHERE t.tenant_id = $1 AND {spec.key_sql} = $2",
        tenant_id,
        key,
    )
    if row is None:
        raise DomainError("NOT_FOUND", details={"kind": kind, "key": key})
    return dict(row["config"] or {})


def _without_nulls(doc: Any) -> Any:
    # Stored documents hold defaults as null; a PUT body omits them instead.
    if isinstance(doc, dict):
        return {k: _without_nulls(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_without_nulls(v) for v in doc]
    return doc


async def save_doc(uow: UnitOfWork, tenant_id: int, kind: str, key: str, doc: dict) -> Any:
    w = WRITERS[kind]
    return await w.save(uow, tenant_id, key, check_body(w.body, _without_nulls(doc)))


async def patch(uow: UnitOfWork, tenant_id: int, kind: str, key: str, body: Any) -> Any:
    """Apply a merge patch to the stored document and save it as a PUT would."""
    if not isinstance(body, dict):
        raise validation_failed([problem("body", "", "WRONG_TYPE", "expected an object")])
    doc = merge_patch(await stored(uow.conn, tenant_id, kind, key), body)
    return await save_doc(uow, tenant_id, kind, key, doc)


async def set_state(uow: UnitOfWork, tenant_id: int, kind: str, key: str, action: str) -> Any:
    """archive / pause / resume: the stored document saved with the action's state."""
    state = WRITERS[kind].actions.get(action)
    if state is None:
        raise DomainError("NOT_FOUND", details={"kind": kind, "action": action})
    doc = await stored(uow.conn, tenant_id, kind, key)
    doc["state"] = state
    return await save_doc(uow, tenant_id, kind, key, doc)


async def copy(uow: UnitOfWork, tenant_id: int, kind: str, key: str, new_key: str) -> Any:
    """A new config under ``new_key`` from the stored one (a draft where the kind has one).
    Errors: NOT_FOUND (source), CONFLICT (``new_key`` is taken)."""
    conn = uow.conn
    doc = await stored(conn, tenant_id, kind, key)
    spec = configs.KINDS[kind]
    if WRITERS[kind].single:
        raise DomainError("NOT_FOUND", details={"kind": kind, "action": "copy"})
    taken = await conn.fetchval(
        f"SELECT 1 FROM {spec.table} t WHERE t.tenant_id = $1 AND {spec.key_sql} = $2",
        tenant_id,
        new_key,
    )
    if taken:
        raise DomainError("CONFLICT", details={"problem": "key taken", "key": new_key})
    draft = WRITERS[kind].draft
    if draft is not None:
        doc["state"] = draft
    return await save_doc(uow, tenant_id, kind, new_key, doc)


async def then_item(uow: UnitOfWork, tenant_id: int, kind: str, key: str, op: Any) -> Any:
    """Run ``op(uow)`` then answer the config as a list item."""
    await op(uow)
    return await configs.get_item(uow.ctx, uow.conn, tenant_id, configs.KINDS[kind], key)
