"""Coupon grants: a code handed out from a wheel's coupon pool outside a draw (the ritual's
welcome gift), once per member per grant source."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T15:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "coupon grants"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="wheel", description=DESCRIPTION)

    async def run():
        from service.wheel.tables import WheelCouponCode

        for ddl in (
            "CREATE TABLE IF NOT EXISTS coupon_grants ("
            " id BIGSERIAL PRIMARY KEY,"
            " tenant_id INTEGER NOT NULL,"
            " member_id BIGINT NOT NULL,"
            " source VARCHAR(128) NOT NULL,"
            " wheel_key VARCHAR(64) NOT NULL,"
            " wheel_id BIGINT NULL,"
            " prize_key VARCHAR(64) NOT NULL,"
            " code VARCHAR(128) NULL,"
            " state VARCHAR(16) NOT NULL,"
            " reason VARCHAR(32) NULL,"
            " created_at TIMESTAMPTZ NOT NULL,"
            " issued_at TIMESTAMPTZ NULL,"
            " CONSTRAINT coupon_grants_once UNIQUE (tenant_id, member_id, source),"
            " CONSTRAINT coupon_grants_state CHECK (state IN ('issued', 'owed'))"
            ")",
            "CREATE INDEX IF NOT EXISTS coupon_grants_owed ON coupon_grants "
            "(tenant_id, wheel_key, prize_key, id) WHERE state = 'owed'",
        ):
            await WheelCouponCode.raw(ddl)

    manager.add_raw(run)
    return manager
