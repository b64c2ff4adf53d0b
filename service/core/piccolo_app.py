"""Piccolo app of the core tables."""

import os

from piccolo.conf.apps import AppConfig

from service.core import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="core",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.Tenant,
        tables.ApiKey,
        tables.WechatApp,
        tables.OutboxEvent,
        tables.OutboxCursor,
        tables.OutboxDeadLetter,
        tables.IdempotencyRecord,
        tables.ParkedDefinition,
    ],
    migration_dependencies=[],
    commands=[],
)
