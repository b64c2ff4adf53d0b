"""Service endpoints as a feature."""

from service.core.feature import Feature
from service.health import routes

FEATURE = Feature(name="health", routers=[routes.service_router, routes.dev_router])
