"""Processes of one data folder never outlive their owner (issue 9, item 9).

Real `engage serve` / `engage demo` processes with the embedded PostgreSQL and Redis, on
loopback, each in its own temporary data folder and on a free port; every wait is bounded.
A process "of the folder" is one with the folder on its command line (postgres -D, redis
unixsocket:) or as ENGAGE_DATA_DIR in its environment (serve, its workers, pg_ctl's children).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from service.core import ownership

ENGAGE = str(Path(sys.executable).with_name("engage"))
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path(ENGAGE).exists(),
    reason="needs Linux and the engage console script",
)


_ROOTS: dict[int, str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def folder() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="engage-procs-")).resolve()
    try:
        yield root
    finally:
        # Whatever a failing test left: stop it, so no run leaves processes behind.
        ownership.terminate(_folder_processes(root), grace_s=3)
        shutil.rmtree(root, ignore_errors=True)


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(ENGAGE_DATA_DIR=str(root), ENGAGE_LOG_FORMAT="json", ENGAGE_HOST="127.0.0.1")
    return env


def _folder_processes(root: Path) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if str(root) in " ".join(proc.cmdline()) or proc.environ().get(
                "ENGAGE_DATA_DIR"
            ) == str(root):
                out.append(proc)
        except (psutil.Error, OSError):
            continue
    return out


def _tree(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid} | {c.pid for c in proc.children(recursive=True)}
    except psutil.Error:
        return set()


def _start_serve(root: Path, port: int) -> subprocess.Popen[bytes]:
    log = open(root / f"serve-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [ENGAGE, "serve", "--port", str(port)],
        env=_env(root),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _ROOTS[proc.pid] = str(root)
    return proc


def _logs(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in root.glob("serve-*.log"))


def _wait_live(proc: subprocess.Popen[bytes], port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    root = Path(_ROOTS[proc.pid])
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited early ({proc.returncode}):\n{_logs(root)}"
        url = f"http://127.0.0.1:{port}/health/live"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"serve did not answer on {port} within {timeout} s:\n{_logs(root)}")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 40) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def _wait_gone(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _running(p)}
        time.sleep(0.1)
    return alive


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _embedded_pids(root: Path) -> set[int]:
    """The embedded postmaster and Redis of the folder, found by their command lines."""
    found = set()
    for proc in _folder_processes(root):
        with contextlib.suppress(psutil.Error):
            argv = proc.cmdline()
            if str(root / "pg") in argv or f"unixsocket:{root / 'redis.sock'}" in " ".join(argv):
                found.add(proc.pid)
    return found


def _state(root: Path) -> dict:
    return json.loads((root / ownership.STATE_FILE).read_text())


def _run(args: list[str], root: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENGAGE, *args], env=_env(root), capture_output=True, text=True, timeout=timeout
    )


def test_sigkill_then_restart_one_listener_no_orphans(folder: Path) -> None:
    port = _free_port()
    first = _start_serve(folder, port)
    try:
        _wait_live(first, port)
        old_workers = _tree(first.pid) - {first.pid}
        old_embedded = _embedded_pids(folder)
        assert old_workers and len(old_embedded) == 2

        # SIGKILL the serve process alone (not its group): its workers die with it.
        first.kill()
        first.wait(timeout=10)
        assert not _wait_gone(old_workers, timeout=10), "granian workers outlived the serve"

        second = _start_serve(folder, port)
        try:
            _wait_live(second, port)
            # Exactly one listener on the port, and it is a worker of the new serve.
            listeners = ownership.listeners(port)
            assert len(listeners) == 1, listeners
            assert psutil.Process(listeners[0]).ppid() == second.pid
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5) as r:
                assert r.status == 200
            # The dead owner's embedded servers were stopped, not left next to the new ones.
            assert not any(_running(p) for p in old_embedded)
            allowed = _tree(second.pid)
            for pid in _embedded_pids(folder):
                allowed |= _tree(pid)
            orphans = [p for p in _folder_processes(folder) if p.pid not in allowed]
            assert not orphans, [(p.pid, p.cmdline()) for p in orphans]
            # The state file names the new owner and its embedded servers.
            state = _state(folder)
            assert state["pid"] == second.pid and state["command"] == "serve"
            assert {state["postgres"]["pid"], state["redis"]["pid"]} == _embedded_pids(folder)

            # A second live serve on the folder refuses with one line, starting nothing.
            third = _run(["serve", "--port", str(_free_port())], folder)
            lines = (third.stdout + third.stderr).strip().splitlines()
            assert third.returncode != 0
            assert len(lines) == 1 and "in use by `engage serve`" in lines[0], lines
            assert _state(folder)["pid"] == second.pid

            assert _stop(second) == 0
        finally:
            if second.poll() is None:
                second.kill()
        assert not _wait_gone({p.pid for p in _folder_processes(folder)}, timeout=10)
    finally:
        if first.poll() is None:
            first.kill()


def test_busy_port_is_one_line_and_leaves_nothing(folder: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run(["serve", "--port", str(port)], folder)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1, lines
    assert "ENGAGE_PORT" in lines[0] and str(port) in lines[0]
    assert "Traceback" not in done.stderr
    assert not _folder_processes(folder)
    assert not (folder / ownership.STATE_FILE).exists()


def test_demo_with_serve_down_leaves_nothing(folder: Path) -> None:
    # A serve killed with SIGKILL leaves its embedded PostgreSQL and Redis behind...
    port = _free_port()
    serve = _start_serve(folder, port)
    try:
        _wait_live(serve, port)
        left = _embedded_pids(folder)
        assert len(left) == 2
        # While the serve is up, demo uses its embedded servers and stops none of them.
        attached = _run(["demo", "--port", str(port)], folder)
        assert attached.returncode == 0, attached.stdout + attached.stderr
        assert _embedded_pids(folder) == left
        assert _state(folder)["pid"] == serve.pid
    finally:
        serve.kill()
        serve.wait(timeout=10)
    assert all(_running(p) for p in left)
    # ...and `engage demo`, run while no serve is up, stops those and its own on exit.
    done = _run(["demo", "--port", str(port)], folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Demo tenant 'demo'" in done.stdout
    assert not _wait_gone({p.pid for p in _folder_processes(folder)}, timeout=10)
    assert not (folder / ownership.STATE_FILE).exists()
    # A command that fails after starting them stops them too.
    failed = _run(["apikey", "create", "--tenant", "no-such-tenant"], folder)
    assert failed.returncode != 0 and "no tenant no-such-tenant" in failed.stdout
    assert not _wait_gone({p.pid for p in _folder_processes(folder)}, timeout=10)


def test_claim_stops_a_leftover_worker_holding_the_port(folder: Path) -> None:
    """A granian worker of an earlier run (no worker file, e.g. an older version) still
    listening on the port with SO_REUSEPORT is stopped when a serve claims the folder."""
    port = _free_port()
    code = (
        "import socket, time\n"
        "s = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen()\n"
        "time.sleep(120)\n"
    )
    fake = subprocess.Popen([sys.executable, "-c", code, "engage", "serve"], env=_env(folder))
    try:
        deadline = time.monotonic() + 20
        while fake.pid not in ownership.listeners(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ownership.listeners(port) == [fake.pid]
        with pytest.raises(ownership.StartupError, match="ENGAGE_PORT"):
            ownership.ensure_port_free("127.0.0.1", port)
        owner = ownership.claim(folder, "serve", port=port)
        try:
            assert fake.wait(timeout=15) is not None
            assert any(r.startswith(f"{fake.pid} ") for r in owner.reaped)
            ownership.ensure_port_free("127.0.0.1", port)
            # The same process claims again (counted); a lock held by it is not stale.
            assert ownership.claim(folder, "serve") is owner
            owner.release()
        finally:
            owner.release()
        assert not (folder / ownership.STATE_FILE).exists()
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()


def test_start_up_failures_are_one_line_naming_the_setting() -> None:
    with pytest.raises(ownership.StartupError, match="ENGAGE_HOST") as bad_host:
        ownership.ensure_port_free("no-such-host.invalid", _free_port())
    with pytest.raises(ownership.StartupError, match="ENGAGE_HOST") as foreign:
        ownership.ensure_port_free("192.0.2.1", _free_port())  # TEST-NET-1: never ours
    # What granian raises when its own bind loses a race is read as the OS error inside.
    race = ownership.bind_error(RuntimeError("Address already in use (os error 98)"))
    assert race is not None and race.errno == 98
    assert ownership.bind_error(RuntimeError("something else")) is None
    busy = ownership.port_error("127.0.0.1", 8000, race)
    for exc in (bad_host.value, foreign.value, busy):
        assert "\n" not in str(exc) and exc.code != 0
    assert "ENGAGE_PORT" in str(busy) and "8000" in str(busy)
