"""Piccolo app of the operator's config history: ``config_versions`` and the triggers that
fill it (raw SQL; no Piccolo table class, nothing reads it through Piccolo)."""

import os

from piccolo.conf.apps import AppConfig

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="operator",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[],
    migration_dependencies=[
        "service.core.piccolo_app",
        "service.members.piccolo_app",
        "service.points.piccolo_app",
        "service.events.piccolo_app",
        "service.checkins.piccolo_app",
        "service.challenges.piccolo_app",
        "service.leaderboards.piccolo_app",
        "service.webhooks.piccolo_app",
        "service.badges.piccolo_app",
        "service.teams.piccolo_app",
        "service.pks.piccolo_app",
    ],
    commands=[],
)
