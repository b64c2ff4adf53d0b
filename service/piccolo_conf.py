"""Piccolo configuration: the engine comes from ENGAGE_DATABASE_URL, one app per domain."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

DB = PostgresEngine(config={"dsn": os.environ.get("ENGAGE_DATABASE_URL", "postgresql:///engage")})

# Order matters only for humans: Piccolo sorts apps by their declared migration dependencies.
APP_REGISTRY = AppRegistry(
    apps=[
        "service.core.piccolo_app",
        "service.members.piccolo_app",
        "service.points.piccolo_app",
        "service.events.piccolo_app",
        "service.checkins.piccolo_app",
        "service.challenges.piccolo_app",
        "service.leaderboards.piccolo_app",
        "service.wheel.piccolo_app",
        "service.webhooks.piccolo_app",
        "service.reminders.piccolo_app",
        "service.badges.piccolo_app",
        "service.ceremonies.piccolo_app",
        "service.teams.piccolo_app",
        "service.pks.piccolo_app",
        "service.rituals.piccolo_app",
        "service.operator.piccolo_app",
    ]
)
