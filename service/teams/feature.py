"""Teams: routes (definitions, membership, my teams)."""

from __future__ import annotations

from service.core.feature import Feature
from service.teams import routes

FEATURE = Feature(name="teams", routers=[routes.member_router, routes.admin_router])
