"""Member privacy: the support card, export and erasure."""

from service.core.feature import Feature
from service.privacy import routes

FEATURE = Feature(name="privacy", routers=[routes.admin_router])
