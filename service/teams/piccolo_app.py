"""Piccolo app of the team tables."""

import os

from piccolo.conf.apps import AppConfig

from service.teams import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="teams",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.Team, tables.TeamMembership],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
