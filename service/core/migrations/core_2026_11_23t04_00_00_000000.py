"""Indexes Piccolo's column API cannot express: the outbox read order, key purge, and a guard."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox (txid, id) index; idempotency created_at index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def run():
        from service.core.tables import OutboxEvent

        await OutboxEvent.raw("CREATE INDEX IF NOT EXISTS outbox_txid_id ON outbox (txid, id)")
        await OutboxEvent.raw(
            "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at)"
        )
        await OutboxEvent.raw("CREATE INDEX IF NOT EXISTS outbox_occurred ON outbox (occurred_at)")

    manager.add_raw(run)
    return manager
