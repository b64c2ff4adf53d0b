"""Injected time: everything that depends on "now" asks a Clock, so tests pin it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    """Wall-clock time, optionally shifted by an offset (the dev clock hook sets it)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FixedClock:
    """A clock for tests: stands still until told to move."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, **kwargs: float) -> None:
        self._at += timedelta(**kwargs)


def wall_now(clock: Clock) -> datetime:
    """The real wall-clock instant behind ``clock``: its time without the dev shift
    (``/admin/v1/dev/clock`` sets ``offset``). For what other machines check against their
    own clocks, such as the ``webhook-timestamp`` header; business rules use ``clock.now()``.
    A test clock without a shift answers its pinned time."""
    return clock.now() - getattr(clock, "offset", timedelta(0))


def monotonic() -> float:
    """Elapsed-time source for durations (never for business rules)."""
    return time.perf_counter()


def in_utc(struct: S) -> S:
    """A copy of a msgspec Struct whose datetime fields are in UTC (answers give times in UTC,
    RFC 3339 with `Z`, whatever offset an operator's config was written with)."""
    changes = {
        name: value.astimezone(UTC)
        for name in struct.__struct_fields__
        if isinstance(value := getattr(struct, name), datetime) and value.tzinfo is not None
    }
    return msgspec.structs.replace(struct, **changes) if changes else struct
