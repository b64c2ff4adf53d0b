"""Piccolo app of the webhook tables."""

import os

from piccolo.conf.apps import AppConfig

from service.webhooks import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="webhooks",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[tables.Webhook, tables.WebhookDelivery],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
