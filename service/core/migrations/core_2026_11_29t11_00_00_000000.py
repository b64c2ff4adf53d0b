"""Parked definitions: a definition that fails while applying events is set aside alone."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "parked_definitions"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def run():
        from service.core.tables import OutboxEvent

        await OutboxEvent.raw(
            "CREATE TABLE IF NOT EXISTS parked_definitions ("
            "id bigserial PRIMARY KEY, feature varchar(32) NOT NULL, "
            "definition_id bigint NOT NULL, tenant_id integer NOT NULL, "
            "state varchar(16) NOT NULL DEFAULT 'parked', reason text NOT NULL, "
            "parked_at timestamptz NOT NULL, from_txid bigint NOT NULL, from_id bigint NOT NULL, "
            "CONSTRAINT parked_definitions_key UNIQUE (feature, definition_id))"
        )

    manager.add_raw(run)
    return manager
