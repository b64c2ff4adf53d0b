"""API keys remember when they were last used (the operator's key list shows it)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api_keys.last_used_at"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def run():
        from service.core.tables import OutboxEvent

        await OutboxEvent.raw(
            "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS last_used_at timestamptz"
        )

    manager.add_raw(run)
    return manager
