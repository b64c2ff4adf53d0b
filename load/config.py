"""Load-test configuration, read once from ENGAGE_LOAD_* environment variables."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class LoadConfig:
    # Written by seed.py: tenant, appId, API key and the seeded members.
    seed_file: Path
    # How simulated members get a token: "dev" (mini-program login with dev:<openid> codes; the
    # server needs ENGAGE_DEV_LOGIN=true) or "h5" (the brand back end mints it with the API key).
    login: str
    # Sale-day spike: base users, multiplied by factor within ramp_s, held for hold_s.
    base_users: int
    factor: int
    warmup_s: int
    ramp_s: int
    hold_s: int
    cooldown_s: int
    # Events per POST /admin/v1/events of the brand back-end scenario (the API takes up to 1,000).
    event_batch: int
    # Hosts other than loopback are refused unless this is set (see README).
    allow_remote: bool

    def seed(self) -> dict:
        if not self.seed_file.exists():
            raise SystemExit(f"no seed file at {self.seed_file}: run `python load/seed.py` first")
        return json.loads(self.seed_file.read_text())


def load_config() -> LoadConfig:
    return LoadConfig(
        seed_file=Path(os.environ.get("ENGAGE_LOAD_SEED", HERE / ".seed.json")),
        login=os.environ.get("ENGAGE_LOAD_LOGIN", "dev"),
        base_users=_int("ENGAGE_LOAD_BASE_USERS", 20),
        factor=_int("ENGAGE_LOAD_SPIKE_FACTOR", 10),
        warmup_s=_int("ENGAGE_LOAD_WARMUP_S", 20),
        ramp_s=_int("ENGAGE_LOAD_SPIKE_RAMP_S", 5),
        hold_s=_int("ENGAGE_LOAD_SPIKE_HOLD_S", 60),
        cooldown_s=_int("ENGAGE_LOAD_COOLDOWN_S", 15),
        event_batch=_int("ENGAGE_LOAD_EVENT_BATCH", 100),
        allow_remote=os.environ.get("ENGAGE_LOAD_ALLOW_REMOTE", "") == "1",
    )


CONFIG = load_config()
