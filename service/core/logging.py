"""structlog set-up and the one canonical log line per request."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings

_SENSITIVE = ("phone", "address", "name_on_parcel", "session_key", "secret", "token")

X_REQUEST_ID_MAX = 64  # characters of a client's X-Request-Id we keep (else a new id)


def _mask_sensitive(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Personal data and secrets never reach a log line in clear."""
    for k in list(event):
        if any(s in k for s in _SENSITIVE) and isinstance(event[k], str):
            v = event[k]
            event[k] = (v[:3] + "***" + v[-2:]) if len(v) > 6 else "***"
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    pretty = settings.log_format == "console" or (
        settings.log_format == "auto" and sys.stderr.isatty()
    )
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_sensitive,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if not pretty else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


access_log = structlog.get_logger("engage.request")


class RequestLogMiddleware:
    """Outermost ASGI middleware: request id, X-Request-Id header, one log line at the end.

    Auth writes ``tenant`` and ``member`` into ``scope["state"]["log"]``; the route template is
    read from the matched handler, so the line groups by route, not by raw path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                incoming = v.decode("latin-1")
                break
        # A client id is used as sent when it is 1-64 printable characters (X_REQUEST_ID_MAX);
        # otherwise (too long, control characters) the request gets a fresh id, never a cut one.
        ok = bool(incoming) and len(incoming or "") <= X_REQUEST_ID_MAX
        request_id = incoming if ok and incoming and incoming.isprintable() else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        info: dict[str, Any] = {}
        state["log"] = info
        status = 500
        started = time.perf_counter()
        rid_header = (b"x-request-id", request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            path = scope.get("path", "")
            if not path.startswith("/health") and path != "/metrics":
                route = scope.get("path_template") or path
                access_log.info(
                    "request",
                    request_id=request_id,
                    method=scope.get("method"),
                    route=route,
                    path=path,
                    status=status,
                    duration_ms=duration_ms,
                    **info,
                )
