"""Piccolo app of the team PK tables."""

import os

from piccolo.conf.apps import AppConfig

from service.pks import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="pks",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.Pk,
        tables.PkTeamScore,
        tables.PkContribution,
        tables.PkAppliedEvent,
        tables.PkResult,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
