"""The member H5 reference page at /h5: one HTML file and plain JS over the public client API."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

from service.core.feature import Feature

STATIC = Path(__file__).parent / "static"


@get("/", include_in_schema=False, media_type="text/html")
async def h5_page() -> Response[bytes]:
    """The page itself (the app reads appId / token from the URL or its login form)."""
    return Response(
        (STATIC / "index.html").read_bytes(),
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


FEATURE = Feature(
    name="h5",
    routers=[
        Router(path="/h5", route_handlers=[h5_page], include_in_schema=False),
        create_static_files_router(
            path="/h5/static", directories=[STATIC], include_in_schema=False
        ),
    ],
)
