"""Wire types of the support card, the data export and erasure (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from service.core.constraints import LongReason


class EraseIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    reason: LongReason


class SupportCard(msgspec.Struct, rename="camel"):
    """What support sees of one member: masked personal data, numbers, balances, state."""

    id: int
    external_id: str | None
    nickname: str
    masked_phone: str | None
    member_no: int | None
    member_number: str | None
    joined_at: datetime
    points: int
    growth: int
    level: str | None
    ritual: str
    invited_by: int | None
    invited: int
    invitees_joined: int
    badges: int
    pending_ceremonies: int
    erased_at: datetime | None


class ExportOut(msgspec.Struct, rename="camel"):
    """One member's data (PIPL access request): profile, identities, consents, ritual data,
    ledger, badges and titles, prizes. Phone numbers and shipping contacts stay masked."""

    exported_at: datetime
    profile: dict[str, Any]
    identities: list[dict[str, Any]]
    ritual: dict[str, Any]
    ledger: list[dict[str, Any]]
    badges: dict[str, Any]
    prizes: list[dict[str, Any]]


class EraseOut(msgspec.Struct, rename="camel"):
    external_id: str
    erased_at: datetime
    board_rows_removed: int
    contacts_removed: int
