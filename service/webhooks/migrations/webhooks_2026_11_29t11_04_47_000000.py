"""Indexes for webhooks: the due queue and the per-member order of pending deliveries."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:04:47:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook delivery indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="webhooks", description=DESCRIPTION)

    async def run():
        from service.webhooks.tables import Webhook

        for ddl in (
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries "
            "(next_attempt_at) WHERE status = 'pending'",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_order ON webhook_deliveries "
            "(webhook_id, order_key, id) WHERE status = 'pending'",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_log ON webhook_deliveries "
            "(webhook_id, id DESC)",
        ):
            await Webhook.raw(ddl)

    manager.add_raw(run)
    return manager
