"""Piccolo app of the ledger tables."""

import os

from piccolo.conf.apps import AppConfig

from service.points import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="points",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.PointAccount,
        tables.LedgerEntry,
        tables.PointLot,
        tables.LotAllocation,
        tables.LevelLadder,
        tables.MemberLevel,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
