"""The OpenAPI document tells the truth about errors and headers.

Each route declares, in one place, the domain error codes it can answer::

    @errors("MEMBER_NOT_FOUND", "INSUFFICIENT_POINTS", idempotent=True)
    @post("/members/{externalId:str}/points", ...)
    async def adjust(...): ...

The codes every route of a kind can answer are added here, never repeated on routes:
member routes (token and rate-limit codes), operator routes (API key and scope codes), routes
with inputs (``VALIDATION_FAILED``), routes with a body (malformed, too large, wrong media
type), idempotent routes (the ``Idempotency-Key`` codes), writes (``CONFLICT``) and every route
that reads PostgreSQL or Redis (``DEPENDENCY_UNAVAILABLE``).

:func:`document` turns that into each operation's ``responses`` (one entry per status, the
one ``ErrorResponse`` body, the codes of that status listed and enumerated, an example per
code), declares the request headers ``Accept-Language`` and ``Idempotency-Key`` and the
response headers ``X-Request-Id``, ``Idempotent-Replayed`` and ``Retry-After``, and documents
``/metrics`` as Prometheus text. :func:`note_answer` is called for every error answer: a code
the route did not declare is logged and kept in :data:`UNDOCUMENTED`, which the test suite
asserts stays empty, so the document cannot drift from what routes really raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import structlog
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Parameter,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute

from service.core.errors import CATALOGUE

log = structlog.get_logger("engage.apidoc")

ERRORS_OPT = "errors"
IDEMPOTENT_OPT = "idempotent"
NO_DEPENDENCIES_OPT = "no_dependencies"
#: Route option: the 200 answer is also available as ``text/csv`` (documented as such).
CSV_OPT = "csv"

H = TypeVar("H", bound=HTTPRouteHandler)

#: (method, route template, status, code) answered by a route that does not declare it.
UNDOCUMENTED: set[tuple[str, str, int, str]] = set()

MEMBER_CODES = ("UNAUTHENTICATED", "TOKEN_EXPIRED", "TOKEN_INVALID", "RATE_LIMITED")
OPERATOR_CODES = ("API_KEY_INVALID",)
SCOPE_CODES = ("FORBIDDEN_SCOPE",)
INPUT_CODES = ("VALIDATION_FAILED",)
BODY_CODES = ("MALFORMED_REQUEST", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE")
IDEMPOTENCY_CODES = ("VALIDATION_FAILED", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_IN_FLIGHT")
WRITE_CODES = ("CONFLICT",)
DEPENDENCY_CODES = ("DEPENDENCY_UNAVAILABLE",)

_TYPED_PATH_PARAM = re.compile(r"\{\w+:(?!str\})\w+\}")
_RESERVED = {"state", "request", "scope", "headers", "cookies", "query", "socket", "body"}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def errors(*codes: str, idempotent: bool = False, dependencies: bool = True) -> Callable[[H], H]:
    """Declare the domain error codes a route answers beyond those of its kind.

    ``idempotent=True`` marks a route run through ``RequestUnit.respond`` (service.core.http):
    it takes an ``Idempotency-Key`` header and may answer a replay. ``dependencies=False`` marks
    a route that touches neither PostgreSQL nor Redis (it never answers
    ``DEPENDENCY_UNAVAILABLE``).
    """

    def mark(handler: H) -> H:
        handler.opt[ERRORS_OPT] = tuple(codes)
        if idempotent:
            handler.opt[IDEMPOTENT_OPT] = True
        if not dependencies:
            handler.opt[NO_DEPENDENCIES_OPT] = True
        return handler

    return mark


def _has_body(handler: HTTPRouteHandler) -> bool:
    return "data" in handler.parsed_fn_signature.parameters


def _has_inputs(handler: HTTPRouteHandler) -> bool:
    deps = set(handler.resolve_dependencies())
    params = set(handler.parsed_fn_signature.parameters) - _RESERVED - deps
    return bool(params) or any("{" in p for p in handler.paths)


def documented_codes(handler: HTTPRouteHandler) -> tuple[str, ...]:
    """Every code the route may answer: its declared ones and those of its kind, in order."""
    cached = handler.opt.get("_documented_codes")
    if cached is not None:
        return cached
    deps = handler.resolve_dependencies()
    codes: list[str] = []
    if "member" in deps:
        codes += MEMBER_CODES
    if "operator" in deps:
        codes += OPERATOR_CODES
        if handler.opt.get("scope"):
            codes += SCOPE_CODES
    if _has_inputs(handler):
        codes += INPUT_CODES
    if any(_TYPED_PATH_PARAM.search(p) for p in handler.paths):
        codes.append("NOT_FOUND")  # `/prizes/abc` matches no route: a plain 404
    if _has_body(handler):
        codes += BODY_CODES
    if handler.opt.get(IDEMPOTENT_OPT):
        codes += IDEMPOTENCY_CODES
    if set(handler.http_methods) & _WRITES:
        codes += WRITE_CODES
    codes += handler.opt.get(ERRORS_OPT, ())
    if not handler.opt.get(NO_DEPENDENCIES_OPT):
        codes += DEPENDENCY_CODES
    result = tuple(dict.fromkeys(codes))
    handler.opt["_documented_codes"] = result
    return result


def note_answer(scope: Any, status: int, code: str) -> None:
    """Called for every error answer: keep the ones the route's documentation does not list."""
    handler = scope.get("route_handler") if isinstance(scope, dict) else None
    if not isinstance(handler, HTTPRouteHandler) or code == "INTERNAL_ERROR":
        return
    if not handler.include_in_schema or not scope.get("path_template"):
        return  # not a routed request (a test's hand-made request)
    codes = documented_codes(handler)
    if code in codes and CATALOGUE.get(code, (status,))[0] == status:
        return
    item = (scope.get("method", ""), scope["path_template"], status, code)
    if item not in UNDOCUMENTED:
        log.warning(
            "undocumented error answer", method=item[0], route=item[1], status=status, code=code
        )
        UNDOCUMENTED.add(item)


def note_idempotent_use(scope: Any) -> None:
    """Called by ``idempotent()``: a route that runs it must declare ``idempotent=True``."""
    handler = scope.get("route_handler") if isinstance(scope, dict) else None
    if isinstance(handler, HTTPRouteHandler) and not handler.opt.get(IDEMPOTENT_OPT):
        UNDOCUMENTED.add((scope.get("method", ""), scope.get("path_template", ""), 0, "IDEMPOTENT"))


# ----------------------------------------------------------------------------- the document

ERROR_RESPONSE = "ErrorResponse"
PROBLEM = "Problem"


def _error_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["error"],
        description=(
            "The one error shape on every route. Switch on `error.code`, never on the message "
            "(localised by `Accept-Language`)."
        ),
        properties={
            "error": Schema(
                type=OpenAPIType.OBJECT,
                required=["code", "message", "details"],
                properties={
                    "code": Schema(
                        type=OpenAPIType.STRING,
                        enum=sorted(CATALOGUE),
                        description="Stable code; see the client guide's table.",
                    ),
                    "message": Schema(
                        type=OpenAPIType.STRING,
                        description="Human text in the language asked by Accept-Language.",
                    ),
                    "details": Schema(
                        type=OpenAPIType.OBJECT,
                        description=(
                            "JSON data that helps a client. Validation errors list every "
                            "problem at once in `problems`."
                        ),
                        properties={
                            "problems": Schema(
                                type=OpenAPIType.ARRAY,
                                items=Reference(f"#/components/schemas/{PROBLEM}"),
                            )
                        },
                    ),
                },
            )
        },
    )


def _problem_schema() -> Schema:
    text = OpenAPIType.STRING
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["problem"],
        description="One problem with the request.",
        properties={
            "source": Schema(
                type=text,
                enum=["body", "query", "path", "header"],
                description="Where the value came from.",
            ),
            "path": Schema(type=text, description="Field path, e.g. `prizes[2].weight`."),
            "code": Schema(type=text, description="Stable code of the problem."),
            "problem": Schema(type=text, description="Human text."),
        },
    )


def _error_media(codes: list[str], status: int) -> dict[str, OpenAPIMediaType]:
    schema = Schema(
        all_of=[
            Reference(f"#/components/schemas/{ERROR_RESPONSE}"),
            Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "error": Schema(
                        type=OpenAPIType.OBJECT,
                        properties={"code": Schema(type=OpenAPIType.STRING, enum=codes)},
                    )
                },
            ),
        ]
    )
    code = codes[0]
    examples: dict[str, Example | Reference] = {
        code: Example(
            summary=CATALOGUE[code][2],
            value={"error": {"code": code, "message": CATALOGUE[code][2], "details": {}}},
        )
    }
    return {"application/json": OpenAPIMediaType(schema=schema, examples=examples)}


_STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

REQUEST_ID = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING),
    description="The request's id (the one sent in `X-Request-Id`, else a new one); quote it "
    "when reporting a problem.",
)
RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before retrying.",
)
REPLAYED = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, enum=["true"]),
    description="Present when this answer is the stored answer of an earlier request with the "
    "same Idempotency-Key.",
)
ACCEPT_LANGUAGE = Parameter(
    name="Accept-Language",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, examples=["zh-CN", "en"]),
    description="Language of `error.message`: English when the first choice starts with `en`, "
    "Chinese otherwise.",
)
IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(
        type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=r"^[!-~]([ -~]*[!-~])?$"
    ),
    description="A unique key per user action (e.g. a UUID). A retry with the same key and body "
    "answers the first result (with `Idempotent-Replayed: true`) and never acts twice; the same "
    "key with another body answers 422 `IDEMPOTENCY_KEY_REUSED`.",
)
X_REQUEST_ID = Parameter(
    name="X-Request-Id",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, max_length=64),
    description="Optional id of this request (1-64 printable characters), echoed in the answer "
    "and in the service's logs. A longer or unprintable id is replaced by a fresh one (the "
    "answer's `X-Request-Id` says which).",
)


def _operation_for(route: HTTPRoute) -> Iterable[tuple[str, HTTPRouteHandler]]:
    for handler in route.route_handlers:
        if not handler.include_in_schema:
            continue
        for method in handler.http_methods:
            yield method.lower(), handler


def responses_for(handler: HTTPRouteHandler) -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for code in documented_codes(handler):
        by_status.setdefault(CATALOGUE[code][0], []).append(code)
    return by_status


def document(app: Litestar) -> None:
    """Rewrite the built OpenAPI document: real error answers, headers, /metrics as text."""
    from service.core.idempotency import MAX_KEY_LENGTH

    IDEMPOTENCY_KEY.schema.max_length = MAX_KEY_LENGTH  # type: ignore[union-attr]
    openapi = app.openapi_schema
    components = openapi.components
    schemas = dict(components.schemas or {})
    schemas[ERROR_RESPONSE] = _error_schema()
    schemas[PROBLEM] = _problem_schema()
    components.schemas = dict(sorted(schemas.items()))
    components.headers = {
        "X-Request-Id": REQUEST_ID,
        "Retry-After": RETRY_AFTER,
        "Idempotent-Replayed": REPLAYED,
    }
    components.parameters = {
        "XRequestId": X_REQUEST_ID,
        "AcceptLanguage": ACCEPT_LANGUAGE,
        "IdempotencyKey": IDEMPOTENCY_KEY,
    }
    request_id = Reference("#/components/headers/X-Request-Id")
    retry_after = Reference("#/components/headers/Retry-After")
    replayed = Reference("#/components/headers/Idempotent-Replayed")
    paths = openapi.paths or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in paths:
            continue
        item = paths[route.path_format]
        for method, handler in _operation_for(route):
            op = getattr(item, method, None)
            if op is None:
                continue
            if route.path_format == "/metrics":
                op.responses = {
                    "200": OpenAPIResponse(
                        description="Prometheus metrics in the text exposition format.",
                        content={
                            "text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                        },
                    )
                }
                continue
            kept = {k: v for k, v in (op.responses or {}).items() if not k.startswith(("4", "5"))}
            ok = kept.get("200")
            if handler.opt.get(CSV_OPT) and isinstance(ok, OpenAPIResponse):
                # The same answer as CSV (`?format=csv` or `Accept: text/csv`): one row a record.
                ok.content = dict(ok.content or {})
                ok.content["text/csv"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
            for resp in kept.values():
                if isinstance(resp, OpenAPIResponse):
                    resp.headers = dict(resp.headers or {})
                    resp.headers["X-Request-Id"] = request_id
                    if handler.opt.get(IDEMPOTENT_OPT):
                        resp.headers["Idempotent-Replayed"] = replayed
            for status, codes in sorted(responses_for(handler).items()):
                headers: dict[str, OpenAPIHeader | Reference] = {"X-Request-Id": request_id}
                if status in (409, 429, 503):
                    headers["Retry-After"] = retry_after
                listed = "; ".join(f"`{c}`" for c in codes)
                kept[str(status)] = OpenAPIResponse(
                    description=f"{_STATUS_TEXT.get(status, 'Error')}: {listed}.",
                    headers=headers,
                    content=_error_media(codes, status),
                )
            op.responses = kept
            params: list[Parameter | Reference] = list(op.parameters or [])
            params += [
                Reference("#/components/parameters/XRequestId"),
                Reference("#/components/parameters/AcceptLanguage"),
            ]
            if handler.opt.get(IDEMPOTENT_OPT):
                params.append(Reference("#/components/parameters/IdempotencyKey"))
            op.parameters = params
