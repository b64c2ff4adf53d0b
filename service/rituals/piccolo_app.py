"""Piccolo app of the ritual, member number and invitation tables."""

import os

from piccolo.conf.apps import AppConfig

from service.rituals import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="rituals",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "migrations"),
    table_classes=[
        tables.RitualDefinition,
        tables.RitualProgress,
        tables.MemberNumberCounter,
        tables.MemberNumberReservation,
        tables.InviteCode,
        tables.Referral,
        tables.ReferralDaily,
        tables.MemberErasure,
    ],
    migration_dependencies=["service.core.piccolo_app"],
    commands=[],
)
