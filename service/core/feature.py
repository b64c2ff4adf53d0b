"""What a feature package offers the app: routers, event subscriptions, rebuilds, jobs, CLI."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar import Router

    from service.core.context import Context
    from service.core.outbox import Dispatcher


@dataclass
class Feature:
    """Each ``service/<domain>/feature.py`` defines ``FEATURE = Feature(...)``.

    - ``routers``: Litestar routers (client API under /v1, operator API under /admin/v1).
    - ``subscribe``: registers outbox subscribers (``dispatcher.subscribe(name, handler, types)``).
    - ``rebuild``: rebuilds this feature's Redis views from PostgreSQL (``engage rebuild``).
    - ``jobs``: periodic coroutines ``(ctx) -> None`` run inside ``serve`` every ``interval_s``.
    - ``cli``: adds subcommands to the ``engage`` parser.
    - ``on_startup``: called once the Context exists (warm caches, load config).

    Benchmarks live outside the package, in load/bench/ (``python -m load.bench``).
    """

    name: str
    routers: Sequence[Router] = ()
    subscribe: Callable[[Dispatcher], None] | None = None
    rebuild: Callable[[Context], Awaitable[dict[str, Any]]] | None = None
    jobs: Sequence[tuple[float, Callable[[Context], Awaitable[Any]]]] = ()
    cli: Callable[[argparse._SubParsersAction], None] | None = None
    on_startup: Callable[[Context], Awaitable[None]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
