"""Opaque page cursors: a kind letter and an id, base64url; anything else is a CURSOR_INVALID."""

from __future__ import annotations

import base64

from service.core.constraints import cursor_invalid


def encode(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{row_id}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str | None) -> int | None:
    """The id inside a cursor we issued for ``kind``; None for no cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(kind):
            raise ValueError
        return int(raw[len(kind) :])
    except ValueError as exc:
        raise cursor_invalid() from exc
