"""Pure team rules: join codes, who may join, capacity, and where a member stood when."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

KINDS = ("store", "squad", "staff")
JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in a store
JOIN_CODE_LENGTH = 8


def new_join_code(rng: random.Random) -> str:
    """A join code from the injected RNG (a CSPRNG in production)."""
    return "".join(rng.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def code_matches(given: str | None, code: str) -> bool:
    """Codes are compared without case and surrounding spaces (typed on a phone)."""
    return given is not None and given.strip().upper() == code.upper()


def may_join(open_team: bool, given_code: str | None, code: str) -> bool:
    """An open team takes anyone; an invite-only team needs its join code."""
    return open_team or code_matches(given_code, code)


def room_for(capacity: int | None, active: int, adding: int) -> bool:
    return capacity is None or active + adding <= capacity


Stay = tuple[int, datetime, datetime | None]  # team id, joined at, left at (None: still in)


def team_at(stays: Sequence[Stay], at: datetime) -> int | None:
    """The team a member was in at an instant, from their stays in one set: a stay covers
    ``[joined_at, left_at)``, so an event at the very moment of a switch counts for the new
    team."""
    for team_id, joined, left in stays:
        if joined <= at and (left is None or at < left):
            return team_id
    return None
