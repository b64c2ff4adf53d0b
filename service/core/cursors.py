"""Opaque page cursors: a kind letter and an id, base64url; anything else is a CURSOR_INVALID."""

from __future__ import annotations

import base64
import re

from service.core.constraints import cursor_invalid

BIGINT_MAX = 2**63 - 1
_ID = re.compile(r"(?:0|[1-9][0-9]{0,18})", re.ASCII)


def encode(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{row_id}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str | None) -> int | None:
    """The id inside a cursor we issued for ``kind``; None for no cursor. Only the form we
    issue reads: the kind letter, then a decimal id in 0..2**63-1 (no sign, spaces,
    underscores or other digits); anything else is 422 CURSOR_INVALID on query ``cursor``."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(kind):
            raise ValueError
        digits = raw[len(kind) :]
        if not _ID.fullmatch(digits) or int(digits) > BIGINT_MAX:
            raise ValueError
        return int(digits)
    except ValueError as exc:
        raise cursor_invalid() from exc
