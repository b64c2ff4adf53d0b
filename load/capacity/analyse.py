"""From the request log of a ramp to the capacity answer, and k6-style thresholds.

A step *holds* when the p99 of all its requests is within the p99 limit, none answered 5xx
(or failed to connect) and at most 1% failed otherwise (a 429 is the server refusing the load,
a failed check a wrong answer: neither is capacity). Throughput counts the requests that
succeeded; the capacity is the step of the highest throughput that held.

The reference: the run starts with the bare ``GET /health/live`` alone (kind ``live``), a
closed loop at the reference users; its requests/s is what every throughput is divided by (the
ratios of the performance targets, measured in the same run on the same machine). A ratio of
a kind in the mix is that kind's share of the held step's throughput over the reference; a
one-kind run (``--scenario board``) gives the endpoint's own ratio.

Thresholds file (JSON), k6's syntax for the expressions, checked against the step that held
(with no step held, every threshold is breached):

    {"thresholds": {
        "http_req_duration": ["p(99)<50", "p(95)<30"],        # milliseconds, all requests
        "http_req_duration{kind:checkin}": ["p(99)<80"],       # one kind of request
        "http_req_failed": ["rate<0.001"],                     # share of failed requests
        "http_reqs{kind:spin}": ["rate>=20"],                  # requests per second
        "http_reqs{kind:board}": ["ratio>=0.35"]               # succeeded/s over /health/live's
    }}

(``ratio`` is ours, not k6's; without a reference phase it is breached.)
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
MAX_FAILED_SHARE = 0.01  # a step with more failed (non-5xx) requests does not hold
REFERENCE = "live"  # the kind of the reference phase's requests (GET /health/live)
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
    rps: float = 0.0  # requests that succeeded, per second
    sent_rps: float = 0.0  # every request, failed ones too
    per_kind_rps: dict[str, float] = field(default_factory=dict)  # succeeded, per second
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


def public(step: Step) -> dict[str, Any]:
    """A step for summary.json (without its raw latencies), with its per-core-second figures."""
    out = {k: v for k, v in vars(step).items() if k != "latencies"}
    out["perCoreSecond"] = per_core_second(step)
    return out


def _window(
    rows, index: int, users: int, a: float, b: float, plan: dict[str, Any], samples: list[dict]
) -> Step:  # type: ignore[no-untyped-def]
    st = Step(index, users, a, b)
    lat: dict[str, list[float]] = defaultdict(list)
    ok: Counter[str] = Counter()
    errs: Counter[str] = Counter()
    for t, name, ms, status, code in rows:
        if a <= t < b and not name.startswith("login (reader)"):
            lat[name].append(ms)
            lat["all"].append(ms)
            if not failed(status, code):
                ok[name] += 1
            else:
                errs[f"{status} {code}".strip()] += 1
                st.failed += 1
                if status == 0 or status >= 500:
                    st.server_errors += 1
    span = b - a
    st.latencies = dict(lat)
    st.count = len(lat.get("all", []))
    st.sent_rps = st.count / span
    st.rps = sum(ok.values()) / span
    st.per_kind_rps = {k: ok[k] / span for k in lat if k != "all"}
    st.p50, st.p95, st.p99 = (pct(lat.get("all", []), p) for p in (50, 95, 99))
    st.per_kind_p99 = {k: pct(v, 99) for k, v in lat.items() if k != "all"}
    st.errors = dict(errs)
    st.held = (
        st.count > 0
        and st.p99 <= plan["p99_ms"]
        and st.server_errors == 0
        and st.failed <= MAX_FAILED_SHARE * st.count
    )
    inside = [s for s in samples if a <= s["t"] < b]
    if inside:
        groups = inside[0]["cpu"].keys()
        st.cpu = {g: sum(s["cpu"][g] for s in inside) / len(inside) for g in groups}
        st.pool_waiting = max(s["metrics"].get("pool_waiting", 0.0) for s in inside)
    return st


def steps_of(rows, plan: dict[str, Any], t0: float, samples: list[dict]) -> list[Step]:  # type: ignore[no-untyped-def]
    """The ramp's steps (the first ``warm`` seconds of each, while users start, left out)."""
    span = plan["step_s"]
    warm = min(3.0, span / 4)
    rows = [r for r in rows if r[1] != REFERENCE]
    return [
        _window(rows, i, users, t0 + i * span + warm, t0 + (i + 1) * span, plan, samples)
        for i, users in enumerate(plan["steps"])
    ]


def reference_of(rows, plan: dict[str, Any], samples: list[dict]) -> Step | None:  # type: ignore[no-untyped-def]
    """The reference phase (kind ``live``) as a step of index -1, or None without one."""
    live = [r for r in rows if r[1] == REFERENCE]
    ref = plan.get("reference") or {}
    if not live or not ref.get("s"):
        return None
    t0 = live[0][0]
    warm = min(3.0, ref["s"] / 4)
    return _window(live, -1, ref["users"], t0 + warm, t0 + ref["s"], plan, samples)


def ratios(best: Step, ref: Step | None) -> dict[str, float]:
    """Each kind's requests/s at the held step, and all of them, over the reference's."""
    if ref is None or ref.rps <= 0:
        return {}
    out = {"all": best.rps / ref.rps}
    for k in _ordered(best.per_kind_rps):
        out[k] = best.per_kind_rps[k] / ref.rps
    return out


def per_core_second(st: Step) -> dict[str, float]:
    """What one CPU-second of our own processes did at a step (the figure that scales to
    other hardware; a shared box's absolute rates do not): requests per app-core-second,
    durable writes (check-ins, spins, logins) per PostgreSQL-core-second. Empty without
    CPU samples."""
    out: dict[str, float] = {}
    app, pg = st.cpu.get("app (engage serve)", 0.0), st.cpu.get("PostgreSQL", 0.0)
    writes = sum(v for k, v in st.per_kind_rps.items() if k in WRITE_KINDS)
    if app > 1.0:
        out["requestsPerAppCoreSecond"] = round(st.rps / (app / 100), 1)
    if pg > 1.0 and writes:
        out["writesPerPostgresCoreSecond"] = round(writes / (pg / 100), 1)
    return out


def _ordered(kinds) -> list[str]:  # type: ignore[no-untyped-def]
    order = ("checkin", "spin", "board", "login")
    return sorted(kinds, key=lambda k: order.index(k) if k in order else 9)


def why_not(st: Step, plan: dict[str, Any]) -> str:
    """Why a step did not hold, in words."""
    out = []
    if st.count == 0:
        return "no request answered"
    if st.p99 > plan["p99_ms"]:
        out.append(f"p99 {st.p99:.0f} ms > {plan['p99_ms']:g} ms")
    if st.server_errors:
        out.append(f"{st.server_errors} 5xx or connection failures")
    if st.failed > MAX_FAILED_SHARE * st.count:
        top = ", ".join(f"{k} x{v}" for k, v in Counter(st.errors).most_common(3))
        out.append(f"{100 * st.failed / st.count:.0f}% failed ({top})")
        if any(k.startswith("429") for k in st.errors):
            out.append(
                "429s are the server's rate limits: raise ENGAGE_RATE_MEMBER_PER_MIN and "
                "ENGAGE_RATE_IP_PER_MIN on the server under test (load/README.md)"
            )
    return "; ".join(out)


def saturated_first(steps: list[Step], processes: int) -> str:
    """What ran out first: read at the first step that did not hold. With every step held,
    nothing did within the ramp: the busiest group at the last step is named instead."""
    st = next((s for s in steps if not s.held), None)
    if st is None and steps:
        last = steps[-1]
        return (
            f"nothing within the ramp (every step held; add steps); the busiest at the last "
            f"step: {_busiest(last, processes)}"
        )
    if st is None or not st.cpu:
        return "unknown (no server samples)"
    return _busiest(st, processes)


def _busiest(st: Step, processes: int) -> str:
    if not st.cpu:
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


def _reference_words(ref: Step | None, processes: int) -> str:
    if ref is None:
        return "no reference phase (--reference-s 0): no ratios"
    words = f"/health/live alone: {ref.rps:.0f} requests/s at {ref.users} users"
    if ref.server_errors or ref.failed:
        words += f" ({ref.failed} failed)"
    if ref.cpu.get("Locust", 0.0) >= 90.0 * max(1, processes):
        words += (
            " - Locust was CPU-bound there, so this is a floor of /health/live and the ratios "
            "flatter the endpoints (add --processes)"
        )
    return words


def answer(
    steps: list[Step], plan: dict[str, Any], processes: int, ref: Step | None = None
) -> dict[str, Any]:
    held = [s for s in steps if s.held]
    best = max(held, key=lambda s: s.rps) if held else None
    first = saturated_first(steps, processes)
    reference = _reference_words(ref, processes)
    broke = next((s for s in steps if not s.held), None)
    broke_words = (
        f"; at {broke.users} users it did not hold: {why_not(broke, plan)}" if broke else ""
    )
    if best is None:
        words = (
            f"holds nothing: no step kept p99 <= {plan['p99_ms']:g} ms with no 5xx and at most "
            f"{MAX_FAILED_SHARE:.0%} failed{broke_words}; saturated first: {first}; "
            f"reference {reference}"
        )
        return {"held": False, "words": words, "saturatedFirst": first, "reference": reference}
    kinds = _ordered(best.per_kind_rps)
    parts = [f"{best.per_kind_rps[k]:.0f} {KIND_WORDS.get(k, k + '/s')}" for k in kinds]
    rat = ratios(best, ref)
    as_ratios = (
        f"; that is {rat['all']:.3g}x the reference ({reference}): "
        + ", ".join(f"{KIND_WORDS.get(k, k + '/s').split('/')[0]} {rat[k]:.3g}x" for k in kinds)
        if rat
        else f"; {reference}"
    )
    words = (
        f"holds {', '.join(parts)} ({best.rps:.0f} requests/s at {best.users} users) with "
        f"p99 <= {plan['p99_ms']:g} ms (measured {best.p99:.1f} ms) and no 5xx"
        f"{broke_words}; saturated first: {first}{as_ratios}"
    )
    return {
        "reference": reference,
        "ratios": {k: round(v, 4) for k, v in rat.items()},
        "held": True,
        "words": words,
        "step": best.index,
        "users": best.users,
        "requestsPerSecond": round(best.rps, 1),
        "perKindPerSecond": {k: round(v, 1) for k, v in best.per_kind_rps.items()},
        "p50Ms": best.p50,
        "p95Ms": best.p95,
        "p99Ms": best.p99,
        "perCoreSecond": per_core_second(best),
        "saturatedFirst": first,
    }


_EXPR = re.compile(
    r"^\s*(p\((\d+(?:\.\d+)?)\)|rate|ratio|avg|max|min|count)\s*(<=|>=|<|>|==)\s*([\d.]+)\s*$"
)
_METRIC = re.compile(r"^(http_req_duration|http_req_failed|http_reqs)(?:\{kind:([a-z ()]+)\})?$")


def check_thresholds(
    spec: dict[str, Any], steps: list[Step], ref: Step | None = None
) -> list[dict[str, Any]]:
    """Each threshold with its measured value and whether it passed (at the step that held;
    ``ratio`` over the reference's requests/s)."""
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
            if agg == "ratio" and name != "http_reqs":
                raise SystemExit(f"thresholds: `ratio` is of http_reqs only, not {metric}")
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
                elif agg == "ratio":
                    # Requests that succeeded, over the reference's (as in the answer).
                    got = best.rps if kind == "all" else best.per_kind_rps.get(kind, 0.0)
                    value = got / ref.rps if ref is not None and ref.rps else None
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
