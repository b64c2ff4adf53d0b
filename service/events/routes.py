"""Routes: the brand posts member events; operators define the rules that reward them."""

from __future__ import annotations

from litestar import Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.core.apidoc import errors
from service.core.http import RequestUnit, get_ctx, operator_principal, operator_work
from service.core.tenancy import Operator
from service.events import service
from service.events.schemas import EventBatch, EventIn, IngestOut, RuleIn, RuleKey, RuleOut


@errors(
    "MEMBER_NOT_FOUND",
    "MEMBER_ERASED",
    "EVENT_IN_FUTURE",
    "ORIGINAL_EVENT_UNKNOWN",
    idempotent=True,
)
@post(
    "/events",
    status_code=200,
    opt={"scope": "events"},
    tags=["events"],
    summary="Ingest member events (one, or a batch of up to 1,000)",
    description=(
        "Each event is deduped by its eventId: sending it again changes nothing and answers "
        "status `duplicate`. A batch is applied in one transaction; each event gets its own "
        "status. A single event that is rejected answers with the error's HTTP status. Events "
        "for an erased member (privacy erase) are rejected with MEMBER_ERASED (410): the "
        "member is never re-created. EVENT_IN_FUTURE: occurredAt more than 300 s after the "
        "time received (`details`: occurredAt, receivedAt, latestAccepted, slackSeconds)."
    ),
)
async def post_events(
    data: JSONBody[EventIn | EventBatch],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[IngestOut]:
    """Transaction: one event without an Idempotency-Key has no BEGIN; the commit point is
    the one statement ``SINGLE_SQL`` in ``service.ingest_one`` (the rare cases, and a batch,
    and any request with a key: BEGIN .. COMMIT). After commit: the outbox dispatcher is
    woken. On failure nothing is written and there is nothing to undo (no Redis work)."""
    if isinstance(data, EventIn):
        return await work.respond_single(service.ingest_one, operator.tenant_id, data)
    return await work.respond(service.ingest, operator.tenant_id, data)


@errors(idempotent=True)
@put(
    "/rules/{key:str}",
    opt={"scope": "config"},
    tags=["events"],
    summary="Create or change an event rule",
    description=(
        "Conditions are declarative comparisons on the event's attributes; a rule whose "
        "conditions can never hold, or with unknown fields, is refused with every problem "
        "listed (422 VALIDATION_FAILED) and nothing changes."
    ),
)
async def put_rule(
    key: RuleKey,
    data: JSONBody[RuleIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[RuleOut]:
    return await work.respond(service.put_rule, operator.tenant_id, key, data)


@errors("RULE_NOT_FOUND")
@get("/rules/{key:str}", opt={"scope": "config"}, tags=["events"], summary="An event rule")
async def get_rule(key: RuleKey, operator: NamedDependency[Operator], state: State) -> RuleOut:
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        return await service.get_rule(conn, operator.tenant_id, key)


@errors()
@get("/rules", opt={"scope": "config"}, tags=["events"], summary="All event rules")
async def list_rules(operator: NamedDependency[Operator], state: State) -> list[RuleOut]:
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        return await service.list_rules(conn, operator.tenant_id)


admin_router = Router(
    path="/admin/v1",
    route_handlers=[post_events, put_rule, get_rule, list_rules],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
