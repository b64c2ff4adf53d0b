"""Login verifiers: turn a mini-program login code into a WeChat identity.

``wechat`` calls code2Session; ``dev`` accepts ``dev:<openid>`` codes and exists only when
configured. The ``session_key`` WeChat returns is dropped here: it never leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import msgspec
import structlog

from service.core.errors import DomainError

# WeChat's code2Session error codes and what we answer for each. Any other errcode (40013 bad
# appid, 40125 bad secret, ...) is our own misconfiguration or WeChat's trouble, not the member's
# code: it answers WECHAT_UNAVAILABLE so the client does not blame the code, and is logged.
WECHAT_ERRORS = {
    40029: "WECHAT_CODE_INVALID",
    40163: "WECHAT_CODE_USED",
    45011: "WECHAT_RATE_LIMITED",
    40226: "WECHAT_USER_BLOCKED",
    -1: "WECHAT_UNAVAILABLE",
}

# Seconds a client should wait before retrying a rate-limited or failed code2Session.
RETRY_AFTER = {"WECHAT_RATE_LIMITED": "10", "WECHAT_UNAVAILABLE": "2"}

log = structlog.get_logger("engage.wechat")


def _failure(code: str, details: dict[str, Any] | None = None) -> DomainError:
    retry = RETRY_AFTER.get(code)
    return DomainError(code, details=details, headers={"Retry-After": retry} if retry else None)


@dataclass(frozen=True, slots=True)
class WechatIdentity:
    openid: str
    unionid: str | None


class Verifier(Protocol):
    async def verify(self, app_id: str, app_secret: str, code: str) -> WechatIdentity: ...


class DevVerifier:
    async def verify(self, app_id: str, app_secret: str, code: str) -> WechatIdentity:
        prefix, _, openid = code.partition(":")
        if prefix != "dev" or not openid or len(openid) > 128 or not openid.isprintable():
            raise DomainError("WECHAT_CODE_INVALID", details={"expected": "dev:<openid>"})
        return WechatIdentity(openid, None)


class _Code2Session(msgspec.Struct):
    openid: str | None = None
    unionid: str | None = None
    session_key: str | None = None
    errcode: int = 0
    errmsg: str = ""


class WechatVerifier:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    async def verify(self, app_id: str, app_secret: str, code: str) -> WechatIdentity:
        # The query carries the app secret and the code: never log the URL or the answer.
        try:
            resp = await self.client.get(
                f"{self.base_url}/sns/jscode2session",
                params={
                    "appid": app_id,
                    "secret": app_secret,
                    "js_code": code,
                    "grant_type": "authorization_code",
                },
            )
        except httpx.HTTPError as exc:
            log.warning("code2session failed", app_id=app_id, error=type(exc).__name__)
            raise _failure("WECHAT_UNAVAILABLE") from None
        if resp.status_code != 200:
            log.warning("code2session failed", app_id=app_id, upstream_status=resp.status_code)
            raise _failure("WECHAT_UNAVAILABLE", {"upstreamStatus": resp.status_code})
        try:
            data = msgspec.json.decode(resp.content, type=_Code2Session)
        except msgspec.DecodeError:
            log.warning("code2session answer unreadable", app_id=app_id)
            raise _failure("WECHAT_UNAVAILABLE") from None
        if data.errcode:
            code_name = WECHAT_ERRORS.get(data.errcode)
            if code_name is None:
                log.error(
                    "code2session refused: check the app's registration",
                    app_id=app_id,
                    errcode=data.errcode,
                    errmsg=data.errmsg[:200],
                )
                code_name = "WECHAT_UNAVAILABLE"
            raise _failure(code_name, {"wechatErrcode": data.errcode})
        if not data.openid:
            log.warning("code2session answered no openid", app_id=app_id)
            raise _failure("WECHAT_UNAVAILABLE")
        # data.session_key is deliberately dropped here (see the module docstring).
        return WechatIdentity(data.openid, data.unionid or None)
