"""Who owns the processes of one data folder (``ENGAGE_DATA_DIR``), and cleaning up after a
dead owner.

One process at a time owns a data folder: ``engage serve``, or a CLI command that had to start
the embedded servers (``engage demo``, ``migrate``, ``rebuild``, ...). The owner holds a POSIX
record lock on ``<data>/engage.lock`` for its whole life and describes itself in
``<data>/engage.state.json``::

    {"pid": 4242, "createTime": 1764400000.12, "command": "serve", "bootId": "9f...",
     "phase": "starting" | "ready", "host": "127.0.0.1", "port": 8000,
     "postgres": {"pid": 4250, "url": "postgresql://...", "pgdata": "/data/pg"},
     "redis": {"pid": 4260, "url": "unix:///data/redis.sock", "socket": "...", "tmpDir": "..."}}

and each granian worker of a serve writes ``<data>/workers/<pid>.json`` when it starts.

Why a POSIX lock (``fcntl.lockf``): the kernel drops it when the owner dies however it dies,
SIGKILL included, and forked children (granian workers) do not inherit it, so "the lock is
free" means exactly "the owner is gone" even while its orphans still run. Whoever takes a free
lock first stops what the dead owner left (its serve process, workers still listening, the
embedded PostgreSQL and Redis of the folder), then starts its own. A second serve on a live
folder refuses with one line; a CLI command on a folder a live serve owns uses that serve's
embedded servers (recorded in the state file) and starts and stops nothing.

Workers die with their parent: :func:`die_with_parent` (``PR_SET_PDEATHSIG`` on Linux, a
watcher thread elsewhere) runs in each worker before the app is built (see
:func:`worker_app`, the granian factory ``engage serve`` uses).

Expected start-up failures (a busy port, a busy folder, an unreachable server) are
:class:`StartupError`: the CLI prints its one line and exits non-zero, no traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

if sys.platform != "win32":
    import fcntl

LOCK_FILE = "engage.lock"
STATE_FILE = "engage.state.json"
WORKERS_DIR = "workers"
# Environment handed from `engage serve` to its forked granian workers (not settings).
SERVE_PID_ENV = "_ENGAGE_SERVE_PID"
SERVE_DIR_ENV = "_ENGAGE_SERVE_DIR"
DEFAULT_DATA_DIR = "./.engage"


class StartupError(Exception):
    """An expected start-up failure. ``str(exc)`` is the one line the CLI prints; ``code`` is
    the exit status (non-zero)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class FolderInUse(StartupError):
    """A live ``engage serve`` owns the folder. ``holder`` is its state (see module doc)."""

    def __init__(self, root: Path, holder: dict[str, Any]) -> None:
        port = f", port {holder['port']}" if holder.get("port") else ""
        super().__init__(
            f"data folder {root} is in use by `engage serve` (pid {holder.get('pid')}{port}); "
            "stop it first, or give this one its own ENGAGE_DATA_DIR"
        )
        self.root = root
        self.holder = holder


def data_root(data_dir: str) -> Path:
    """The absolute data folder, created if missing."""
    root = Path(data_dir).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"cannot create the data folder {root} (ENGAGE_DATA_DIR): {exc.strerror}"
        ) from exc
    return root


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return None


def _same_process(pid: Any, create_time: Any) -> psutil.Process | None:
    """The running process ``pid`` if it is the one recorded (same start time), else None."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return None
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - float(create_time)) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, ValueError, TypeError):
        return None


def read_state(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - the service runs on POSIX
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise


@dataclass
class Owner:
    """This process owns ``root``: it holds the lock and keeps the state file current."""

    root: Path
    command: str
    fd: int
    state: dict[str, Any]
    pid: int = field(default_factory=os.getpid)
    refs: int = 1
    reaped: list[str] = field(default_factory=list)  # leftovers stopped when claiming
    _on_release: list[Callable[[], None]] = field(default_factory=list)

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into the state file (written atomically)."""
        if os.getpid() != self.pid:
            return
        self.state.update(fields)
        _write_json(self.root / STATE_FILE, self.state)

    def on_release(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when the folder is released (last one first), also at interpreter exit."""
        self._on_release.append(fn)

    def release(self) -> None:
        """Drop one claim; the last one runs the release callbacks, removes the state and the
        worker files and unlocks the folder."""
        if os.getpid() != self.pid:  # a forked child never releases its parent's folder
            return
        self.refs -= 1
        if self.refs > 0:
            return
        _OWNED.pop(self.root, None)
        while self._on_release:
            fn = self._on_release.pop()
            with contextlib.suppress(Exception):
                fn()
        with contextlib.suppress(OSError):
            (self.root / STATE_FILE).unlink()
        _clear_worker_files(self.root)
        # Closing the descriptor drops the POSIX lock.
        with contextlib.suppress(OSError):
            os.close(self.fd)


_OWNED: dict[Path, Owner] = {}
_GUARD = threading.Lock()


@atexit.register
def _release_all() -> None:
    for owner in list(_OWNED.values()):
        owner.refs = 1
        owner.release()


def claim(root: Path, command: str, *, wait_s: float = 30.0, port: int | None = None) -> Owner:
    """Own ``root`` for ``command``, stopping whatever a dead owner left behind first.

    Waits up to ``wait_s`` seconds while another CLI command holds the folder. Raises
    :class:`FolderInUse` when a live ``engage serve`` owns it, :class:`StartupError` when the
    wait runs out. A second claim in the same process shares the first (counted). ``port``:
    the port a serve is about to listen on (leftover workers of this folder on it are
    stopped)."""
    with _GUARD:
        owned = _OWNED.get(root)
        if owned is not None and owned.pid == os.getpid():
            owned.refs += 1
            return owned
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        try:
            while not _try_lock(fd):
                holder = read_state(root) or {}
                live = _same_process(holder.get("pid"), holder.get("createTime"))
                if live is not None and holder.get("command") == "serve":
                    raise FolderInUse(root, holder)
                if time.monotonic() >= deadline:
                    who = f"`engage {holder.get('command')}` (pid {holder.get('pid')})"
                    raise StartupError(
                        f"data folder {root} stayed busy for {wait_s:.0f} s: "
                        f"{who if live else 'another engage process'} holds it"
                    )
                time.sleep(0.2)
            previous = read_state(root)
            reaped = stop_leftovers(root, previous, port)
        except BaseException:
            os.close(fd)  # drops the lock if we got it
            raise
        me = os.getpid()
        owner = Owner(
            root=root,
            command=command,
            fd=fd,
            state={
                "pid": me,
                "createTime": _create_time(me),
                "command": command,
                "bootId": secrets.token_hex(8),
                "phase": "starting",
                "startedAt": time.time(),
            },
        )
        owner.reaped = reaped
        owner.update()
        _OWNED[root] = owner
        return owner


def claim_for_serve(root: Path, host: str, port: int) -> Owner:
    """What ``engage serve`` does before it starts anything: own ``root`` (refusing when a
    live serve owns it; stopping a dead owner's leftovers, including workers on ``port``),
    record where it will listen, and check that ``host:port`` is free. On a failure nothing
    is left running and the folder is released."""
    owner = claim(root, "serve", port=port)
    try:
        owner.update(host=host, port=port)
        ensure_port_free(host, port)
    except BaseException:
        owner.release()
        raise
    return owner


def attach_or_claim(root: Path, command: str) -> tuple[Owner | None, dict[str, Any] | None]:
    """For CLI commands: own the folder, or, when a live serve owns it, return that serve's
    state once it is ready (its embedded servers are then used as they are)."""
    deadline = time.monotonic() + 60.0
    while True:
        try:
            return claim(root, command), None
        except FolderInUse as busy:
            if busy.holder.get("phase") == "ready" or time.monotonic() >= deadline:
                return None, busy.holder
            time.sleep(0.3)


# ---------------------------------------------------------------- leftovers


def _proc_data_dir(proc: psutil.Process) -> Path | None:
    """The data folder a running engage process works on (its ENGAGE_DATA_DIR or the default,
    relative to its working directory)."""
    try:
        env = proc.environ()
        cwd = proc.cwd()
    except (psutil.Error, OSError):
        return None
    # /proc shows the environment the process was started with, which is what we want.
    raw = env.get("ENGAGE_DATA_DIR") or DEFAULT_DATA_DIR
    try:
        return (Path(cwd) / Path(raw).expanduser()).resolve()
    except (OSError, RuntimeError):
        return None


def _is_serve_process(proc: psutil.Process) -> bool:
    try:
        argv = proc.cmdline()
    except (psutil.Error, OSError):
        return False
    text = " ".join(argv)
    return ("engage" in text and "serve" in argv) or text.startswith("granian")


_REAPERS = {"init", "systemd", "tini", "dumb-init", "docker-init", "launchd"}


def _is_orphan(proc: psutil.Process) -> bool:
    """Reparented to init or a subreaper: the process that started it is gone."""
    try:
        if proc.ppid() in (0, 1):
            return True
        return proc.parent().name() in _REAPERS
    except (psutil.Error, AttributeError):
        return True


def _leftover_serve_processes(
    root: Path, previous: dict[str, Any] | None, port: int | None
) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    if previous:
        proc = _same_process(previous.get("pid"), previous.get("createTime"))
        if proc is not None and previous.get("command") == "serve":
            found[proc.pid] = proc
    for info in _worker_files(root):
        proc = _same_process(info.get("pid"), info.get("createTime"))
        if proc is not None:
            found[proc.pid] = proc
    # Workers of runs that wrote no file (an older version, or killed before writing it):
    # serve processes of this folder that are orphans or listen on the port we want. A serve
    # that is merely starting (waiting for the lock, not listening, parent alive) is spared.
    me = os.getpid()
    listening = set(_listener_pids(port)) if port else set()
    for proc in psutil.process_iter():
        if proc.pid == me or proc.pid in found:
            continue
        if not _is_serve_process(proc) or _proc_data_dir(proc) != root:
            continue
        if proc.pid in listening or _is_orphan(proc):
            found[proc.pid] = proc
    return list(found.values())


def terminate(procs: list[psutil.Process], *, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL whatever is still there after ``grace_s`` seconds; waits."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def stop_leftovers(
    root: Path, previous: dict[str, Any] | None, port: int | None = None
) -> list[str]:
    """Stop what a dead owner of ``root`` left: its serve process and granian workers, then
    the embedded Redis and PostgreSQL of the folder (each saves or shuts down cleanly).
    Returns what was stopped, as ``"<pid> <name>"`` strings."""
    procs = _leftover_serve_processes(root, previous, port)
    stopped = [f"{p.pid} granian worker or serve" for p in procs]
    if procs:
        terminate(procs)
    _clear_worker_files(root)
    from service.core.embedded import stop_embedded_leftovers

    return stopped + stop_embedded_leftovers(root, previous)


# ---------------------------------------------------------------- workers


def _worker_files(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((root / WORKERS_DIR).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                out.append(data)
    return out


def _clear_worker_files(root: Path) -> None:
    for path in (root / WORKERS_DIR).glob("*.json"):
        with contextlib.suppress(OSError):
            path.unlink()


def prepare_workers(root: Path) -> None:
    """Called by ``engage serve`` before granian forks: tells each worker its parent and
    folder (through the environment, which fork passes on)."""
    os.environ[SERVE_PID_ENV] = str(os.getpid())
    os.environ[SERVE_DIR_ENV] = str(root)
    (root / WORKERS_DIR).mkdir(exist_ok=True)


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its parent) ends, however it ends.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; the kernel kills us when the parent thread
    that forked us exits. Elsewhere: a daemon thread polls the parent once a second. Either
    way, if the parent is already gone we exit now."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    else:  # pragma: no cover - macOS and others

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, name="engage-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def worker_app() -> Any:
    """The granian factory of ``engage serve``: bind this worker's life to the serve process,
    record it in the data folder, then build the app."""
    parent = int(os.environ.get(SERVE_PID_ENV, "0") or 0)
    if parent:
        die_with_parent(parent)
    folder = os.environ.get(SERVE_DIR_ENV)
    if folder:
        me = os.getpid()
        with contextlib.suppress(OSError):
            _write_json(
                Path(folder) / WORKERS_DIR / f"{me}.json",
                {"pid": me, "createTime": _create_time(me), "servePid": parent},
            )
    from service.app import create_app

    return create_app()


# ---------------------------------------------------------------- ports


def _listener_pids(port: int) -> list[int]:
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return []
    return sorted(
        {
            c.pid
            for c in conns
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        }
    )


def listeners(port: int) -> list[int]:
    """Pids of the processes listening on TCP ``port`` (any address)."""
    return _listener_pids(port)


def ensure_port_free(host: str, port: int) -> None:
    """Raise :class:`StartupError` (one line naming ENGAGE_PORT / ENGAGE_HOST) unless
    ``host:port`` can be bound. A plain bind (no SO_REUSEPORT) also fails when the port is held
    by a server that shares it, such as a leftover granian worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (socket.gaierror, UnicodeError) as exc:  # gaierror is an OSError: first
        raise StartupError(f"ENGAGE_HOST {host!r} is not an address this machine can bind") from exc
    except OSError as exc:
        raise port_error(host, port, exc) from exc
    finally:
        sock.close()


def bind_error(exc: BaseException) -> OSError | None:
    """The OS error inside what granian raises when it cannot bind (a RuntimeError such as
    ``Address already in use (os error 98)``), or None for anything else."""
    if isinstance(exc, OSError):
        return exc
    found = re.search(r"\(os error (\d+)\)", str(exc))
    return OSError(int(found.group(1)), str(exc)) if found else None


def port_error(host: str, port: int, exc: OSError) -> StartupError:
    """The one-line error for a failed bind of ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        who = ""
        pids = [p for p in _listener_pids(port) if p != os.getpid()]
        if pids:
            try:
                name = " ".join(" ".join(psutil.Process(pids[0]).cmdline()).split())
                name = name if len(name) <= 60 else name[:57] + "..."
                who = f" by pid {pids[0]} ({name})"
            except psutil.Error:
                who = f" by pid {pids[0]}"
        return StartupError(
            f"port {port} on {host} is already in use{who}; stop that process or set "
            f"ENGAGE_PORT (or --port) to a free port"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StartupError(
            f"port {port} on {host} needs privileges this user lacks; set ENGAGE_PORT "
            "(or --port) to a port above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(f"ENGAGE_HOST {host} is not an address of this machine")
    return StartupError(f"cannot listen on {host}:{port} (ENGAGE_HOST/ENGAGE_PORT): {exc}")


@contextlib.contextmanager
def startup_errors(what: str = "PostgreSQL (ENGAGE_DATABASE_URL)") -> Iterator[None]:
    """Turn the expected failures of reaching ``what`` at start-up (refused or unreachable,
    unknown database, wrong credentials, a malformed DSN) into one-line
    :class:`StartupError`; anything else propagates with its traceback."""
    import asyncpg

    try:
        yield
    except StartupError:
        raise
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise StartupError(f"cannot reach {what}: {exc}") from exc
    except (
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.CannotConnectNowError,
    ) as exc:
        raise StartupError(f"{what} refused the connection: {exc}") from exc
    except asyncpg.ClientConfigurationError as exc:
        raise StartupError(f"{what} is not a usable DSN: {exc}") from exc


# ---------------------------------------------------------------- resolving the servers


@dataclass
class ServerSet:
    """The PostgreSQL and Redis a command uses: configured URLs, embedded servers this process
    started (``embedded``), or those of the live serve that owns the folder (``attached_to``:
    its pid). ``stop()`` stops only what this process started."""

    database_url: str
    redis_url: str
    mode: str  # "external" | "embedded" | "mixed"
    embedded: Any = None
    attached_to: int | None = None

    def stop(self) -> None:
        embedded, self.embedded = self.embedded, None
        if embedded is not None:
            embedded.stop()


def open_servers(settings: Any, *, need_redis: bool, command: str) -> ServerSet:
    """Resolve the servers for ``command``: the URLs in ``settings``, else embedded servers in
    ``settings.data_dir``, started here (and owned until ``stop()``), or, when a live
    ``engage serve`` owns that folder (CLI commands only), the ones it runs."""
    db_url, redis_url = settings.database_url, settings.redis_url
    need_pg = not db_url
    need_rd = need_redis and not redis_url
    mode = (
        "external"
        if not (need_pg or need_rd)
        else "embedded"
        if (need_pg and (need_rd or not need_redis))
        else "mixed"
    )
    if not (need_pg or need_rd):
        return ServerSet(db_url, redis_url, mode)
    from service.core.embedded import start_embedded

    root = data_root(settings.data_dir)
    if command == "serve":  # the serve claimed the folder already
        srv = start_embedded(str(root), need_pg=need_pg, need_redis=need_rd, command=command)
        return ServerSet(db_url or srv.database_url, redis_url or srv.redis_url, mode, srv)
    owner, holder = attach_or_claim(root, command)
    if holder is not None:
        pg = (holder.get("postgres") or {}).get("url") or ""
        rd = (holder.get("redis") or {}).get("url") or ""
        missing = [
            name
            for name, needed, url in (
                ("PostgreSQL (set ENGAGE_DATABASE_URL)", need_pg, pg),
                ("Redis (set ENGAGE_REDIS_URL)", need_rd, rd),
            )
            if needed and not url
        ]
        if missing:
            raise StartupError(
                f"data folder {root} is owned by `engage serve` (pid {holder.get('pid')}), "
                f"which runs no embedded {' nor '.join(missing)}"
            )
        return ServerSet(
            db_url or pg, redis_url or rd, mode, attached_to=int(holder.get("pid") or 0)
        )
    assert owner is not None
    try:
        srv = start_embedded(str(root), need_pg=need_pg, need_redis=need_rd, command=command)
    finally:
        owner.release()  # start_embedded holds its own claim until srv.stop()
    return ServerSet(db_url or srv.database_url, redis_url or srv.redis_url, mode, srv)
