"""The service's own Prometheus metrics, next to Litestar's per-route request metrics.

On ``/metrics`` (prometheus-client; with several granian workers the multiprocess collector
sums the workers' files):

- ``engage_requests_total`` / ``engage_request_duration_seconds`` (Litestar's middleware):
  rate and latency per route template (``/v1/wheels/{wheelKey}/spins``), method and status.
- ``engage_db_pool_connections{state="in_use"|"idle"}`` and ``engage_db_pool_waiting``:
  the PostgreSQL pool of each process, and requests waiting for a connection.
- ``engage_redis_command_seconds{command}``: latency of each Redis call (a script call is
  ``EVALSHA``); a pipeline is one observation per round trip, ``command="PIPELINE"`` (or
  ``"MULTI"`` for a transaction), whatever it carries; a pipeline whose scripts a node had to
  reload (NOSCRIPT) makes a second ``PIPELINE`` observation for the re-sent calls.
- ``engage_outbox_oldest_undelivered_age_seconds``, ``engage_outbox_undelivered_events``
  (up to 100,000 counted) and ``engage_outbox_dead_letters``: refreshed every
  ``REFRESH_S`` by :func:`refresh` from PostgreSQL. The age is measured from the event's
  ``occurred_at`` (a back-dated brand event looks older than it is).
- ``engage_wheel_prizes_left{tenant, wheel, prize}``: stock left of every limited prize of a
  live wheel (PostgreSQL's count), refreshed likewise.
- ``engage_checkins_total``: check-ins committed; ``rate(...[1m]) * 60`` is check-ins per
  minute.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from service.core.context import Context

REFRESH_S = 10.0

DB_POOL = Gauge(
    "engage_db_pool_connections",
    "PostgreSQL pool connections of this process, by state (in_use, idle).",
    ["state"],
    multiprocess_mode="livesum",
)
DB_WAITING = Gauge(
    "engage_db_pool_waiting",
    "Requests waiting for a PostgreSQL connection in this process.",
    multiprocess_mode="livesum",
)
REDIS_SECONDS = Histogram(
    "engage_redis_command_seconds",
    "Latency of one Redis call as the app sees it, seconds.",
    ["command"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
OUTBOX_AGE = Gauge(
    "engage_outbox_oldest_undelivered_age_seconds",
    "Age of the oldest event some subscriber has not passed yet (0 when none), seconds.",
    multiprocess_mode="max",
)
OUTBOX_BACKLOG = Gauge(
    "engage_outbox_undelivered_events",
    "Events the least advanced subscriber has not passed yet (counted up to 100,000).",
    multiprocess_mode="max",
)
DEAD_LETTERS = Gauge(
    "engage_outbox_dead_letters",
    "Events a subscriber gave up on (replay with `engage outbox replay`).",
    multiprocess_mode="max",
)
PRIZES_LEFT = Gauge(
    "engage_wheel_prizes_left",
    "Stock left of a limited prize of a live wheel (PostgreSQL).",
    ["tenant", "wheel", "prize"],
    multiprocess_mode="max",
)
CHECKINS = Counter("engage_checkins_total", "Check-ins committed.")


def observe_redis(command: str, started: float) -> None:
    REDIS_SECONDS.labels(command).observe(time.perf_counter() - started)


def sample_pool(ctx: Context) -> None:
    pool: Any = ctx.db.pool
    size, idle = pool.get_size(), pool.get_idle_size()
    DB_POOL.labels("in_use").set(size - idle)
    DB_POOL.labels("idle").set(idle)


_OUTBOX_SQL = """
SELECT
  (SELECT extract(epoch FROM now() - min(first.occurred_at)) FROM outbox_cursors c
     CROSS JOIN LATERAL (SELECT o.occurred_at FROM outbox o
       WHERE (o.txid, o.id) > (c.last_txid, c.last_id) ORDER BY o.txid, o.id LIMIT 1) first
  ) AS age,
  (SELECT count(*) FROM (SELECT 1 FROM outbox o, (SELECT last_txid, last_id FROM outbox_cursors
      ORDER BY last_txid, last_id LIMIT 1) c
     WHERE (o.txid, o.id) > (c.last_txid, c.last_id) LIMIT 100000) behind) AS backlog,
  (SELECT count(*) FROM outbox_dead_letters) AS dead
"""

_PRIZES_SQL = """
SELECT w.tenant_id, w.key, s.prize_key, s.total - s.issued AS left_
FROM wheel_prize_stock s JOIN wheels w ON w.id = s.wheel_id
WHERE s.total IS NOT NULL AND w.config->>'state' = 'live'
  AND (w.config->>'endsAt') IS NOT NULL AND (w.config->>'endsAt')::timestamptz > now()
LIMIT 5000
"""

_live_prize_labels: set[tuple[str, str, str]] = set()


async def refresh(ctx: Context) -> None:
    """Read the PostgreSQL-derived gauges (a periodic job of every serving process)."""
    sample_pool(ctx)
    async with ctx.db.connection() as conn:
        row = await conn.fetchrow(_OUTBOX_SQL)
        prizes = await conn.fetch(_PRIZES_SQL)
    OUTBOX_AGE.set(max(0.0, float(row["age"] or 0)))
    OUTBOX_BACKLOG.set(int(row["backlog"] or 0))
    DEAD_LETTERS.set(int(row["dead"] or 0))
    seen: set[tuple[str, str, str]] = set()
    for p in prizes:
        labels = (str(p["tenant_id"]), p["key"], p["prize_key"])
        PRIZES_LEFT.labels(*labels).set(int(p["left_"]))
        seen.add(labels)
    for gone in _live_prize_labels - seen:  # a wheel that ended is no longer reported
        PRIZES_LEFT.remove(*gone)
    _live_prize_labels.clear()
    _live_prize_labels.update(seen)
