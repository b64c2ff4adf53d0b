"""The operator console at /console: server-rendered pages, a signed session, CSRF on posts."""

from __future__ import annotations

from pathlib import Path

from service.console import views
from service.core.assets import static_router
from service.core.feature import Feature

HERE = Path(__file__).parent

FEATURE = Feature(
    name="console",
    routers=[
        views.console_router,
        static_router("/console/static", HERE / "static"),
    ],
    extra={"template_dirs": [HERE / "templates"]},
)
