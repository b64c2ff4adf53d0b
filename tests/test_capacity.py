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


def reference_rows(t0: float, per_s: int = 200, seconds: int = 10) -> list:
    """The reference phase, before the ramp: /health/live alone at ``per_s`` a second."""
    start = t0 - seconds - 5
    return [
        (start + sec + i / per_s, analyse.REFERENCE, 2.0, 200, "")
        for sec in range(seconds)
        for i in range(per_s)
    ]


REF_PLAN = {**PLAN, "reference": {"s": 10, "users": 8}}


def test_the_answer_gives_each_throughput_as_a_ratio_to_the_reference():
    t0 = 1_000_000.0
    rows = sorted(reference_rows(t0) + synthetic(t0))
    steps = analyse.steps_of(rows, REF_PLAN, t0, [])
    ref = analyse.reference_of(rows, REF_PLAN, [])
    assert ref is not None and ref.rps == 200.0 and ref.users == 8
    # The reference's requests are not counted in any step.
    assert [s.held for s in steps] == [True, True, False] and steps[1].rps == 40.0
    ans = analyse.answer(steps, REF_PLAN, 1, ref)
    assert ans["ratios"] == {"all": 0.2, "checkin": 0.05, "spin": 0.05, "board": 0.1}
    assert "0.2x the reference (/health/live alone: 200 requests/s at 8 users)" in ans["words"]
    assert "check-ins 0.05x, spins 0.05x, board reads 0.1x" in ans["words"]
    assert "at 8 users it did not hold: p99 200 ms > 50 ms; 1 5xx" in ans["words"]
    spec = {"thresholds": {"http_reqs{kind:board}": ["ratio>=0.1", "ratio>0.1"]}}
    got = [(r["value"], r["ok"]) for r in analyse.check_thresholds(spec, steps, ref)]
    assert got == [(0.1, True), (0.1, False)]
    # Without a reference phase: no ratios, and a ratio threshold is breached.
    assert analyse.answer(steps, PLAN, 1)["ratios"] == {}
    assert not analyse.check_thresholds(spec, steps)[0]["ok"]


def test_a_step_whose_requests_failed_does_not_hold_and_throughput_counts_successes():
    """429s answer fast: counted as throughput they would flatter the step, and a step where
    the server refused the load held nothing."""
    t0 = 1_000_000.0
    rows = []
    for sec in range(10):
        for i in range(100):
            status, code = (429, "RATE_LIMITED") if i % 5 < 2 else (200, "")
            rows.append((t0 + sec + i / 100, "board", 5.0, status, code))
    plan = {"steps": [4], "step_s": 10, "p99_ms": 50.0}
    [st] = analyse.steps_of(sorted(rows), plan, t0, [])
    assert st.sent_rps == 100.0 and st.rps == 60.0 and st.per_kind_rps == {"board": 60.0}
    assert not st.held and st.server_errors == 0
    words = analyse.answer([st], plan, 1)["words"]
    assert "40% failed (429 RATE_LIMITED x300)" in words
    assert "raise ENGAGE_RATE_MEMBER_PER_MIN" in words
    # One failure in a hundred is tolerated (a member's check failing once is not the load).
    rows = [(t, k, ms, 200, "") for t, k, ms, *_ in rows]
    rows[5] = (rows[5][0], "board", 5.0, 409, "WHEEL_NO_SPINS_LEFT")
    assert analyse.steps_of(rows, plan, t0, [])[0].held


def test_redraw_rewrites_the_answer_summary_and_report_from_a_run_folder(tmp_path):
    t0 = 1_000_000.0
    rows = sorted(reference_rows(t0) + synthetic(t0))
    with (tmp_path / "requests-1.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps(list(r)) + "\n")
    plan = {**REF_PLAN, "run": "r1", "url": "http://127.0.0.1:1", "processes": 1}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "samples.json").write_text(json.dumps(samples(t0)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "load.capacity",
            "--redraw",
            str(tmp_path),
            "--thresholds",
            str(ROOT / "load/capacity/thresholds.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # thresholds breached
    assert "reference:    8 users      200 req/s" in proc.stdout
    assert "ratios to /health/live: all 0.2x, checkin 0.05x" in proc.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["answer"]["users"] == 4 and summary["reference"]["rps"] == 200.0
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == 5
    assert "GET /health/live alone" in page and "0.2x" in page
