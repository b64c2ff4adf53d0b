"""`python -m load.bench --smoke`: the performance targets command runs end to end in seconds
and prints every row of the table (not a timing test: the numbers of a smoke run mean nothing).
It needs pgbench (postgresql-client); wrk when installed, else its Python driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from load.bench import table
from service.core.embedded import pg_binary

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(pg_binary("pgbench") is None, reason="pgbench is not installed")
def test_bench_smoke_prints_every_row(servers: dict[str, Any], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(
        ENGAGE_DATABASE_URL=servers["admin_url"],  # the bench makes (and drops) its own database
        ENGAGE_REDIS_URL=servers["redis_url"],
    )
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "load.bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    rows = [r["row"] for r in data["table"]]
    writes = ["check-in", "free spin", "paid spin", "points credit", "brand event"]
    reads = ["board top 100 + my rank", "around-me", "/v1/me", "PK scoreboard"]
    expected = (
        [f"{w} vs pgbench of the same SQL" for w in writes]
        + [f"{w} vs /health/live" for w in writes]
        + [f"{r} vs /health/live" for r in reads]
        + [f"p99 at 2 connections: {p}" for p in writes + reads]
        + [f"round trips PostgreSQL / Redis: {w}" for w in writes]
    )
    assert rows == expected
    for row in rows:  # every row is printed
        assert row in done.stdout
    assert all(r["result"] in ("PASS", "MISS") for r in data["table"])
    assert data["live"]["rate"] > 0
    for name in writes:
        w = data["writes"][name]
        assert "pgbenchError" not in w, w["pgbenchError"]
        assert w["pgbenchTps"] > 0, name
        assert w["http"]["ok"] > 0 and w["http"]["status_5xx"] == 0, (name, w["http"])
        assert w["written"] >= w["http"]["ok"], (name, w)  # every answered write was real
        # the reference replays SQL the service's own code ran (no copy in load/bench)
        assert all(s.startswith("service.") for s in w["statements"]), w["statements"]
        assert w["pg"] == len(w["statements"]) and w["pg"] >= 1
        # pgbench writes for another member in every transaction, never the recorded one
        script = w["pgbenchScript"]
        assert ":m" in script or ":x" in script, script
    for name in reads:
        h = data["reads"][name]["http"]
        assert h["ok"] > 0 and h["status_5xx"] == 0 and h["status_other"] == 0, (name, h)
    assert "| row | value | reference | ratio | target | result |" in (
        out.with_suffix(".md").read_text()
    )


def test_readme_table_is_rewritten_from_a_run(tmp_path: Path) -> None:
    results = {
        "run": {
            "date": "2026-11-29 12:00 UTC",
            "seconds": 10,
            "connections": 16,
            "pgClients": 16,
            "workers": 2,
            "driver": "wrk",
            "note": "n",
        },
        "table": [
            {
                "row": "check-in vs pgbench of the same SQL",
                "value": "900/s",
                "reference": "pgbench 1,000 TPS",
                "ratio": "0.90x",
                "target": ">= 0.8x",
                "result": "PASS",
            }
        ],
    }
    source = tmp_path / "r.json"
    source.write_text(json.dumps(results))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{table.README_START}\nold\n{table.README_END}\nafter\n")
    table.update_readme(readme, source)
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "| check-in vs pgbench of the same SQL | 900/s | pgbench 1,000 TPS | 0.90x |" in text
