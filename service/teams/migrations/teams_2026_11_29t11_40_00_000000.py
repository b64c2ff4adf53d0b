"""One team per set per member at a time; membership lookups by member and by team."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "team_memberships: one open stay per member and set; lookup indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="teams", description=DESCRIPTION)

    async def run():
        from service.teams.tables import TeamMembership

        await TeamMembership.raw(
            "CREATE UNIQUE INDEX IF NOT EXISTS team_memberships_one_per_set "
            "ON team_memberships (tenant_id, team_set, member_id) WHERE left_at IS NULL"
        )
        await TeamMembership.raw(
            "CREATE INDEX IF NOT EXISTS team_memberships_member "
            "ON team_memberships (tenant_id, member_id, joined_at)"
        )
        await TeamMembership.raw(
            "CREATE INDEX IF NOT EXISTS team_memberships_team "
            "ON team_memberships (team_id, joined_at)"
        )

    manager.add_raw(run)
    return manager
