"""The member's own card."""

from service.core.feature import Feature
from service.me import routes

FEATURE = Feature(name="me", routers=[routes.member_router])
