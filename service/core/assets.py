"""Serving a package's own static files (CSS, JS) by exact name, with a content type each.

Only files present in the folder at start-up are served (read once, kept in memory), so a
request can never name anything else (no path traversal, no directory listing)."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get

from service.core.constraints import constrained

AssetName = constrained(
    str, "A file name.", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+\.[a-z]+$"
)
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}


def static_router(path: str, folder: Path) -> Router:
    """GET ``{path}/{name}`` for every file directly in ``folder`` with a known suffix."""
    files = {
        p.name: (p.read_bytes(), TYPES[p.suffix])
        for p in sorted(folder.iterdir())
        if p.suffix in TYPES
    }

    @get("/{name:str}", include_in_schema=False)
    async def asset(name: AssetName) -> Response[bytes]:
        found = files.get(name)
        if found is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(
            found[0],
            media_type=found[1],
            headers={"Cache-Control": "public, max-age=300"},
        )

    return Router(path=path, route_handlers=[asset], include_in_schema=False)
