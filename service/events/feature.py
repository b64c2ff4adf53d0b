"""Brand events and the rules that turn them into rewards."""

from service.core.feature import Feature
from service.events import routes

FEATURE = Feature(name="events", routers=[routes.admin_router])
