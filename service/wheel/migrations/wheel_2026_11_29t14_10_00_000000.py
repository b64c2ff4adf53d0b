"""A coupon award always carries its code: the spin's one statement relies on this check to
fail as a whole when the coupon pool ran dry (service/wheel/repository.py:record_spin)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T14:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "coupon awards carry their code"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="wheel", description=DESCRIPTION)

    async def run():
        from service.wheel.tables import WheelAward

        await WheelAward.raw(
            "ALTER TABLE wheel_awards ADD CONSTRAINT wheel_awards_coupon_has_code "
            "CHECK (kind <> 'coupon' OR coupon_code IS NOT NULL)"
        )

    manager.add_raw(run)
    return manager
