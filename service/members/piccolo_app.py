"""Piccolo app of the member tables."""

import os

from piccolo.conf.apps import AppConfig

from service.members import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="members",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.Member, tables.MemberIdentity],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
