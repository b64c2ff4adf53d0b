"""Piccolo app of the badge tables."""

import os

from piccolo.conf.apps import AppConfig

from service.badges import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="badges",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.BadgeDefinition,
        tables.BadgeProgress,
        tables.BadgeEventApplied,
        tables.MemberBadge,
        tables.MemberTitle,
        tables.MemberShownTitle,
        tables.BadgeAudit,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
