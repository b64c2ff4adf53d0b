"""Writes load/grafana/engage.json, the sale-day dashboard (run after changing a panel):
    uv run python load/grafana/make_dashboard.py
Every expression uses a metric the service exports (tests/test_metrics.py checks the names)."""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("engage.json")
DS = {"type": "prometheus", "uid": "prometheus"}

# (title, unit, [(expression, legend)])
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "Requests per second by route",
        "reqps",
        [("sum by (path) (rate(engage_requests_total[1m]))", "{{path}}")],
    ),
    (
        "p99 latency by route",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, path) "
                "(rate(engage_request_duration_seconds_bucket[1m])))",
                "{{path}}",
            )
        ],
    ),
    (
        "Errors by status (4xx/5xx per second)",
        "reqps",
        [
            (
                'sum by (status_code) (rate(engage_requests_total{status_code=~"[45].."}[1m]))',
                "{{status_code}}",
            )
        ],
    ),
    ("Check-ins per minute", "short", [("sum(rate(engage_checkins_total[1m])) * 60", "check-ins")]),
    (
        "Prizes left per live wheel",
        "short",
        [("max by (tenant, wheel, prize) (engage_wheel_prizes_left)", "{{wheel}} {{prize}}")],
    ),
    (
        "PostgreSQL pool",
        "short",
        [
            ('sum(engage_db_pool_connections{state="in_use"})', "in use"),
            ('sum(engage_db_pool_connections{state="idle"})', "idle"),
            ("sum(engage_db_pool_waiting)", "waiting"),
        ],
    ),
    (
        "Redis call p99 by command",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, command) "
                "(rate(engage_redis_command_seconds_bucket[1m])))",
                "{{command}}",
            )
        ],
    ),
    (
        "Outbox: oldest undelivered event and dead letters",
        "short",
        [
            ("max(engage_outbox_oldest_undelivered_age_seconds)", "oldest undelivered (s)"),
            ("max(engage_outbox_undelivered_events)", "undelivered events"),
            ("max(engage_outbox_dead_letters)", "dead letters"),
        ],
    ),
]


def dashboard() -> dict:
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": DS,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(65 + j), "datasource": DS, "expr": e, "legendFormat": legend}
                    for j, (e, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": "engage-sale-day",
        "title": "Engage: sale day",
        "tags": ["engage"],
        "timezone": "browser",
        "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "schemaVersion": 39,
        "version": 1,
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
