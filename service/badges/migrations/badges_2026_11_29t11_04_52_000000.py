"""Indexes for badges: a member's badges and titles, a badge's progress by member."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:04:52:000000"
VERSION = "1.38.0"
DESCRIPTION = "badge indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="badges", description=DESCRIPTION)

    async def run():
        from service.badges.tables import MemberBadge

        for ddl in (
            "CREATE INDEX IF NOT EXISTS member_badges_member ON member_badges "
            "(tenant_id, member_id, earned_at DESC)",
            "CREATE INDEX IF NOT EXISTS badge_progress_member ON badge_progress "
            "(tenant_id, member_id)",
            "CREATE INDEX IF NOT EXISTS member_titles_member ON member_titles "
            "(tenant_id, member_id)",
        ):
            await MemberBadge.raw(ddl)

    manager.add_raw(run)
    return manager
