"""Team PKs: contributions in rank order inside a team; PKs due for settlement."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pk_contributions ranking index; unsettled PKs by end"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="pks", description=DESCRIPTION)

    async def run():
        from service.pks.tables import Pk

        await Pk.raw(
            "CREATE INDEX IF NOT EXISTS pk_contributions_rank ON pk_contributions "
            "(pk_id, team_id, score DESC, reached_at, member_id)"
        )
        await Pk.raw(
            "CREATE INDEX IF NOT EXISTS pks_due ON pks (ends_at) WHERE settled_at IS NULL"
        )

    manager.add_raw(run)
    return manager
