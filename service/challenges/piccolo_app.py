"""Piccolo app of the wager-challenge tables."""

import os

from piccolo.conf.apps import AppConfig

from service.challenges import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="challenges",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.Challenge, tables.ChallengeEntry],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
