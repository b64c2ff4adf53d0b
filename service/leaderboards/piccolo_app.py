"""Piccolo app of the board tables."""

import os

from piccolo.conf.apps import AppConfig

from service.leaderboards import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="leaderboards",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.Leaderboard,
        tables.BoardPeriod,
        tables.BoardScore,
        tables.BoardAppliedEvent,
        tables.BoardArchive,
        tables.RedBlackBoard,
        tables.RedBlackPublication,
        tables.BoardPreference,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
