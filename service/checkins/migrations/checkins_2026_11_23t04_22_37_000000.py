"""Indexes for check-ins: the rebuild's scan of a campaign."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T04:22:37:000000"
VERSION = "1.38.0"
DESCRIPTION = "check-in indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="checkins", description=DESCRIPTION)

    async def run():
        from service.checkins.tables import Checkin

        for ddl in (
            "CREATE INDEX IF NOT EXISTS checkins_campaign_member ON checkins "
            "(campaign_id, member_id, day)",
        ):
            await Checkin.raw(ddl)

    manager.add_raw(run)
    return manager
