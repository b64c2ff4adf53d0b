"""The capacity command's analysis on a synthetic request log: steps, the answer in words,
what saturated first, and k6-style thresholds (no timing is measured here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from load.capacity import analyse

ROOT = Path(__file__).resolve().parent.parent
PLAN = {"steps": [2, 4, 8], "step_s": 10, "p99_ms": 50.0}


def synthetic(t0: float) -> list[tuple[float, str, float, int, str]]:
    """Step 0: 10 ms; step 1: 40 ms and faster; step 2: 200 ms and one 503."""
    rows = []
    for step, (ms, per_s) in enumerate([(10.0, 20), (40.0, 40), (200.0, 30)]):
        for sec in range(10):
            for i in range(per_s):
                kind = ("checkin", "spin", "board", "board")[i % 4]
                rows.append((t0 + step * 10 + sec + i / per_s, kind, ms, 200, ""))
    rows.append((t0 + 25.5, "spin", 5.0, 503, "DEPENDENCY_UNAVAILABLE"))
    return sorted(rows)


def samples(t0: float) -> list[dict]:
    cpu = [
        {"app (engage serve)": 30.0, "PostgreSQL": 20.0, "Redis": 5.0, "Locust": 10.0},
        {"app (engage serve)": 60.0, "PostgreSQL": 40.0, "Redis": 8.0, "Locust": 20.0},
        {"app (engage serve)": 98.0, "PostgreSQL": 60.0, "Redis": 9.0, "Locust": 25.0},
    ]
    return [
        {"t": t0 + s * 10 + k, "cpu": {**cpu[s], "other processes": 0.0}, "metrics": {}}
        for s in range(3)
        for k in range(10)
    ]


def test_the_answer_is_the_fastest_step_that_held_and_names_what_saturated():
    t0 = 1_000_000.0
    steps = analyse.steps_of(synthetic(t0), PLAN, t0, samples(t0))
    assert [s.held for s in steps] == [True, True, False]
    assert steps[2].server_errors == 1 and steps[2].errors == {"503 DEPENDENCY_UNAVAILABLE": 1}
    ans = analyse.answer(steps, PLAN, processes=1)
    assert ans["held"] and ans["users"] == 4 and ans["p99Ms"] == 40.0
    assert ans["perKindPerSecond"] == {"checkin": 10.0, "spin": 10.0, "board": 20.0}
    assert ans["words"].startswith("holds 10 check-ins/s, 10 spins/s, 20 board reads/s")
    assert "p99 <= 50 ms" in ans["words"]
    assert ans["saturatedFirst"].startswith("app (engage serve) CPU (98% of a core at 8 users)")


def test_thresholds_pass_and_breach_at_the_step_that_held():
    t0 = 1_000_000.0
    steps = analyse.steps_of(synthetic(t0), PLAN, t0, [])
    spec = {
        "thresholds": {
            "http_req_duration": ["p(99)<50", "p(95)<30"],
            "http_req_failed": ["rate<0.001"],
            "http_reqs{kind:board}": ["rate>=20"],
            "http_reqs{kind:spin}": ["rate>15"],
        }
    }
    got = {(r["metric"], r["threshold"]): r["ok"] for r in analyse.check_thresholds(spec, steps)}
    assert got == {
        ("http_req_duration", "p(99)<50"): True,
        ("http_req_duration", "p(95)<30"): False,
        ("http_req_failed", "rate<0.001"): True,
        ("http_reqs{kind:board}", "rate>=20"): True,
        ("http_reqs{kind:spin}", "rate>15"): False,
    }
    # With no step held, every threshold is breached.
    slow = analyse.steps_of(synthetic(t0), {**PLAN, "p99_ms": 1.0}, t0, [])
    assert not any(r["ok"] for r in analyse.check_thresholds(spec, slow))
    assert analyse.answer(slow, {**PLAN, "p99_ms": 1.0}, 1)["words"].startswith("holds nothing")


def test_the_shipped_thresholds_file_reads_and_the_command_refuses_remote_targets(tmp_path):
    spec = json.loads((ROOT / "load/capacity/thresholds.json").read_text())
    assert analyse.check_thresholds(spec, [])  # every expression parses
    seed = tmp_path / "seed.json"
    seed.write_text("{}")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "load.capacity",
            "--url",
            "http://192.0.2.1:80",
            "--seed",
            str(seed),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "not a loopback address" in proc.stdout
