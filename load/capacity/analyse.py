"""From the request log of a ramp to the capacity answer, and k6-style thresholds.

A step *holds* when the p99 of all its requests is within the p99 limit and none answered 5xx
(or failed to connect). The capacity is the step of the highest throughput that held.

Thresholds file (JSON), k6's syntax for the expressions, checked against the step that held
(with no step held, every threshold is breached):

    {"thresholds": {
        "http_req_duration": ["p(99)<50", "p(95)<30"],        # milliseconds, all requests
        "http_req_duration{kind:checkin}": ["p(99)<80"],       # one kind of request
        "http_req_failed": ["rate<0.001"],                     # share of failed requests
        "http_reqs{kind:spin}": ["rate>=20"]                   # requests per second
    }}
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

WRITE_KINDS = ("checkin", "spin", "login")
KIND_WORDS = {
    "checkin": "check-ins/s",
    "spin": "spins/s",
    "board": "board reads/s",
    "login": "logins/s",
}


def load_requests(out: Path) -> list[tuple[float, str, float, int, str]]:
    rows = []
    for f in sorted(out.glob("requests-*.jsonl")):
        for line in f.read_text().splitlines():
            if line:
                t, name, ms, status, code = json.loads(line)
                rows.append((t, name, ms, status, code))
    rows.sort()
    return rows


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def failed(status: int, code: str) -> bool:
    return status == 0 or status >= 400


@dataclass
class Step:
    index: int
    users: int
    start: float
    end: float
    count: int = 0
    rps: float = 0.0
    per_kind_rps: dict[str, float] = field(default_factory=dict)
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    per_kind_p99: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    failed: int = 0
    held: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    pool_waiting: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict, repr=False)


def steps_of(rows, plan: dict[str, Any], t0: float, samples: list[dict]) -> list[Step]:  # type: ignore[no-untyped-def]
    warm = min(3.0, plan["step_s"] / 4)
    steps = []
    for i, users in enumerate(plan["steps"]):
        a, b = t0 + i * plan["step_s"] + warm, t0 + (i + 1) * plan["step_s"]
        st = Step(i, users, a, b)
        lat: dict[str, list[float]] = defaultdict(list)
        errs: Counter[str] = Counter()
        for t, name, ms, status, code in rows:
            if a <= t < b and not name.startswith("login (reader)"):
                lat[name].append(ms)
                lat["all"].append(ms)
                if failed(status, code):
                    errs[f"{status} {code}".strip()] += 1
                    st.failed += 1
                    if status == 0 or status >= 500:
                        st.server_errors += 1
        span = b - a
        st.latencies = dict(lat)
        st.count = len(lat.get("all", []))
        st.rps = st.count / span
        st.per_kind_rps = {k: len(v) / span for k, v in lat.items() if k != "all"}
        st.p50, st.p95, st.p99 = (pct(lat.get("all", []), p) for p in (50, 95, 99))
        st.per_kind_p99 = {k: pct(v, 99) for k, v in lat.items() if k != "all"}
        st.errors = dict(errs)
        st.held = st.count > 0 and st.p99 <= plan["p99_ms"] and st.server_errors == 0
        inside = [s for s in samples if a <= s["t"] < b]
        if inside:
            groups = inside[0]["cpu"].keys()
            st.cpu = {g: sum(s["cpu"][g] for s in inside) / len(inside) for g in groups}
            st.pool_waiting = max(s["metrics"].get("pool_waiting", 0.0) for s in inside)
        steps.append(st)
    return steps


def saturated_first(steps: list[Step], processes: int) -> str:
    """What ran out first: read at the first step that did not hold (or the last step)."""
    st = next((s for s in steps if not s.held), steps[-1] if steps else None)
    if st is None or not st.cpu:
        return "unknown (no server samples)"
    if st.cpu.get("Locust", 0.0) >= 90.0 * max(1, processes):
        return "the load generator (Locust CPU); add --processes"
    if st.pool_waiting > 0:
        return "the PostgreSQL connection pool (requests waiting for a connection)"
    cores = psutil.cpu_count() or 1
    ours = {g: c for g, c in st.cpu.items() if g not in ("Locust", "other processes")}
    group, cpu = max(ours.items(), key=lambda gc: gc[1])
    if sum(st.cpu.values()) >= 85.0 * cores and st.cpu.get("other processes", 0.0) > sum(
        ours.values()
    ):
        return (
            f"the machine's CPU, mostly taken by other processes "
            f"({st.cpu['other processes']:.0f}% of a core; busiest of ours: {group} "
            f"{cpu:.0f}%) at {st.users} users"
        )
    return f"{group} CPU ({cpu:.0f}% of a core at {st.users} users)"


def answer(steps: list[Step], plan: dict[str, Any], processes: int) -> dict[str, Any]:
    held = [s for s in steps if s.held]
    best = max(held, key=lambda s: s.rps) if held else None
    first = saturated_first(steps, processes)
    if best is None:
        words = (
            f"holds nothing: no step kept p99 <= {plan['p99_ms']:g} ms without 5xx; "
            f"{first} saturated first"
        )
        return {"held": False, "words": words, "saturatedFirst": first}
    kinds = sorted(
        best.per_kind_rps,
        key=lambda k: ("checkin", "spin", "board", "login").index(k) if k in KIND_WORDS else 9,
    )
    parts = [f"{best.per_kind_rps[k]:.0f} {KIND_WORDS.get(k, k + '/s')}" for k in kinds]
    words = (
        f"holds {', '.join(parts)} ({best.rps:.0f} requests/s at {best.users} users) with "
        f"p99 <= {plan['p99_ms']:g} ms (measured {best.p99:.1f} ms) and no 5xx; "
        f"{first} saturated first"
    )
    return {
        "held": True,
        "words": words,
        "step": best.index,
        "users": best.users,
        "requestsPerSecond": round(best.rps, 1),
        "perKindPerSecond": {k: round(v, 1) for k, v in best.per_kind_rps.items()},
        "p50Ms": best.p50,
        "p95Ms": best.p95,
        "p99Ms": best.p99,
        "saturatedFirst": first,
    }


_EXPR = re.compile(
    r"^\s*(p\((\d+(?:\.\d+)?)\)|rate|avg|max|min|count)\s*(<=|>=|<|>|==)\s*([\d.]+)\s*$"
)
_METRIC = re.compile(r"^(http_req_duration|http_req_failed|http_reqs)(?:\{kind:([a-z ()]+)\})?$")


def check_thresholds(spec: dict[str, Any], steps: list[Step]) -> list[dict[str, Any]]:
    """Each threshold with its measured value and whether it passed (at the step that held)."""
    held = [s for s in steps if s.held]
    best = max(held, key=lambda s: s.rps) if held else None
    results = []
    for metric, exprs in spec.get("thresholds", {}).items():
        m = _METRIC.match(metric)
        if not m:
            raise SystemExit(f"thresholds: unknown metric {metric!r}")
        name, kind = m.group(1), m.group(2) or "all"
        for expr in exprs:
            e = _EXPR.match(expr)
            if not e:
                raise SystemExit(f"thresholds: cannot read {expr!r} of {metric}")
            agg, p, op, limit = e.group(1), e.group(2), e.group(3), float(e.group(4))
            value: float | None = None
            if best is not None:
                lat = best.latencies.get(kind, [])
                span = best.end - best.start
                if name == "http_req_duration":
                    value = (
                        pct(lat, float(p))
                        if p
                        else (
                            sum(lat) / len(lat)
                            if agg == "avg" and lat
                            else max(lat or [0])
                            if agg == "max"
                            else min(lat or [0])
                            if agg == "min"
                            else float(len(lat))
                        )
                    )
                elif name == "http_req_failed":
                    value = best.failed / best.count if best.count else 1.0
                else:
                    value = len(lat) / span if agg == "rate" else float(len(lat))
            ok = (
                value is not None
                and {
                    "<": value < limit,
                    "<=": value <= limit,
                    ">": value > limit,
                    ">=": value >= limit,
                    "==": value == limit,
                }[op]
            )
            results.append({"metric": metric, "threshold": expr, "value": value, "ok": ok})
    return results
