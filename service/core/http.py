"""HTTP glue shared by every feature: error mapping, principals, client IP, the request's
unit of work (transaction + idempotency)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, NoReturn, ParamSpec

import asyncpg
import msgspec
import structlog
from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from service.core import apidoc, idempotency
from service.core.auth import Member
from service.core.constraints import code_of_message, normalize_problems, problem
from service.core.context import Context
from service.core.errors import CATALOGUE, DEPENDENCY_ERRORS, DomainError, pick_language
from service.core.ratelimit import RateCheck
from service.core.tenancy import ApiKeyCache, Operator
from service.core.uow import UnitOfWork, unit_of_work

log = structlog.get_logger("engage.http")
encoder = msgspec.json.Encoder()

JSON = "application/json"
P = ParamSpec("P")


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(msgspec.Struct):
    """The one error shape on every route."""

    error: ErrorBody


def error_response(request: Request | None, err: DomainError) -> Response:
    lang = pick_language(request.headers.get("accept-language") if request else None)
    if isinstance(err.details.get("problems"), list):
        # Whatever layer raised it, every problem item leaves in the one agreed shape.
        err.details["problems"] = normalize_problems(err.details["problems"])
    if request is not None:
        apidoc.note_answer(request.scope, err.status, err.code)
    body = ErrorEnvelope(ErrorBody(err.code, err.localized_message(lang), err.details))
    return Response(
        content=encoder.encode(body),
        status_code=err.status,
        media_type=JSON,
        headers=err.headers or None,
    )


_STATUS_CODES = {
    400: "VALIDATION_FAILED",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN_SCOPE",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    503: "DEPENDENCY_UNAVAILABLE",
}


def _validation_details(exc: ValidationException) -> dict[str, Any]:
    """Litestar's path/query/header failures, in the agreed problem shape."""
    problems = []
    extra = exc.extra if isinstance(exc.extra, list) else ([exc.extra] if exc.extra else [])
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message") or "")
            source = str(item.get("source") or "body")
            path = str(item.get("key") or "")
            if source == "body" and path == "data":
                path = ""
            problems.append(problem(source, path, code_of_message(message), message))
    if not problems:
        problems.append(problem("body", "", "INVALID", str(exc.detail or "")))
    return {"problems": problems}


def _is_decode_failure(exc: BaseException) -> bool:
    """True when the body was not parseable JSON at all (as opposed to failing validation)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, SerializationException | msgspec.DecodeError) and not isinstance(
            seen, msgspec.ValidationError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def exception_to_response(request: Request, exc: Exception) -> Response:
    """The single place where failures become HTTP answers."""
    if isinstance(exc, DomainError):
        return error_response(request, exc)
    if isinstance(exc, HTTPException):
        code = _STATUS_CODES.get(exc.status_code)
        if code is None:
            code = "INTERNAL_ERROR" if exc.status_code >= 500 else "VALIDATION_FAILED"
        details: dict[str, Any] = {}
        status = exc.status_code if code != "INTERNAL_ERROR" else 500
        if exc.status_code == 400:
            detail = str(exc.detail or "")
            if _is_decode_failure(exc):
                code = "MALFORMED_REQUEST"
                details = {"problems": [problem("body", "", "JSON_INVALID", detail)]}
            elif isinstance(exc, ValidationException):
                details = _validation_details(exc)
                status = CATALOGUE["VALIDATION_FAILED"][0]
            else:
                details = {"problems": [problem("body", "", "INVALID", detail)]}
                status = CATALOGUE["VALIDATION_FAILED"][0]
        err = DomainError(
            code,
            status=status,
            details=details,
            headers=dict(exc.headers or {}),
        )
        return error_response(request, err)
    request_id = request.scope.get("state", {}).get("request_id")
    if isinstance(exc, asyncpg.TransactionRollbackError | asyncpg.UniqueViolationError):
        # A deadlock or serialization failure between concurrent requests (or a race a unique
        # key caught): nothing was committed and the same request will succeed if retried.
        log.warning("transaction conflict", request_id=request_id, error=repr(exc))
        return error_response(
            request,
            DomainError(
                "CONFLICT", headers={"Retry-After": "1"}, details={"requestId": request_id}
            ),
        )
    if isinstance(exc, asyncpg.exceptions._base.DataError | asyncpg.DataError):
        # A value PostgreSQL cannot hold (out of range): retrying the same request never helps.
        log.warning("value out of range", request_id=request_id, error=repr(exc))
        return error_response(
            request,
            DomainError(
                "VALIDATION_FAILED",
                details={"problems": [problem("body", "", "OUT_OF_RANGE", "value out of range")]},
            ),
        )
    if isinstance(exc, (DEPENDENCY_ERRORS, OSError)):
        log.warning("dependency unavailable", request_id=request_id, error=repr(exc))
        return error_response(
            request,
            DomainError(
                "DEPENDENCY_UNAVAILABLE",
                headers={"Retry-After": "1"},
                details={"requestId": request_id},
            ),
        )
    log.error("unhandled error", request_id=request_id, path=request.url.path, exc_info=exc)
    return error_response(request, DomainError("INTERNAL_ERROR", details={"requestId": request_id}))


def get_ctx(state: State) -> Context:
    return state.ctx


def client_ip(request: Request, trusted: frozenset[str]) -> str:
    peer = request.client.host if request.client else "unknown"
    if trusted and peer in trusted:
        fwd = request.headers.get("x-forwarded-for")
        if fwd:
            # The right-most address not belonging to a trusted proxy is the client.
            for hop in reversed([h.strip() for h in fwd.split(",") if h.strip()]):
                if hop not in trusted:
                    try:
                        return str(ipaddress.ip_address(hop))
                    except ValueError:
                        break
    return peer


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if not auth:
        return None
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _authenticated(request: Request, ctx: Context) -> Member | None:
    """The member of a valid bearer token (None without one); TOKEN_* errors as raised."""
    token = _bearer(request)
    if token is None:
        return None
    member = ctx.tokens.verify(token)
    request.scope["state"]["log"].update(tenant=member.tenant_id, member=member.member_id)
    return member


def _member_limits(request: Request, ctx: Context, member: Member) -> RateCheck:
    """The member's request, pending against the IP and member limits (one hash tag: the
    tenant), not counted yet."""
    settings = ctx.settings
    return ctx.limiter.pending(
        f"t{member.tenant_id}",
        (settings.rate_ip_per_min, "ip:" + client_ip(request, ctx.trusted_proxies)),
        (settings.rate_member_per_min, f"m:{member.member_id}"),
    )


async def _refuse_unauthenticated(request: Request, ctx: Context, exc: DomainError) -> NoReturn:
    """A request without a valid token still counts against its IP (guessing tokens is
    bounded too), then fails with its own error (or 429 when the IP is over its limit)."""
    await ctx.limiter.check(
        "ip:" + client_ip(request, ctx.trusted_proxies), (ctx.settings.rate_ip_per_min, "ip")
    )
    raise exc


async def member_principal(request: Request, state: State) -> Member:
    """Dependency for /v1 routes: a valid member token, within the IP and member limits.

    Both limits are counted in one Redis round trip of their own, before the handler. A
    route whose work calls Redis anyway folds them into that call instead: see
    :class:`MemberRequest`.
    """
    ctx: Context = state.ctx
    try:
        member = _authenticated(request, ctx)
        if member is None:
            raise DomainError("UNAUTHENTICATED")
    except DomainError as exc:
        await _refuse_unauthenticated(request, ctx, exc)
    await _member_limits(request, ctx, member).settle()
    return member


class MemberRequest:
    """A /v1 request authenticated in one step, its rate limit folded into its work.

    Litestar's dependency injection (``member: NamedDependency[Member]``) costs more than
    authenticating; and ``member_principal`` spends a Redis round trip on the limits before
    the handler. A hot route takes ``request: Request`` instead and opens this::

        @get("/leaderboards/{boardKey:str}")            # under the member router
        async def read_board(boardKey: Key, request: Request) -> BoardPage:
            async with MemberRequest(request) as m:
                return await service.read_board(m.ctx, m.member, boardKey, rate=m.rate)

    and the service passes ``rate=m.rate`` to its first Redis script (one whose file starts
    with ``--#fold ratelimit``: the script counts the IP and member limits first and runs
    its body only when admitted, else the call raises 429 RATE_LIMITED with Retry-After), or
    queues it first in its pipeline (``await rate.queue(pipe)`` ... ``await
    rate.execute(pipe)``); see service.core.ratelimit.RateCheck. A write (check-in, spin)
    goes through the unit of work as usual; its fold must come BEFORE any durable effect, so
    a refused request takes nothing::

        @post("/checkins/{key:str}", ...)
        async def check_in(key: Key, request: Request) -> Response[CheckinOut]:
            async with MemberRequest(request) as m:
                return await m.work().respond_single(service.check_in, m.member, key, m.rate)

        # service: the calendar bit (and the limits) in one script, before the statement
        marked = await ctx.scripts.checkin_mark(keys=[cal, mk], args=[bit, "0"], rate=rate)

    Whatever the work did not count is counted on the way out: a request that failed before
    reaching Redis (a 404, a 422, an idempotent replay) is counted on its own, and answered
    429 instead if refused. Entering raises UNAUTHENTICATED / TOKEN_* (after counting the IP)
    exactly like ``member_principal``. Redis Cluster: a fold whose keys lie in another slot
    than the tenant's ``{t<tenant>}`` is made as two calls (service.core.redis).

    A route whose work makes no Redis call (``/v1/me``, ``/v1/me/summary``: PostgreSQL only)
    opens ``MemberRequest(request, fold=False)``: the limits are counted on entering (still
    one Redis round trip), so a refused request answers 429 before any statement runs.
    """

    __slots__ = ("ctx", "fold", "member", "rate", "request")

    ctx: Context
    member: Member
    rate: RateCheck

    def __init__(self, request: Request, *, fold: bool = True) -> None:
        self.request = request
        self.fold = fold

    async def __aenter__(self) -> MemberRequest:
        request = self.request
        ctx: Context = request.app.state.ctx
        self.ctx = ctx
        try:
            member = _authenticated(request, ctx)
            if member is None:
                raise DomainError("UNAUTHENTICATED")
        except DomainError as exc:
            await _refuse_unauthenticated(request, ctx, exc)
        self.member = member
        self.rate = _member_limits(request, ctx, member)
        if not self.fold:
            await self.rate.settle()  # no Redis call to fold into: refuse before the work
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if not self.rate.done and (exc_type is None or issubclass(exc_type, Exception)):
            await self.rate.settle()  # (not when cancelled: the client is gone)

    def work(self) -> RequestUnit:
        """The unit of work of this request (``RequestUnit.respond`` / ``respond_single``)."""
        return RequestUnit(self.request, self.ctx, self.member)


async def operator_principal(request: Request, state: State) -> Operator:
    """Dependency for /admin/v1 routes: a valid, unrevoked tenant API key."""
    ctx: Context = state.ctx
    key = _bearer(request)
    if key is None:
        raise DomainError("API_KEY_INVALID")
    cache: ApiKeyCache = ctx.api_keys
    op = await cache.verify(ctx.db.connection, key, ctx.clock.now())
    if op is None:
        raise DomainError("API_KEY_INVALID")
    request.scope["state"]["log"].update(tenant=op.tenant_id, key=op.key_id)
    required = request.route_handler.opt.get("scope")
    if required and not op.allows(required):
        raise DomainError("FORBIDDEN_SCOPE", details={"required": required})
    return op


def caller_of(principal: Member | Operator) -> tuple[int, str]:
    if isinstance(principal, Member):
        return principal.tenant_id, f"m:{principal.member_id}"
    return principal.tenant_id, f"k:{principal.key_id}"


class RequestUnit:
    """The unit of work of one mutating request (a Litestar dependency named ``work``).

    ``respond`` is where the request's transaction starts and ends: it opens a unit of work,
    honours the Idempotency-Key (a retry replays the stored answer; the record is written in
    the same transaction as the effect), makes the ONE service call ``fn(uow, *args)``,
    commits, runs the after-commit work (Redis marks, dispatcher wake), and shapes the answer.
    ``fn`` returns a msgspec Struct (the 200 body). On any exception nothing is committed and
    the unit of work runs its rollback compensations.
    """

    __slots__ = ("caller", "ctx", "request", "tenant_id")

    def __init__(self, request: Request, ctx: Context, principal: Member | Operator) -> None:
        self.request = request
        self.ctx = ctx
        self.tenant_id, self.caller = caller_of(principal)

    async def respond(
        self,
        fn: Callable[Concatenate[UnitOfWork, P], Awaitable[Any]],
        /,
        *args: P.args,
        **kw: P.kwargs,
    ) -> Response:
        return await self._respond(False, fn, *args, **kw)

    async def respond_single(
        self,
        fn: Callable[Concatenate[UnitOfWork, P], Awaitable[Any]],
        /,
        *args: P.args,
        **kw: P.kwargs,
    ) -> Response:
        """``respond`` for a write whose whole effect is ONE statement (a hot path): without an
        Idempotency-Key no BEGIN/COMMIT is sent (the statement is its own transaction; see
        ``service.core.uow``); with one, the ordinary transactional unit records the key with
        the effect, and ``fn`` runs unchanged inside it."""
        return await self._respond(True, fn, *args, **kw)

    async def _respond(
        self,
        single: bool,
        fn: Callable[Concatenate[UnitOfWork, P], Awaitable[Any]],
        /,
        *args: P.args,
        **kw: P.kwargs,
    ) -> Response:
        request = self.request
        apidoc.note_idempotent_use(request.scope)
        key = idempotency.validate_key(request.headers.get("idempotency-key"))
        fp = ""
        if key is not None:
            fp = idempotency.fingerprint(request.method, request.url.path, await request.body())
        async with unit_of_work(self.ctx, single_statement=single and key is None) as uow:
            if key is not None:
                replay = await idempotency.claim(
                    uow,
                    tenant_id=self.tenant_id,
                    caller=self.caller,
                    key=key,
                    request_fingerprint=fp,
                )
                if replay is not None:
                    return Response(
                        content=_mark_replayed(replay.body),
                        status_code=replay.status,
                        media_type=JSON,
                        headers={"Idempotent-Replayed": "true"},
                    )
            body = encoder.encode(await fn(uow, *args, **kw))
            if key is not None:
                await idempotency.remember(
                    uow,
                    tenant_id=self.tenant_id,
                    caller=self.caller,
                    key=key,
                    request_fingerprint=fp,
                    status=200,
                    body=body,
                )
        return Response(content=body, status_code=200, media_type=JSON)


async def member_work(
    request: Request, state: State, member: NamedDependency[Member]
) -> RequestUnit:
    """Dependency ``work`` for /v1 routes that change something (needs ``member``)."""
    return RequestUnit(request, state.ctx, member)


async def operator_work(
    request: Request, state: State, operator: NamedDependency[Operator]
) -> RequestUnit:
    """Dependency ``work`` for /admin/v1 routes that change something (needs ``operator``)."""
    return RequestUnit(request, state.ctx, operator)


def _mark_replayed(body: bytes) -> bytes:
    """A replayed answer says so in its body too: a top-level ``replayed`` field becomes true,
    so the body and the Idempotent-Replayed header never disagree."""
    if b'"replayed":false' not in body:
        return body
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    if isinstance(doc, dict) and doc.get("replayed") is False:
        doc["replayed"] = True
        return encoder.encode(doc)
    return body


def json_response(value: Any, status_code: int = 200) -> Response:
    return Response(content=encoder.encode(value), status_code=status_code, media_type=JSON)


def codes_table() -> list[tuple[str, int, str, str]]:
    return [(code, st, zh, en) for code, (st, zh, en) in sorted(CATALOGUE.items())]
