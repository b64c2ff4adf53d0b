"""Pure wager-challenge rules: the challenge's days, who finished, and the settlement split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def last_day(start: date, days: int) -> date:
    return start + timedelta(days=days - 1)


def ends_at(start: date, days: int, tz: ZoneInfo) -> datetime:
    """The instant the challenge is over: midnight after its last local day."""
    return day_start(start + timedelta(days=days), tz)


def starts_at(start: date, tz: ZoneInfo) -> datetime:
    return day_start(start, tz)


@dataclass(frozen=True, slots=True)
class Stake:
    entry_id: int  # joining order: lower ids joined earlier
    stake: int
    finished: bool


@dataclass(frozen=True, slots=True)
class Settlement:
    payouts: dict[int, int]  # entry id -> points credited back (0 for a loser)
    platform_cut: int  # points that leave the game: the cut, or a pool nobody won
    outcome: str  # "split", "refund" (nobody finished, refunded), "to_tenant", "cancelled"

    @property
    def paid(self) -> int:
        return sum(self.payouts.values())


def settle(
    entries: Sequence[Stake], cut_pct: int, no_winner: str, *, cancelled: bool = False
) -> Settlement:
    """Split the escrow. The rules, in order:

    - Cancelled: everyone gets their stake back; no cut.
    - Nobody finished: ``no_winner`` "refund" gives every stake back (no cut); "tenant" keeps
      the whole pool as the platform's.
    - Otherwise winners get their own stake back untouched; the cut (``cut_pct`` of the
      losers' pool, rounded down) is taken from the losers' pool only, and the rest is shared
      among winners in proportion to their stakes, each share rounded down.
    - Remainder rule: the points the rounding left over (fewer than the number of winners)
      go one each to the winners with the largest fractional share, ties to the earlier
      entry (lower id). So no point is created or lost:
      sum(stakes) == sum(payouts) + platform_cut, always.
    """
    if not 0 <= cut_pct <= 100:
        raise ValueError("cut_pct is a percentage")
    if any(e.stake <= 0 for e in entries):
        raise ValueError("stakes are positive")
    if cancelled:
        return Settlement({e.entry_id: e.stake for e in entries}, 0, "cancelled")
    winners = [e for e in entries if e.finished]
    if not winners:
        if no_winner == "tenant":
            return Settlement(
                {e.entry_id: 0 for e in entries}, sum(e.stake for e in entries), "to_tenant"
            )
        return Settlement({e.entry_id: e.stake for e in entries}, 0, "refund")
    pool = sum(e.stake for e in entries if not e.finished)
    cut = pool * cut_pct // 100
    share = pool - cut
    weight = sum(w.stake for w in winners)
    payouts = {e.entry_id: 0 for e in entries}
    fractions: list[tuple[int, int]] = []  # (-numerator remainder, entry id) to sort by
    given = 0
    for w in winners:
        whole, frac = divmod(share * w.stake, weight)
        payouts[w.entry_id] = w.stake + whole
        given += whole
        fractions.append((-frac, w.entry_id))
    left = share - given
    for _, entry_id in sorted(fractions)[:left]:
        payouts[entry_id] += 1
    return Settlement(payouts, cut, "split")
