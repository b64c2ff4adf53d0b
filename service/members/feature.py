"""Members: login, tokens, profile."""

from service.core.feature import Feature
from service.members import routes

FEATURE = Feature(
    name="members",
    routers=[routes.public_router, routes.admin_router],
)
