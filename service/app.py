"""create_app(): routers, error mapping, OpenAPI, metrics, and the lifespan that owns the pools."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.config.app import ExperimentalFeatures  # noqa: F401  (kept for discoverability)
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from openapi_ui_bundles import swagger_ui as swagger_bundle

from service import __version__
from service.config import Settings, load_settings
from service.core import apidoc, idempotency, metrics
from service.core.clock import Clock, SystemClock
from service.core.constraints import strict_request
from service.core.context import Context
from service.core.http import exception_to_response
from service.core.logging import RequestLogMiddleware, configure_logging
from service.core.rng import system_rng
from service.features import all_features
from service.health import routes as health_routes
from service.runtime import open_context

log = structlog.get_logger("engage.app")

DOCS_ASSETS = "/schema/assets"


async def _every(ctx: Context, interval_s: float, job, name: str) -> None:  # type: ignore[no-untyped-def]
    """Run a periodic job forever; a failure is logged and retried at the next tick."""
    while True:
        try:
            await job(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("periodic job failed", job=name, error=repr(exc))
        await asyncio.sleep(interval_s)


async def _purge_idempotency(ctx: Context) -> None:
    await idempotency.purge(ctx)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    background: bool = True,
) -> Litestar:
    """Build the app. Tests pass settings, a pinned clock and a seeded RNG."""
    settings = settings or load_settings()
    configure_logging(settings)
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError(
            "ENGAGE_DATABASE_URL and ENGAGE_REDIS_URL must be set for the app itself; "
            "`engage serve` sets them (starting embedded servers when they are empty)."
        )
    the_clock: Clock = clock or SystemClock()
    features = all_features()
    the_rng = rng or system_rng()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_context(settings, clock=the_clock, rng=the_rng) as ctx:
            app.state.ctx = ctx
            tasks: list[asyncio.Task[None]] = []
            if background:
                tasks.append(asyncio.create_task(ctx.dispatcher.run(ctx, settings.outbox_poll_s)))
                jobs: list[tuple[float, Callable[[Context], Awaitable[Any]], str]] = [
                    (300.0, _purge_idempotency, "idempotency.purge"),
                    (metrics.REFRESH_S, metrics.refresh, "metrics.refresh"),
                ]
                for feature in features:
                    jobs += [
                        (iv, job, f"{feature.name}.{job.__name__}") for iv, job in feature.jobs
                    ]
                for interval, job, name in jobs:
                    tasks.append(asyncio.create_task(_every(ctx, interval, job, name)))
            try:
                yield
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(BaseException):
                        await t

    async def dev_clock_sync(request: Request) -> None:
        """With the dev clock on, every process follows the offset an operator set."""
        ctx: Context = request.app.state.ctx
        raw = await ctx.redis.get(ctx.keys.global_(health_routes.DEV_CLOCK_KEY))
        if isinstance(ctx.clock, SystemClock):
            ctx.clock.offset = timedelta(seconds=float(raw)) if raw else timedelta(0)

    follow_dev_clock = settings.dev_clock_enabled and clock is None

    async def before_request(request: Request) -> None:
        if request.scope["path"] == "/metrics":
            # The pool figures as of this scrape (the other gauges refresh every 10 s).
            metrics.sample_pool(request.app.state.ctx)
        if follow_dev_clock:
            await dev_clock_sync(request)
        # Every body, path, query and header parameter is checked strictly before the handler.
        await strict_request(request)

    prometheus = PrometheusConfig(
        app_name="engage",
        prefix="engage",
        group_path=True,
        exclude=["^/metrics", "^/health"],
    )
    openapi = OpenAPIConfig(
        title="Engage API",
        version=__version__,
        description=(
            "Gamified member engagement. `/v1` is the client API (member token), `/admin/v1` "
            "the operator API (tenant API key). Every error has the shape "
            '`{"error": {"code", "message", "details"}}`; see frontend-api-spec/README.md.'
        ),
        path="/schema",
        # Swagger UI loads its scripts from this service (package openapi-ui-bundles), never
        # from a CDN: /schema works with no internet (tests/test_docs_ui.py checks it).
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url=f"{DOCS_ASSETS}/swagger/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger/swagger-ui-standalone-preset.js",
                favicon="",
            ),
        ],
        components=Components(
            security_schemes={
                "memberToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="Member access token from /v1/auth/*",
                ),
                "apiKey": SecurityScheme(
                    type="http", scheme="bearer", description="Tenant API key `egk_...`"
                ),
            }
        ),
        use_handler_docstrings=False,
    )
    template_dirs = [d for f in features for d in f.extra.get("template_dirs", ())]
    app = Litestar(
        template_config=(
            TemplateConfig(directory=template_dirs, engine=JinjaTemplateEngine)
            if template_dirs
            else None
        ),
        route_handlers=[
            *(r for f in features for r in f.routers),
            PrometheusController,
            create_static_files_router(
                path=f"{DOCS_ASSETS}/swagger",
                directories=[swagger_bundle.static_path],
                include_in_schema=False,
            ),
        ],
        lifespan=[lifespan],
        exception_handlers={Exception: exception_to_response},
        middleware=[RequestLogMiddleware, prometheus.middleware],
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        before_request=before_request,
        debug=False,
        logging_config=None,
    )
    app.state.settings = settings
    apidoc.document(app)
    return app
