"""Archived boards: an operator can retire any board; it stops counting, history stays."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "leaderboards.archived_at"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="leaderboards", description=DESCRIPTION)

    async def run():
        from service.leaderboards.tables import Leaderboard

        await Leaderboard.raw(
            "ALTER TABLE leaderboards ADD COLUMN IF NOT EXISTS archived_at timestamptz NULL"
        )

    manager.add_raw(run)
    return manager
