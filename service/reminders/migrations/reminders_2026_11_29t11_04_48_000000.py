"""Indexes for reminders: due reminders, a member's unused grants per template."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T11:04:48:000000"
VERSION = "1.38.0"
DESCRIPTION = "reminder indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="reminders", description=DESCRIPTION)

    async def run():
        from service.reminders.tables import Reminder

        for ddl in (
            "CREATE INDEX IF NOT EXISTS reminders_due ON reminders (not_before) "
            "WHERE status = 'pending'",
            "CREATE INDEX IF NOT EXISTS reminder_grants_unused ON reminder_grants "
            "(tenant_id, member_id, template_id, id) WHERE used_at IS NULL",
        ):
            await Reminder.raw(ddl)

    manager.add_raw(run)
    return manager
