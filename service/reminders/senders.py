"""Reminder senders: WeChat subscription messages (the official send API with a cached server
access token), a signed webhook, and a log line for development. One interface, picked by the
tenant's config."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol

import httpx
import msgspec
import structlog

from service.core.context import Context
from service.core.errors import DomainError
from service.core.tenancy import find_wechat_app
from service.members import service as members
from service.reminders import rules
from service.webhooks import service as webhooks

log = structlog.get_logger("engage.reminders")

# WeChat answers of the token endpoint that mean our app's registration is wrong: retrying
# does not help (40013 bad appid, 40125 bad secret, 40164 IP not whitelisted).
TOKEN_CONFIG_ERRORS = {40013, 40125, 40164, 41002, 41004}


@dataclass(frozen=True, slots=True)
class Message:
    reminder_id: int
    tenant_id: int
    member_id: int
    kind: str
    template_id: str
    page: str
    data: dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Result:
    outcome: rules.Outcome
    error: str | None = None


class Sender(Protocol):
    async def send(self, ctx: Context, config: dict[str, Any], msg: Message) -> Result: ...


class LogSender:
    """Development: the message is logged, and counts as sent."""

    async def send(self, ctx: Context, config: dict[str, Any], msg: Message) -> Result:
        log.info(
            "reminder (log sender)",
            tenant=msg.tenant_id,
            member=msg.member_id,
            kind=msg.kind,
            template=msg.template_id,
            data=msg.data,
        )
        return Result("sent")


class WebhookSender:
    """A Standard Webhooks POST of ``reminder.<kind>`` to the tenant's URL (SSRF-checked at
    send time like every webhook): ``data`` = reminderId, memberId, externalId, templateId,
    page, fields. 2xx: sent; 4xx other than 408/429: failed; else retried."""

    async def send(self, ctx: Context, config: dict[str, Any], msg: Message) -> Result:
        now = ctx.clock.now()
        try:
            # The brand's own id of the member, as in every other webhook payload (null for
            # a member known only by a WeChat login).
            external_id = (await members.profile(ctx, msg.tenant_id, msg.member_id)).external_id
        except DomainError:
            external_id = None
        body = msgspec.json.encode(
            {
                "type": f"reminder.{msg.kind}",
                "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "data": {
                    "reminderId": msg.reminder_id,
                    "memberId": msg.member_id,
                    "externalId": external_id,
                    "templateId": msg.template_id,
                    "page": msg.page,
                    "fields": msg.data,
                },
            }
        ).decode()
        attempt = await webhooks.send(
            ctx,
            config["webhookUrl"],
            config["webhookSecret"],
            f"msg_reminder_{msg.tenant_id}_{msg.reminder_id}",
            body,
        )
        if attempt.ok:
            return Result("sent")
        code = attempt.status_code
        if code is not None and 400 <= code < 500 and code not in (408, 429):
            return Result("failed", attempt.error)
        return Result("retry", attempt.error)


class _TokenAnswer(msgspec.Struct):
    access_token: str = ""
    expires_in: int = 0
    errcode: int = 0
    errmsg: str = ""


class _SendAnswer(msgspec.Struct):
    errcode: int = 0
    errmsg: str = ""


class WechatSender:
    """``POST /cgi-bin/message/subscribe/send`` with a server access token from
    ``/cgi-bin/stable_token``, cached in Redis (shared by every process) until shortly before
    WeChat expires it; an answer that the token is invalid forces a refresh once and sends
    again."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    async def send(self, ctx: Context, config: dict[str, Any], msg: Message) -> Result:
        async with ctx.db.connection() as conn:
            ident = await members.wechat_openid(
                conn, msg.tenant_id, msg.member_id, config.get("appId")
            )
            app = await find_wechat_app(conn, ident[0]) if ident else None
        if ident is None or app is None or app["tenant_id"] != msg.tenant_id:
            return Result("failed", "the member has no WeChat identity under this app")
        app_id, openid = ident
        payload = {
            "touser": openid,
            "template_id": msg.template_id,
            "data": msg.data,
            **({"page": msg.page} if msg.page else {}),
        }
        for fresh in (False, True):
            try:
                token = await self._token(ctx, msg.tenant_id, app_id, app["app_secret"], fresh)
            except _TokenFailure as exc:
                return Result(exc.outcome, exc.message)
            try:
                resp = await self._client(ctx).post(
                    f"{self._base(ctx)}/cgi-bin/message/subscribe/send",
                    params={"access_token": token},
                    content=msgspec.json.encode(payload),
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                return Result("retry", f"WeChat unreachable: {type(exc).__name__}")
            if resp.status_code != 200:
                return Result("retry", f"WeChat HTTP {resp.status_code}")
            try:
                answer = msgspec.json.decode(resp.content, type=_SendAnswer)
            except msgspec.DecodeError:
                return Result("retry", "WeChat answer unreadable")
            outcome = rules.classify(answer.errcode)
            if outcome == "token":
                await ctx.redis.delete(self._key(ctx, msg.tenant_id, app_id))
                if not fresh:
                    continue
                outcome = "retry"
            error = None if outcome == "sent" else f"WeChat {answer.errcode}: {answer.errmsg}"
            return Result(outcome, error[:300] if error else None)
        return Result("retry", "access token refused twice")

    @staticmethod
    def _base(ctx: Context) -> str:
        return ctx.settings.wechat_api_base.rstrip("/")

    @staticmethod
    def _client(ctx: Context) -> httpx.AsyncClient:
        return ctx.http_client

    @staticmethod
    def _key(ctx: Context, tenant_id: int, app_id: str) -> str:
        return ctx.keys.tenant(tenant_id, "wx-access-token", app_id)

    async def _token(
        self, ctx: Context, tenant_id: int, app_id: str, secret: str, fresh: bool
    ) -> str:
        key = self._key(ctx, tenant_id, app_id)
        if not fresh:
            cached = await ctx.redis.get(key)
            if cached:
                return cached.decode() if isinstance(cached, bytes) else str(cached)
        # One fetch at a time per app in this process; across processes the stable-token
        # endpoint answers the same token to all of them (the plain /cgi-bin/token would
        # invalidate the token another process just fetched).
        async with self._locks.setdefault(key, asyncio.Lock()):
            if not fresh:
                cached = await ctx.redis.get(key)
                if cached:
                    return cached.decode() if isinstance(cached, bytes) else str(cached)
            try:
                resp = await self._client(ctx).post(
                    f"{self._base(ctx)}/cgi-bin/stable_token",
                    content=msgspec.json.encode(
                        {
                            "grant_type": "client_credential",
                            "appid": app_id,
                            "secret": secret,
                            "force_refresh": fresh,
                        }
                    ),
                    headers={"content-type": "application/json"},
                )
                answer = msgspec.json.decode(resp.content, type=_TokenAnswer)
            except (httpx.HTTPError, msgspec.DecodeError) as exc:
                raise _TokenFailure("retry", f"token endpoint: {type(exc).__name__}") from None
            if answer.errcode or not answer.access_token:
                outcome: rules.Outcome = (
                    "failed" if answer.errcode in TOKEN_CONFIG_ERRORS else "retry"
                )
                raise _TokenFailure(
                    outcome, f"WeChat token {answer.errcode}: {answer.errmsg}"[:300]
                )
            # Kept 5 minutes less than WeChat's lifetime so it is never used as it expires.
            await ctx.redis.set(key, answer.access_token, ex=max(60, answer.expires_in - 300))
            return answer.access_token


class _TokenFailure(Exception):
    def __init__(self, outcome: rules.Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


SENDERS: dict[str, Sender] = {
    "wechat": WechatSender(),
    "webhook": WebhookSender(),
    "log": LogSender(),
}
