"""Brand events and the rules that turn them into rewards."""

from service.core.feature import Feature
from service.events import routes


def _bench(group):  # type: ignore[no-untyped-def]
    from service.events import bench

    bench.add_bench(group)


FEATURE = Feature(name="events", routers=[routes.admin_router], bench=_bench)
