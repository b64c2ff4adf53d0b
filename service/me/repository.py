"""The member read model: everything /v1/me and /v1/me/summary show, read in ONE statement.

The features keep their tables and their rules; this statement only reads their rows (the same
rows their own public reads fetch: ``members.repository.get``, ``points.repository.CARD_FACTS``
and ``window_growth``, ``badges.repository.titles_of``/``shown_titles``/``member_badges``,
``ceremonies.repository.count_pending``, ``rituals.repository.current_definition``/
``get_progress``, and for the summary ``checkins.repository.live_with_streaks``,
``wheel.repository.wheels_with_member``, ``leaderboards.repository.board_keys``,
``challenges.repository.challenge_rows``) and hands them to the features' functions that take
pre-fetched rows (``points.card_from_facts``, ``badges.recent_from``, ``rituals.state_from``,
``checkins.live_from``...). A list comes back as parallel arrays (one ``array_agg`` per column,
all in the same order; configs as one ``jsonb_agg``), so every value keeps its PostgreSQL type.
Where the parameters match ($1 tenant, $2 member, $3 now), the features' own SQL is embedded
(``TITLES_SQL``, ``COUNT_PENDING_SQL``, ``CURRENT_DEFINITION_SQL``, ``LIVE_WITH_STREAKS_SQL``,
``WHEELS_WITH_MEMBER_SQL``, ``BOARD_KEYS_SQL``, ``CHALLENGE_ROWS_SQL``, ``LIVE_KEYS_SQL``), so
their rules live in one place; a change to the other reads must be made here too:
tests/test_me_summary.py compares the two paths.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.badges import repository as badges_repo
from service.ceremonies import repository as ceremonies_repo
from service.challenges import repository as challenges_repo
from service.checkins import repository as checkins_repo
from service.leaderboards import repository as lb_repo
from service.members.repository import M_COLUMNS
from service.pks import repository as pks_repo
from service.points.repository import CARD_FACTS
from service.rituals import repository as rituals_repo
from service.wheel import repository as wheel_repo

# $1 tenant, $2 member, $3 now, $4 end of the "expiring soon" window (points.CARD_FACTS),
# $5 start of a rolling ladder's growth window (NULL: not needed), $6 how many recent badges.
_ME = (
    f"SELECT {M_COLUMNS}, {CARD_FACTS}, "
    "CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE ("
    " SELECT COALESCE(sum(delta), 0) FROM ledger_entries WHERE tenant_id = $1 "
    " AND member_id = $2 AND currency = 'growth' AND kind IN ('credit', 'reverse') "
    " AND created_at >= $5 AND created_at <= $3) END AS window_growth, "
    "(SELECT array_agg(tt.title ORDER BY tt.gained_at DESC, tt.id DESC) "
    f" FROM ({badges_repo.TITLES_SQL}) tt) AS titles, "
    "(SELECT s.title FROM member_shown_titles s JOIN member_titles t "
    " ON t.tenant_id = s.tenant_id AND t.member_id = s.member_id AND t.title = s.title "
    " WHERE s.tenant_id = $1 AND s.member_id = $2 "
    " AND (t.expires_at IS NULL OR t.expires_at > $3) LIMIT 1) AS shown_title, "
    "(SELECT count(*) FROM member_badges WHERE tenant_id = $1 AND member_id = $2 "
    " AND revoked_at IS NULL) AS badges_earned, "
    "rb.badge_keys, rb.badge_configs, rb.badge_periods, rb.badge_earned_at, "
    f"({ceremonies_repo.COUNT_PENDING_SQL}) AS pending_ceremonies, "
    "rd.config AS ritual_config, rp.member_id IS NOT NULL AS ritual_started, "
    "rp.steps AS ritual_steps, rp.covenant_version AS ritual_covenant_version, "
    "rp.completed_at AS ritual_completed_at"
)

_ME_FROM = (
    " FROM members m "
    "LEFT JOIN LATERAL (SELECT array_agg(b.key ORDER BY b.earned_at DESC, b.id DESC) "
    " AS badge_keys, jsonb_agg(b.config ORDER BY b.earned_at DESC, b.id DESC) AS badge_configs, "
    " array_agg(b.period_id ORDER BY b.earned_at DESC, b.id DESC) AS badge_periods, "
    " array_agg(b.earned_at ORDER BY b.earned_at DESC, b.id DESC) AS badge_earned_at "
    " FROM (SELECT mb.id, mb.earned_at, mb.period_id, d.key, d.config FROM member_badges mb "
    "  JOIN badge_definitions d ON d.id = mb.badge_id WHERE mb.tenant_id = $1 "
    "  AND mb.member_id = $2 AND mb.revoked_at IS NULL "
    "  ORDER BY mb.earned_at DESC, mb.id DESC LIMIT $6) b) rb ON true "
    f"LEFT JOIN LATERAL ({rituals_repo.CURRENT_DEFINITION_SQL}) rd ON true "
    "LEFT JOIN ritual_progress rp ON rp.tenant_id = $1 AND rp.member_id = $2"
)
_WHERE = " WHERE m.tenant_id = $1 AND m.id = $2"

# The launch summary adds the tenant's live campaigns of every kind, with the member's state.
_SUMMARY = (
    ", ck.checkin_keys, ck.checkin_timezones, ck.checkin_titles, ck.checkin_last_days, "
    "ck.checkin_streaks, wh.wheel_keys, wh.wheel_configs, wh.wheel_spins, wh.wheel_days, "
    "wh.wheel_spins_day, wh.wheel_free_used_day, lb.board_keys, lb.board_configs, "
    "ch.challenge_keys, ch.challenge_states, ch.challenge_settled_at, ch.challenge_ends_at, "
    "ch.challenge_join_opens_at, ch.challenge_join_closes_at, pk.pk_keys"
)

_SUMMARY_FROM = (
    " LEFT JOIN LATERAL (SELECT array_agg(lc.key ORDER BY lc.key) AS checkin_keys, "
    " array_agg(lc.timezone ORDER BY lc.key) AS checkin_timezones, "
    " array_agg(lc.title ORDER BY lc.key) AS checkin_titles, "
    " array_agg(lc.last_day ORDER BY lc.key) AS checkin_last_days, "
    " array_agg(lc.current_streak ORDER BY lc.key) AS checkin_streaks "
    f" FROM ({checkins_repo.LIVE_WITH_STREAKS_SQL}) lc) ck ON true "
    "LEFT JOIN LATERAL (SELECT array_agg(wr.key ORDER BY wr.key) AS wheel_keys, "
    " jsonb_agg(wr.config ORDER BY wr.key) AS wheel_configs, "
    " array_agg(wr.spins ORDER BY wr.key) AS wheel_spins, "
    " array_agg(wr.day ORDER BY wr.key) AS wheel_days, "
    " array_agg(wr.spins_day ORDER BY wr.key) AS wheel_spins_day, "
    " array_agg(wr.free_used_day ORDER BY wr.key) AS wheel_free_used_day "
    f" FROM ({wheel_repo.WHEELS_WITH_MEMBER_SQL}) wr) wh ON true "
    "LEFT JOIN LATERAL (SELECT array_agg(b.key ORDER BY b.key) AS board_keys, "
    f" jsonb_agg(b.config ORDER BY b.key) AS board_configs FROM ({lb_repo.BOARD_KEYS_SQL}) b"
    ") lb ON true "
    "LEFT JOIN LATERAL (SELECT array_agg(cr.key ORDER BY cr.key) AS challenge_keys, "
    " array_agg(cr.state ORDER BY cr.key) AS challenge_states, "
    " array_agg(cr.settled_at ORDER BY cr.key) AS challenge_settled_at, "
    " array_agg(cr.ends_at ORDER BY cr.key) AS challenge_ends_at, "
    " array_agg(cr.join_opens_at ORDER BY cr.key) AS challenge_join_opens_at, "
    " array_agg(cr.join_closes_at ORDER BY cr.key) AS challenge_join_closes_at "
    f" FROM ({challenges_repo.CHALLENGE_ROWS_SQL}) cr) ch ON true "
    "LEFT JOIN LATERAL (SELECT array_agg(lk.key ORDER BY lk.starts_at, lk.key) AS pk_keys "
    f" FROM ({pks_repo.LIVE_KEYS_SQL}) lk) pk ON true"
)

ME_SQL = _ME + _ME_FROM + _WHERE
SUMMARY_SQL = _ME + _SUMMARY + _ME_FROM + _SUMMARY_FROM + _WHERE


async def read(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    now: datetime,
    expiring_until: datetime,
    window_start: datetime | None,
    recent_badges: int,
    *,
    summary: bool,
) -> asyncpg.Record | None:
    """The member's read model in one statement (None: no such member). Columns: the member
    row, ``CARD_FACTS``, ``window_growth`` (None without ``window_start``), ``titles``,
    ``shown_title``, ``badges_earned`` and ``badge_*`` (the latest ``recent_badges``),
    ``pending_ceremonies``, ``ritual_*``; with ``summary`` also ``checkin_*``, ``wheel_*``,
    ``board_*``, ``challenge_*`` and ``pk_keys`` (parallel arrays, None when empty)."""
    return await conn.fetchrow(
        SUMMARY_SQL if summary else ME_SQL,
        tenant_id,
        member_id,
        now,
        expiring_until,
        window_start,
        recent_badges,
    )


def rows(record: Any, columns: dict[str, str]) -> list[dict[str, Any]]:
    """The parallel arrays ``columns`` (row key -> column of ``record``) zipped back into rows
    (an empty list when the arrays are NULL: nothing matched)."""
    arrays = {k: record[c] or [] for k, c in columns.items()}
    n = len(next(iter(arrays.values())))
    return [{k: a[i] for k, a in arrays.items()} for i in range(n)]
