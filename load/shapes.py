"""The sale-day spike: steady traffic, then 10x within 5 s, held for a minute, then done."""

from __future__ import annotations

from config import CONFIG
from locust import LoadTestShape


class SaleDaySpike(LoadTestShape):
    """Stages (all from ENGAGE_LOAD_*): warm-up at the base, ramp to base x factor in ramp_s,
    hold, cool down at the base, stop. The run always ends by itself."""

    def __init__(self) -> None:
        super().__init__()
        c = CONFIG
        peak = c.base_users * c.factor
        self.stages = [
            # (ends at second, users, spawn rate per second)
            (c.warmup_s, c.base_users, max(1.0, c.base_users / 5)),
            (c.warmup_s + c.ramp_s + c.hold_s, peak, (peak - c.base_users) / max(c.ramp_s, 1)),
            (c.warmup_s + c.ramp_s + c.hold_s + c.cooldown_s, c.base_users, float(peak)),
        ]

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        for ends_at, users, rate in self.stages:
            if run_time < ends_at:
                return users, rate
        return None
