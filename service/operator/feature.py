"""Operator lists shared by the operator API and the console (no tables of its own)."""

from __future__ import annotations

from service.core.feature import Feature
from service.operator import routes

FEATURE = Feature(name="operator", routers=[routes.admin_router])
