"""Operator lists: every config kind (one generic handler per kind), API keys, member lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from service.core import tenancy
from service.core.apidoc import errors
from service.core.constraints import (
    Cursor,
    OperatorPageSize,
    constrained,
    problem,
    validation_failed,
)
from service.core.errors import DomainError
from service.core.http import RequestUnit, get_ctx, operator_principal
from service.core.tenancy import Operator
from service.members.schemas import ExternalId
from service.operator import configs, service, stats, writers
from service.operator.configs import ConfigItem, ConfigKind, ConfigPage
from service.operator.schemas import ApiKeyList, MemberCard, MemberHits

StateFilter = constrained(
    str,
    "Only configs in this state (the kind's states are listed in the summary).",
    min_length=1,
    max_length=16,
    pattern=r"^[a-z]+$",
)
KeyId = constrained(str, "An API key id (12 hex digits).", pattern=r"^[0-9a-f]{12}$")
MemberNo = Annotated[int, Parameter(ge=1, le=2**62, description="The member number.")]
SearchText = constrained(
    str, "externalId or nickname prefix, or a member number.", min_length=1, max_length=64
)


async def page_of(
    state: State,
    tenant_id: int,
    kind: ConfigKind,
    state_filter: str | None,
    cursor: str | None,
    limit: int,
) -> ConfigPage:
    """The list shared by the operator API and the console. Errors: VALIDATION_FAILED
    (unknown state for the kind), CURSOR_INVALID. An old name of a state (a wheel's
    ``live``, now ``open`` as its own API says) still filters."""
    if state_filter is not None:
        state_filter = kind.canonical_state(state_filter)
    if state_filter is not None and state_filter not in kind.states:
        raise validation_failed(
            [problem("query", "status", "NOT_ALLOWED", f"one of {', '.join(kind.states)}")]
        )
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        return await configs.list_configs(
            ctx, conn, tenant_id, kind, state=state_filter, cursor=cursor, limit=limit
        )


# Kinds whose own feature already answers GET /admin/v1/<kind> (with its own shape) are
# listed generically under /admin/v1/configs/<kind> only.
_OWN_LIST = frozenset(
    {"leaderboards", "rules", "levels", "webhooks", "badges", "rituals", "teams", "pks"}
)


def _list_handler(kind: ConfigKind, path: str) -> Any:
    async def handler(
        operator: NamedDependency[Operator],
        state: State,
        cursor: Cursor = None,
        limit: OperatorPageSize = 50,
        status: StateFilter | None = None,
    ) -> ConfigPage:
        return await page_of(state, operator.tenant_id, kind, status, cursor, limit)

    handler.__name__ = "list_" + path.strip("/").replace("/", "_").replace("-", "_")
    return errors()(
        get(
            path,
            opt={"scope": "config"},
            tags=["operator"],
            summary=f"List {kind.path}, newest first (states: {', '.join(kind.states)})",
        )(handler)
    )


_LIST_HANDLERS = [_list_handler(k, f"/configs/{k.path}") for k in configs.KINDS.values()] + [
    _list_handler(k, f"/{k.path}") for k in configs.KINDS.values() if k.path not in _OWN_LIST
]


@errors()
@get(
    "/apikeys",
    opt={"scope": "admin"},
    tags=["operator"],
    summary="The tenant's API keys: prefix, scopes, created, last used, revoked",
)
async def list_keys(operator: NamedDependency[Operator], state: State) -> ApiKeyList:
    return await service.api_keys(get_ctx(state), operator.tenant_id)


@errors("NOT_FOUND")
@post(
    "/apikeys/{keyId:str}/revoke",
    status_code=200,
    opt={"scope": "admin"},
    tags=["operator"],
    summary="Revoke an API key (it stops working at once on this process, within 10 s on "
    "others); 404 NOT_FOUND when the tenant has no such unrevoked key",
)
async def revoke_key(keyId: KeyId, operator: NamedDependency[Operator], state: State) -> ApiKeyList:
    ctx = get_ctx(state)
    await service.revoke_key(ctx, operator.tenant_id, keyId)
    return await service.api_keys(ctx, operator.tenant_id)


@errors("MEMBER_NOT_FOUND")
@get(
    "/members/lookup",
    opt={"scope": "members"},
    tags=["operator"],
    summary="One member by externalId or member number: balances, level, prizes, recent "
    "ledger (404 MEMBER_NOT_FOUND)",
)
async def lookup_member(
    operator: NamedDependency[Operator],
    state: State,
    externalId: ExternalId | None = None,
    memberNo: MemberNo | None = None,
) -> MemberCard:
    if (externalId is None) == (memberNo is None):
        raise validation_failed(
            [problem("query", "externalId", "REQUIRED", "give externalId or memberNo (one)")]
        )
    ctx = get_ctx(state)
    member_id = await service.find_member_id(ctx, operator.tenant_id, externalId, memberNo)
    return await service.member_card(ctx, operator.tenant_id, member_id)


@errors()
@get(
    "/members/search",
    opt={"scope": "members"},
    tags=["operator"],
    summary="Members whose externalId or nickname starts with q, or with member number q",
)
async def search_members(
    operator: NamedDependency[Operator], state: State, q: SearchText
) -> MemberHits:
    return await service.search_members(get_ctx(state), operator.tenant_id, q)


async def tenant_stats(ctx: Any, tenant_id: int, days: int) -> stats.StatsOut:
    """Daily figures in the tenant's time zone (shared with the console's dashboard)."""
    async with ctx.db.connection() as conn:
        tenant = await tenancy.get_tenant(conn, tenant_id)
        return await stats.daily(
            ctx, conn, tenant_id, tenant.timezone if tenant else "Asia/Shanghai", days
        )


@errors()
@get(
    "/stats",
    opt={"scope": "reports", "csv": True},
    tags=["operator"],
    summary="Figures per day in the tenant's time zone: check-ins and make-ups, spins and "
    "wins, points issued and spent, new members; dead letters now",
    description="JSON by default; `?format=csv` or `Accept: text/csv` answers one CSV row "
    "per day (UTF-8, header row of the JSON field names).",
)
async def get_stats(
    operator: NamedDependency[Operator],
    state: State,
    request: Request,
    days: Annotated[int, Parameter(ge=1, le=366, description="Days up to today.")] = 14,
    format: Literal["json", "csv"] | None = None,
) -> Response[Any]:
    figures = await tenant_stats(get_ctx(state), operator.tenant_id, days)
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        return Response(
            stats.to_csv(figures),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="stats.csv"'},
        )
    return Response(figures)


KeyParam = constrained(
    str, "The config's key.", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"
)


class CopyIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    new_key: KeyParam


async def _write(
    request: Request, state: State, operator: Operator, kind: str, key: str, run: Any
) -> Response[Any]:
    ctx = get_ctx(state)

    async def go(uow):  # type: ignore[no-untyped-def]
        return await writers.then_item(uow, operator.tenant_id, kind, key, run)

    return await RequestUnit(request, ctx, operator).respond(go)


def _write_handlers(kind: str, w: writers.Writer) -> list[Any]:
    slug = kind.replace("-", "_")

    async def patch_handler(
        key: KeyParam,
        data: Any,
        operator: NamedDependency[Operator],
        state: State,
        request: Request,
    ) -> Response[ConfigItem]:
        return await _write(
            request,
            state,
            operator,
            kind,
            key,
            lambda uow: writers.patch(uow, operator.tenant_id, kind, key, data),
        )

    patch_handler.__name__ = f"patch_{slug}"
    codes = ("NOT_FOUND", "CONFLICT", *w.codes)
    out = [
        errors(*codes, idempotent=True)(
            patch(
                f"/configs/{kind}/{{key:str}}",
                opt={"scope": "config"},
                tags=["operator"],
                summary=f"Change part of a {kind} config (JSON Merge Patch, RFC 7396)",
                description="The stored document merged with the body (null removes a field) is "
                "checked exactly as a PUT: 422 VALIDATION_FAILED lists every problem and changes "
                "nothing. 404 NOT_FOUND when the key does not exist.",
                request_body_media_type="application/merge-patch+json",
            )(patch_handler)
        )
    ]

    async def copy_handler(
        key: KeyParam,
        data: CopyIn,
        operator: NamedDependency[Operator],
        state: State,
        request: Request,
    ) -> Response[ConfigItem]:
        return await _write(
            request,
            state,
            operator,
            kind,
            data.new_key,
            lambda uow: writers.copy(uow, operator.tenant_id, kind, key, data.new_key),
        )

    copy_handler.__name__ = f"copy_{slug}"
    if w.single:
        return out
    out.append(
        errors(*codes, idempotent=True)(
            post(
                f"/configs/{kind}/{{key:str}}/copy",
                status_code=200,
                opt={"scope": "config"},
                tags=["operator"],
                summary=f"Copy a {kind} config under a new key"
                + (f" as a {w.draft} one" if w.draft else ""),
            )(copy_handler)
        )
    )
    for action, target in w.actions.items():
        out.append(errors(*codes, idempotent=True)(_action_handler(kind, slug, action, target)))
    return out


def _action_handler(kind: str, slug: str, action: str, target: str) -> Any:
    async def handler(
        key: KeyParam, operator: NamedDependency[Operator], state: State, request: Request
    ) -> Response[ConfigItem]:
        return await _write(
            request,
            state,
            operator,
            kind,
            key,
            lambda uow: writers.set_state(uow, operator.tenant_id, kind, key, action),
        )

    handler.__name__ = f"{action}_{slug}"
    return post(
        f"/configs/{kind}/{{key:str}}/{action}",
        status_code=200,
        opt={"scope": "config"},
        tags=["operator"],
        summary=f"{action.title()} a {kind} config (state {target}; its history stays)",
    )(handler)


def _versions_handler(kind: ConfigKind) -> Any:
    one = _single_key(kind)

    async def handler(
        key: KeyParam, operator: NamedDependency[Operator], state: State
    ) -> configs.VersionList:
        ctx = get_ctx(state)
        async with ctx.db.connection() as conn:
            found = await configs.versions(conn, operator.tenant_id, kind, key)
        if found is None:
            raise DomainError("NOT_FOUND", details={"kind": kind.path, "key": key})
        return found

    handler.__name__ = "versions_" + kind.path.replace("-", "_")
    return errors("NOT_FOUND")(
        get(
            f"/configs/{kind.path}/{{key:str}}/versions",
            opt={"scope": "config"},
            tags=["operator"],
            summary=f"Every saved version of a {kind.path} config, newest first (up to 200)",
            description="Each save that changed the config is one version: its number, when "
            "it was saved and the document as saved. 404 NOT_FOUND when the tenant has no "
            "such config."
            + (" The key of the tenant's one config is `" + one + "`." if one else ""),
        )(handler)
    )


def _single_key(kind: ConfigKind) -> str:
    return kind.key_sql.strip("'") if kind.key_sql.startswith("'") else ""


_VERSION_HANDLERS = [_versions_handler(k) for k in configs.KINDS.values()]

_WRITE_HANDLERS = [h for kind, w in writers.WRITERS.items() for h in _write_handlers(kind, w)]


@errors("WHEEL_NOT_FOUND")
@get(
    "/winners.csv",
    opt={"scope": "reports"},
    tags=["operator"],
    summary="Every prize won on a wheel as CSV: award, member number, nickname, externalId, "
    "prize, state, times and the claim's shipping contact (name, phone, address)",
    media_type="text/csv",
)
async def winners_export(
    operator: NamedDependency[Operator], state: State, wheel: KeyParam
) -> Response[str]:
    body = await service.winners_csv(get_ctx(state), operator.tenant_id, wheel)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="winners-{wheel}.csv"'},
    )


class DeadLetterOut(msgspec.Struct, rename="camel"):
    id: int
    subscriber: str
    type: str
    attempts: int
    error: str
    created_at: datetime


class DeadLetterList(msgspec.Struct, rename="camel"):
    items: list[DeadLetterOut]


class ReplayOut(msgspec.Struct, rename="camel"):
    replayed: int
    still_failing: int
    dead_letters: list[DeadLetterOut]


Subscriber = constrained(
    str, "Only this subscriber's dead letters.", min_length=1, max_length=64, pattern=r"^[a-z_.-]+$"
)


def _letters(rows: list[dict]) -> list[DeadLetterOut]:
    return [
        DeadLetterOut(
            r["id"], r["subscriber"], r["type"], r["attempts"], r["error"] or "", r["created_at"]
        )
        for r in rows
    ]


@errors()
@get(
    "/dead-letters",
    opt={"scope": "admin"},
    tags=["operator"],
    summary="The tenant's dead letters: events a subscriber gave up on, newest first (up to 200)",
)
async def list_dead_letters(operator: NamedDependency[Operator], state: State) -> DeadLetterList:
    rows = await service.dead_letters(get_ctx(state), operator.tenant_id, 200)
    return DeadLetterList(_letters(rows))


@errors()
@post(
    "/dead-letters/replay",
    status_code=200,
    opt={"scope": "admin"},
    tags=["operator"],
    summary="Deliver the tenant's dead letters again (only its own; another tenant's stay)",
    description="Each letter goes to its subscriber again; one the subscriber accepts is "
    "removed, one that fails again stays (`stillFailing`). Replays sent at once never deliver "
    "a letter twice. Answers the counts and the dead letters left.",
)
async def replay_dead_letters(
    operator: NamedDependency[Operator], state: State, subscriber: Subscriber | None = None
) -> ReplayOut:
    ctx = get_ctx(state)
    out = await service.replay_dead_letters(ctx, operator.tenant_id, subscriber)
    rows = await service.dead_letters(ctx, operator.tenant_id, 200)
    return ReplayOut(out["replayed"], out["stillFailing"], _letters(rows))


admin_router = Router(
    path="/admin/v1",
    route_handlers=[
        *_LIST_HANDLERS,
        *_WRITE_HANDLERS,
        *_VERSION_HANDLERS,
        winners_export,
        list_keys,
        revoke_key,
        lookup_member,
        search_members,
        get_stats,
        list_dead_letters,
        replay_dead_letters,
    ],
    dependencies={"operator": Provide(operator_principal)},
    security=[{"apiKey": []}],
)

__all__ = ["DomainError", "admin_router", "page_of"]
