"""Piccolo app of the ceremony tables."""

import os

from piccolo.conf.apps import AppConfig

from service.ceremonies import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="ceremonies",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.Ceremony, tables.CeremonySettings, tables.HonourWallPreference],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
