"""Server-side figures sampled during a capacity run: CPU of each process group on this
machine (psutil) and the service's own /metrics (pool, Redis latency, outbox, check-ins)."""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

GROUPS = ("app (engage serve)", "PostgreSQL", "Redis", "Locust", "other processes")


def group_of(proc: psutil.Process) -> str | None:
    try:
        name = proc.name()
        if name.startswith("postgres"):
            return "PostgreSQL"
        if name.startswith("redis-server"):
            return "Redis"
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return None
    if "locust" in cmd:
        return "Locust"
    if "engage serve" in cmd or "service.cli serve" in cmd or "granian" in cmd:
        return "app (engage serve)"
    return None


def scrape(url: str) -> dict[str, float]:
    """The figures of /metrics the report plots (sums over labels)."""
    want = {
        "engage_db_pool_connections": "pool",
        "engage_db_pool_waiting": "pool_waiting",
        "engage_redis_command_seconds_sum": "redis_s",
        "engage_redis_command_seconds_count": "redis_n",
        "engage_outbox_undelivered_events": "outbox_backlog",
        "engage_checkins_total": "checkins",
    }
    with urllib.request.urlopen(f"{url}/metrics", timeout=2) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = want.get(s.name)
            if key == "pool" and s.labels.get("state") != "in_use":
                continue
            if key:
                out[key] = out.get(key, 0.0) + s.value
    return out


class Sampler(threading.Thread):
    """Every ``every_s``: CPU percent (of one core) per group, and the /metrics figures."""

    def __init__(self, url: str, every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url, self.every_s = url, every_s
        self.samples: list[dict[str, Any]] = []
        self._halt = threading.Event()
        self._procs: dict[int, tuple[psutil.Process, str]] = {}

    def _cpu(self) -> dict[str, float]:
        seen = set()
        for p in psutil.process_iter():
            seen.add(p.pid)
            if p.pid not in self._procs:
                g = group_of(p)
                if g is None:
                    continue
                try:
                    p.cpu_percent(None)  # primes the counter
                except psutil.Error:
                    continue
                self._procs[p.pid] = (p, g)
        cpu = dict.fromkeys(GROUPS, 0.0)
        machine = psutil.cpu_percent(None) * (psutil.cpu_count() or 1)
        for pid, (p, g) in list(self._procs.items()):
            if pid not in seen:
                del self._procs[pid]
                continue
            try:
                cpu[g] += p.cpu_percent(None)
            except psutil.Error:
                del self._procs[pid]
        # The rest of the machine (other work on a shared box), in % of one core.
        cpu["other processes"] = max(0.0, machine - sum(cpu.values()))
        return cpu

    def run(self) -> None:
        psutil.cpu_percent(None)
        self._cpu()
        while not self._halt.wait(self.every_s):
            row: dict[str, Any] = {"t": time.time(), "cpu": self._cpu()}
            try:
                row["metrics"] = scrape(self.url)
            except Exception:
                row["metrics"] = {}
            self.samples.append(row)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
