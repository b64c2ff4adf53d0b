"""Indexes for challenges: due settlements, entries of a challenge, a member's entries."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T04:22:38:000000"
VERSION = "1.38.0"
DESCRIPTION = "challenge indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="challenges", description=DESCRIPTION)

    async def run():
        from service.challenges.tables import Challenge

        for ddl in (
            "CREATE INDEX IF NOT EXISTS challenges_due ON challenges (ends_at) "
            "WHERE settled_at IS NULL AND state <> 'draft'",
            "CREATE INDEX IF NOT EXISTS challenge_entries_challenge ON challenge_entries "
            "(challenge_id, id)",
            "CREATE INDEX IF NOT EXISTS challenge_entries_member ON challenge_entries "
            "(tenant_id, member_id)",
        ):
            await Challenge.raw(ddl)

    manager.add_raw(run)
    return manager
