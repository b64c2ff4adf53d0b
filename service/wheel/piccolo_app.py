"""Piccolo app of the wheel tables."""

import os

from piccolo.conf.apps import AppConfig

from service.wheel import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="wheel",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.Wheel,
        tables.WheelVersion,
        tables.WheelPrizeStock,
        tables.WheelPrizeDay,
        tables.WheelMember,
        tables.WheelDraw,
        tables.WheelCouponCode,
        tables.WheelAward,
        tables.CouponGrant,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
