#!/usr/bin/env python3
"""Newcomer entry point: needs only Python 3.11+. Bootstraps uv and the locked environment.

python3 dev.py serve   # start Engage (embedded PostgreSQL and Redis unless URLs are set)
python3 dev.py test    # run the whole test suite
python3 dev.py setup   # only install (what CI does first)
python3 dev.py engage ARGS...   # any engage command, e.g. `engage demo`
python3 dev.py bench [ARGS...]  # the performance targets table (python -m load.bench)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".engage" / "tools"


def _uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    uv_bin = TOOLS / ("Scripts" if os.name == "nt" else "bin") / "uv"
    if not uv_bin.exists():
        print("dev.py: installing uv into .engage/tools (once)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        pip = TOOLS / ("Scripts" if os.name == "nt" else "bin") / "pip"
        subprocess.run([str(pip), "install", "--quiet", "uv>=0.9"], check=True)
    return str(uv_bin)


def _sync(uv: str) -> None:
    subprocess.run([uv, "sync", "--locked", "--quiet"], cwd=ROOT, check=True)


def _exec(argv: list[str], env: dict[str, str] | None = None) -> int:
    env = env or os.environ.copy()
    if os.name == "posix":
        # Become the command (no Python parent left behind), so a signal sent to this
        # process reaches `engage serve` itself, which then stops its workers and the
        # embedded servers; a subprocess here would orphan them.
        os.chdir(ROOT)
        os.execve(argv[0], argv, env)
    return subprocess.call(argv, cwd=ROOT, env=env)


def _venv_engage() -> list[str] | None:
    """The locked environment's own `engage` script, run directly (POSIX): then the pid a
    user or supervisor signals is the engage process itself. Under `uv run` a SIGKILL meant
    for `engage serve` would stop only uv and leave the server running; SIGKILL can't be
    passed on."""
    if os.name != "posix":
        return None
    venv = Path(os.environ.get("UV_PROJECT_ENVIRONMENT") or ".venv")
    venv = venv if venv.is_absolute() else ROOT / venv
    exe = venv / "bin" / "engage"
    return [str(exe)] if exe.exists() else None


def _venv_env(env: dict[str, str]) -> dict[str, str]:
    """What `uv run` would add: the environment's bin folder first on PATH."""
    venv = Path(os.environ.get("UV_PROJECT_ENVIRONMENT") or ".venv")
    venv = venv if venv.is_absolute() else ROOT / venv
    env = dict(env)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"serve", "test", "setup", "engage", "bench"}:
        print(__doc__)
        return 2
    cmd, rest = sys.argv[1], sys.argv[2:]
    uv = _uv()
    _sync(uv)
    run = [uv, "run", "--locked", "--no-sync"]
    if cmd == "setup":
        return 0
    if cmd == "test":
        return _exec([*run, "pytest", *rest])
    if cmd == "bench":
        return _exec([*run, "python", "-m", "load.bench", *rest])
    engage = _venv_engage() or [*run, "engage"]
    if cmd == "engage":
        return _exec([*engage, *rest], _venv_env(os.environ.copy()))
    env = os.environ.copy()
    # Local convenience: the dev login and the clock hook are on unless said otherwise.
    # Both are refused in production whatever these say.
    env.setdefault("ENGAGE_DEV_LOGIN", "true")
    env.setdefault("ENGAGE_DEV_CLOCK", "true")
    try:
        return _exec([*engage, "serve", *rest], _venv_env(env))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
