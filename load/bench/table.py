"""Issue 10's targets table from one run's measures: rows of (row, value, reference, ratio,
target, PASS/MISS), as text, Markdown and JSON; and README.md's performance table rewritten
from such a JSON file (between the ``bench:table`` markers)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

WRITE_VS_PGBENCH = 0.8
WRITE_VS_LIVE = 0.10
P99_MS = 20.0
ROUND_TRIPS = (2, 1)
README_START = "<!-- bench:table:start -->"
README_END = "<!-- bench:table:end -->"


def _row(row: str, value: str, reference: str, ratio: str, target: str, ok: bool) -> dict:
    return {
        "row": row,
        "value": value,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "result": "PASS" if ok else "MISS",
    }


def _vs_live(name: str, rate: float, live: float, digits: int, target: str, least: float) -> dict:
    """A row of ``name``'s rate against /health/live's, the ratio to ``digits`` decimals,
    passing at ``least`` times or more."""
    ratio = rate / live if live else 0.0
    return _row(
        f"{name} vs /health/live",
        f"{rate:,.0f}/s",
        f"/health/live {live:,.0f}/s",
        f"{ratio:.{digits}f}x",
        target,
        ratio >= least,
    )


def rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """Every row of the targets table, in the issue's order."""
    live = results["live"]["rate"]
    writes, reads = results["writes"], results["reads"]
    out: list[dict[str, str]] = []
    for name, w in writes.items():
        rate, tps = w["http"]["rate"], w["pgbenchTps"]
        ratio = rate / tps if tps else 0.0
        out.append(
            _row(
                f"{name} vs pgbench of the same SQL",
                f"{rate:,.0f}/s",
                f"pgbench {tps:,.0f} TPS",
                f"{ratio:.2f}x",
                f">= {WRITE_VS_PGBENCH}x",
                ratio >= WRITE_VS_PGBENCH,
            )
        )
    for name, w in writes.items():
        out.append(
            _vs_live(name, w["http"]["rate"], live, 3, f">= {WRITE_VS_LIVE}x", WRITE_VS_LIVE)
        )
    for name, r in reads.items():
        target = f">= {r['target']}x ({r['targetNote']})"
        out.append(_vs_live(name, r["http"]["rate"], live, 2, target, r["target"]))
    conns = results["run"]["connections"]
    for name, m in [*writes.items(), *reads.items()]:
        h = m["http"]
        ok = h["p99_ms"] <= P99_MS and h["status_5xx"] == 0 and h["socket_errors"] == 0
        out.append(
            _row(
                f"p99 at {conns} connections: {name}",
                f"{h['p99_ms']:.1f} ms, {h['status_5xx']} 5xx",
                f"{h['requests']:,} requests, {h['status_other']} other non-2xx",
                "-",
                f"<= {P99_MS:.0f} ms, no 5xx",
                ok,
            )
        )
    for name, w in writes.items():
        pg, rd = w["pg"], w["redis"]
        out.append(
            _row(
                f"round trips PostgreSQL / Redis: {name}",
                f"{pg} / {rd}",
                "one real request, counted on the clients",
                "-",
                f"<= {ROUND_TRIPS[0]} / <= {ROUND_TRIPS[1]}",
                pg <= ROUND_TRIPS[0] and rd <= ROUND_TRIPS[1],
            )
        )
    return out


def text(table: list[dict[str, str]]) -> str:
    cols = ["row", "value", "reference", "ratio", "target", "result"]
    widths = {c: max(len(c), *(len(r[c]) for r in table)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in table]
    return "\n".join(lines)


def markdown(table: list[dict[str, str]], results: dict[str, Any]) -> str:
    run = results["run"]
    head = (
        f"Measured {run['date']} by `python -m load.bench` ({run['driver']}, "
        f"{run['connections']} connections, {run['seconds']:g} s per run, "
        f"{run['workers']} workers, pgbench {run['pgClients']} clients; {run['note']})."
    )
    lines = [
        head,
        "",
        "| row | value | reference | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['row']} | {r['value']} | {r['reference']} | {r['ratio']} | {r['target']} "
        f"| {r['result']} |"
        for r in table
    ]
    return "\n".join(lines) + "\n"


def write(out: Path, results: dict[str, Any], table: list[dict[str, str]]) -> tuple[Path, Path]:
    """``<out>.json`` (the measures and the rows) and ``<out>.md`` (the table)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    j, m = out.with_suffix(".json"), out.with_suffix(".md")
    j.write_text(json.dumps({**results, "table": table}, indent=2, ensure_ascii=False) + "\n")
    m.write_text(markdown(table, results))
    return j, m


def update_readme(readme: Path, source: Path) -> None:
    """Replace README's table between the markers with the one of ``source`` (a JSON file
    written by a run)."""
    data = json.loads(source.read_text())
    block = f"{README_START}\n{markdown(data['table'], data)}{README_END}"
    text_ = readme.read_text()
    if README_START not in text_:
        raise SystemExit(f"{readme}: no {README_START} marker")
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    readme.write_text(pattern.sub(lambda _: block, text_))
