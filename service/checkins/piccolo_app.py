"""Piccolo app of the check-in tables."""

import os

from piccolo.conf.apps import AppConfig

from service.checkins import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="checkins",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.CheckinCampaign, tables.Checkin, tables.CheckinStreak],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
