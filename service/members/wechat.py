"""Login verifiers: turn a mini-program login code into a WeChat identity.

``wechat`` calls code2Session; ``dev`` accepts ``dev:<openid>`` codes and exists only when
configured. The ``session_key`` WeChat returns is dropped here: it never leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx
import msgspec

from service.core.errors import DomainError

# WeChat's code2Session error codes and what we answer for each.
WECHAT_ERRORS = {
    40029: "WECHAT_CODE_INVALID",
    40163: "WECHAT_CODE_USED",
    45011: "WECHAT_RATE_LIMITED",
    40226: "WECHAT_USER_BLOCKED",
    -1: "WECHAT_UNAVAILABLE",
}


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
            raise DomainError("WECHAT_UNAVAILABLE") from exc
        if resp.status_code != 200:
            raise DomainError("WECHAT_UNAVAILABLE", details={"upstreamStatus": resp.status_code})
        try:
            data = msgspec.json.decode(resp.content, type=_Code2Session)
        except msgspec.DecodeError as exc:
            raise DomainError("WECHAT_UNAVAILABLE") from exc
        if data.errcode:
            code_name = WECHAT_ERRORS.get(data.errcode, "WECHAT_CODE_INVALID")
            raise DomainError(code_name, details={"wechatErrcode": data.errcode})
        if not data.openid:
            raise DomainError("WECHAT_UNAVAILABLE")
        return WechatIdentity(data.openid, data.unionid or None)
