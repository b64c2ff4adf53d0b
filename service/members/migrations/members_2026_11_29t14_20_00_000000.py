"""members.erased_at: the member's personal data was erased (privacy); brand events for
their externalId are refused from then on (MEMBER_ERASED) rather than re-creating data."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T14:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "members erased_at"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

    async def run():
        from service.members.tables import Member

        await Member.raw("ALTER TABLE members ADD COLUMN IF NOT EXISTS erased_at TIMESTAMPTZ NULL")
        # Members erased before the column existed (the erasure audit is the rituals app's).
        await Member.raw(
            "DO $$ BEGIN IF to_regclass('member_erasures') IS NOT NULL THEN "
            "UPDATE members m SET erased_at = e.at FROM (SELECT member_id, max(erased_at) AS at "
            "FROM member_erasures GROUP BY member_id) e WHERE m.id = e.member_id "
            "AND m.erased_at IS NULL; END IF; END $$"
        )

    manager.add_raw(run)
    return manager
