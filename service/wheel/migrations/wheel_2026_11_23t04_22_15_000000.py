"""Indexes for the wheel's hot reads (audit log, my prizes, free coupon codes)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T04:22:15:000000"
VERSION = "1.38.0"
DESCRIPTION = "wheel indexes and stock guards"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="wheel", description=DESCRIPTION)

    async def run():
        from service.wheel.tables import WheelDraw

        for ddl in (
            "CREATE INDEX IF NOT EXISTS wheel_draws_audit ON wheel_draws "
            "(tenant_id, wheel_id, id)",
            "CREATE INDEX IF NOT EXISTS wheel_draws_prize ON wheel_draws "
            "(wheel_id, prize_key)",
            "CREATE INDEX IF NOT EXISTS wheel_awards_member ON wheel_awards "
            "(tenant_id, member_id, id DESC)",
            "CREATE INDEX IF NOT EXISTS wheel_awards_state ON wheel_awards "
            "(tenant_id, wheel_id, state, id)",
            "CREATE INDEX IF NOT EXISTS wheel_coupon_codes_free ON wheel_coupon_codes "
            "(wheel_id, prize_key, id) WHERE member_id IS NULL",
            "ALTER TABLE wheel_prize_stock ADD CONSTRAINT wheel_prize_stock_issued_not_negative "
            "CHECK (issued >= 0)",
            "ALTER TABLE wheel_prize_days ADD CONSTRAINT wheel_prize_days_issued_not_negative "
            "CHECK (issued >= 0)",
        ):
            await WheelDraw.raw(ddl)

    manager.add_raw(run)
    return manager
