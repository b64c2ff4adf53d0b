"""The registry of feature packages. Adding a feature: create service/<name>/feature.py with a
FEATURE object, add its name here and its Piccolo app to piccolo_conf.py."""

from __future__ import annotations

import importlib
from functools import cache

from service.core.feature import Feature

FEATURE_MODULES: tuple[str, ...] = (
    "health",
    "members",
    "points",
    "events",
    "me",
    "checkins",
    "challenges",
    "leaderboards",
    "wheel",
    "webhooks",
    "reminders",
    "badges",
    "ceremonies",
    "teams",
    "pks",
    "rituals",
    "privacy",
)


@cache
def all_features() -> tuple[Feature, ...]:
    return tuple(
        importlib.import_module(f"service.{name}.feature").FEATURE for name in FEATURE_MODULES
    )
