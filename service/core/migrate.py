"""Runs the Piccolo migrations of every app, one process at a time (advisory lock)."""

from __future__ import annotations

import contextlib
import io
import os

import asyncpg

MIGRATION_LOCK = 0x656E6761  # "enga": one migration run per database at a time


async def migrate(database_url: str, *, quiet: bool = True) -> None:
    os.environ["ENGAGE_DATABASE_URL"] = database_url
    os.environ.setdefault("PICCOLO_CONF", "service.piccolo_conf")
    from piccolo.engine.postgres import PostgresEngine

    from service import piccolo_conf

    # Point Piccolo at this database even if the module was imported earlier with another URL.
    piccolo_conf.DB = PostgresEngine(config={"dsn": database_url}, log_queries=False)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    lock_conn = await asyncpg.connect(database_url)
    try:
        await lock_conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
            result = await run_forwards(app_name="all")
        if not result.success:
            raise RuntimeError(f"migration failed: {result.message}\n{sink.getvalue()}")
    finally:
        with contextlib.suppress(Exception):
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await lock_conn.close()
