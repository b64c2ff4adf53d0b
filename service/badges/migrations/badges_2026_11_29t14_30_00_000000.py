"""member_badges.award_no: which award of an earned badge this is (1, then +1 on each
re-award after a revoke), so a redelivered revoke withdraws only the ceremonies of the award
it revoked, never those of a later re-award."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "member badge award number"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="badges", description=DESCRIPTION)

    async def run():
        from service.badges.tables import MemberBadge

        await MemberBadge.raw(
            "ALTER TABLE member_badges ADD COLUMN IF NOT EXISTS award_no INTEGER NOT NULL "
            "DEFAULT 1"
        )

    manager.add_raw(run)
    return manager
