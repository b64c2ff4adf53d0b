"""The member H5 reference page at /h5: one HTML file and plain JS over the public client API."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get

from service.core.assets import static_router
from service.core.feature import Feature

STATIC = Path(__file__).parent / "static"
PAGE = (STATIC / "index.html").read_bytes()


@get("/", include_in_schema=False, media_type="text/html")
async def h5_page() -> Response[bytes]:
    """The page itself (the app reads appId / token from the URL or its login form)."""
    return Response(
        PAGE,
        media_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


FEATURE = Feature(
    name="h5",
    routers=[
        Router(path="/h5", route_handlers=[h5_page], include_in_schema=False),
        static_router("/h5/static", STATIC),
    ],
)
