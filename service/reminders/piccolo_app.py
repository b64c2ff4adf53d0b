"""Piccolo app of the reminder tables."""

import os

from piccolo.conf.apps import AppConfig

from service.reminders import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="reminders",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.ReminderConfig, tables.ReminderGrant, tables.Reminder],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
