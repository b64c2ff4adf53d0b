"""Piccolo app of the event-ingestion tables."""

import os

from piccolo.conf.apps import AppConfig

from service.events import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="events",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.EventRule,
        tables.MemberEvent,
        tables.RuleDailyUsage,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
