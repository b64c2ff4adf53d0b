"""The operator console at /console: server-rendered pages, a signed session, CSRF on posts."""

from __future__ import annotations

from pathlib import Path

from litestar.static_files import create_static_files_router

from service.console import views
from service.core.feature import Feature

HERE = Path(__file__).parent

FEATURE = Feature(
    name="console",
    routers=[
        views.console_router,
        create_static_files_router(
            path="/console/static", directories=[HERE / "static"], include_in_schema=False
        ),
    ],
    extra={"template_dirs": [HERE / "templates"]},
)
