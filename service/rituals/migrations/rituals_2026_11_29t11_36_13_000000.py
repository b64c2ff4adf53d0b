"""Indexes for rituals: an inviter's invitees, reservations by range."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:36:13:000000"
VERSION = "1.38.0"
DESCRIPTION = "ritual indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="rituals", description=DESCRIPTION)

    async def run():
        from service.rituals.tables import Referral

        for ddl in (
            "CREATE INDEX IF NOT EXISTS referrals_inviter ON referrals "
            "(tenant_id, inviter_id, created_at DESC)",
            "CREATE INDEX IF NOT EXISTS member_number_reservations_range ON "
            "member_number_reservations (tenant_id, last_no, first_no)",
        ):
            await Referral.raw(ddl)

    manager.add_raw(run)
    return manager
