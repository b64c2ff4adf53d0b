"""Indexes for ceremonies: a member's pending queue, the tenant's honour wall."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:04:54:000000"
VERSION = "1.38.0"
DESCRIPTION = "ceremony indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ceremonies", description=DESCRIPTION)

    async def run():
        from service.ceremonies.tables import Ceremony

        for ddl in (
            "CREATE INDEX IF NOT EXISTS ceremonies_pending ON ceremonies "
            "(tenant_id, member_id, played_at, expires_at)",
            "CREATE INDEX IF NOT EXISTS ceremonies_wall ON ceremonies (tenant_id, id DESC) "
            "WHERE NOT wall_hidden",
        ):
            await Ceremony.raw(ddl)

    manager.add_raw(run)
    return manager
