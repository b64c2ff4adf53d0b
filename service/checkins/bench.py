"""`engage bench checkins`: check-ins per second over HTTP next to pgbench (placeholder)."""

from __future__ import annotations

import argparse


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    return None
