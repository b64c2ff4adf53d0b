"""engage_checkin_changed(): aborts a check-in's one statement when its guard failed."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engage_checkin_changed()"

# A check-in or make-up is one statement (service/checkins/repository.py: WRITE_SQL). When the
# member's streak row no longer holds the state the write was planned from, its guarded upsert
# writes nothing, and this function raises SQLSTATE 40001 (serialization_failure) so the whole
# statement, events and ledger rows included, is undone; the service re-reads and re-plans.
FUNCTION = (
    "CREATE OR REPLACE FUNCTION engage_checkin_changed() RETURNS boolean "
    "LANGUAGE plpgsql VOLATILE AS $fn$ BEGIN "
    "RAISE EXCEPTION 'the member''s check-in state changed since it was read' "
    "USING ERRCODE = 'serialization_failure'; "
    "END $fn$"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="checkins", description=DESCRIPTION)

    async def run():
        from service.checkins.tables import Checkin

        await Checkin.raw(FUNCTION)

    manager.add_raw(run)
    return manager
