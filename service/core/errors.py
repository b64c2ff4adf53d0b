"""The one error tree: every failure a client can see has a stable code, a status and a message."""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg
import redis.exceptions as redis_errors

# Every code a client may switch on, its HTTP status, and the message in Chinese (default) and
# English. frontend-api-spec/README.md lists the same table; a test keeps the two in step.
CATALOGUE: dict[str, tuple[int, str, str]] = {
    "MALFORMED_REQUEST": (400, "请求格式有误", "The request could not be parsed."),
    "VALIDATION_FAILED": (
        422,
        "请求参数有误",
        "Some fields are missing or invalid; every problem is in details.problems.",
    ),
    "PAYLOAD_TOO_LARGE": (413, "请求内容过大", "The request body is too large."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "不支持的内容类型", "Send the body as application/json."),
    "UNAUTHENTICATED": (401, "请先登录", "Authentication is required."),
    "TOKEN_EXPIRED": (401, "登录已过期，正在刷新", "The token has expired; refresh it."),
    "TOKEN_INVALID": (401, "登录状态无效，请重新登录", "The token is invalid; log in again."),
    "API_KEY_INVALID": (401, "API 密钥无效", "The API key is missing, unknown or revoked."),
    "FORBIDDEN_SCOPE": (403, "没有权限执行此操作", "The API key lacks the scope for this call."),
    "NOT_FOUND": (404, "内容不存在", "Nothing was found at this address."),
    "MEMBER_NOT_FOUND": (404, "会员不存在", "No such member in this tenant."),
    "METHOD_NOT_ALLOWED": (405, "不支持的请求方法", "This method is not allowed here."),
    "APP_NOT_REGISTERED": (
        400,
        "小程序未接入",
        "This mini-program appId is not registered with any brand.",
    ),
    "DEV_LOGIN_DISABLED": (403, "开发登录未开启", "The dev login verifier is not enabled."),
    "WECHAT_CODE_INVALID": (400, "登录凭证无效，请重试", "The WeChat login code is invalid."),
    "WECHAT_CODE_USED": (
        400,
        "登录凭证已使用，请重新登录",
        "The WeChat login code was already used.",
    ),
    "WECHAT_RATE_LIMITED": (429, "登录太频繁，请稍后再试", "WeChat rate-limited this login."),
    "WECHAT_USER_BLOCKED": (403, "该微信账号登录受限", "WeChat blocked this user's login."),
    "WECHAT_UNAVAILABLE": (
        503,
        "微信服务暂时不可用，请稍后再试",
        "WeChat did not answer; try again.",
    ),
    "IDEMPOTENCY_KEY_REUSED": (
        422,
        "重复请求的内容不一致",
        "This Idempotency-Key was used with a different request.",
    ),
    "IDEMPOTENCY_IN_FLIGHT": (
        409,
        "请求正在处理中，请稍候",
        "A request with this Idempotency-Key is still running.",
    ),
    "RATE_LIMITED": (429, "操作太频繁，请稍后再试", "Too many requests; slow down."),
    "CONFLICT": (409, "操作冲突，请重试", "The request conflicts with the current state."),
    "DEPENDENCY_UNAVAILABLE": (
        503,
        "服务繁忙，请稍后再试",
        "A backing service is unavailable; try again shortly.",
    ),
    "INTERNAL_ERROR": (500, "服务开小差了，请稍后再试", "Something went wrong on our side."),
}


class DomainError(Exception):
    """A failure the client should see, with a stable code.

    Subclasses or instances name a code from CATALOGUE; the status and message follow from it
    unless given. ``details`` is JSON-safe data that helps a client (field paths, limits).
    """

    code: ClassVar[str] = "CONFLICT"

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code or type(self).code  # type: ignore[misc]
        if self.code not in CATALOGUE:
            raise KeyError(f"error code {self.code} is not in the catalogue")
        cat_status, _, _ = CATALOGUE[self.code]
        self.status = status or cat_status
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.code)

    def localized_message(self, lang: str) -> str:
        if self.message:
            return self.message
        _, zh, en = CATALOGUE[self.code]
        return en if lang == "en" else zh


def register_codes(codes: dict[str, tuple[int, str, str]]) -> None:
    """Features add their own codes at import time; a code may be defined once."""
    for code, spec in codes.items():
        existing = CATALOGUE.get(code)
        if existing is not None and existing != spec:
            raise ValueError(f"error code {code} defined twice with different meanings")
        CATALOGUE[code] = spec


class NotFound(DomainError):
    code = "NOT_FOUND"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class DependencyUnavailable(DomainError):
    code = "DEPENDENCY_UNAVAILABLE"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every 503 tells a client when to retry, whichever layer noticed the outage.
        self.headers.setdefault("Retry-After", "1")


def pick_language(accept_language: str | None) -> str:
    """Chinese unless the client prefers English first."""
    if not accept_language:
        return "zh"
    first = accept_language.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"


# Failures that mean a dependency (PostgreSQL, Redis, the network) did not answer: the same
# request may succeed later, so they become 503 DEPENDENCY_UNAVAILABLE with Retry-After.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionError,
    TimeoutError,
)
