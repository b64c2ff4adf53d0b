"""The HTML report: plots (matplotlib, PNG embedded as data URIs, so the file stands alone)."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt

from load.capacity.analyse import Step, failed, pct


def _png(fig) -> str:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bins(rows, t0: float):  # type: ignore[no-untyped-def]
    by_sec: dict[int, list] = defaultdict(list)
    for r in rows:
        by_sec[int(r[0] - t0)].append(r)
    return sorted(by_sec.items())


def _shade(ax, steps: list[Step], t0: float) -> None:  # type: ignore[no-untyped-def]
    for s in steps:
        ax.axvspan(s.start - t0, s.end - t0, color="#2a9d8f" if s.held else "#e76f51", alpha=0.07)


def plots(rows, steps: list[Step], samples: list[dict], t0: float) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    bins = _bins([r for r in rows if r[1] != "login (reader)"], t0)
    secs = [s for s, _ in bins]
    kinds = sorted({r[1] for r in rows if r[1] != "login (reader)"})
    out = []

    fig, ax = plt.subplots(figsize=(10, 3.6))
    for k in kinds:
        ax.plot(secs, [sum(1 for r in rs if r[1] == k) for _, rs in bins], label=k)
    ax.plot(secs, [len(rs) for _, rs in bins], label="all", color="black", lw=1.5)
    _shade(ax, steps, t0)
    ax2 = ax.twinx()
    ax2.step(
        [s.start - t0 for s in steps],
        [s.users for s in steps],
        where="post",
        color="grey",
        ls="--",
        label="users",
    )
    ax2.set_ylabel("users")
    ax.set(
        xlabel="seconds", ylabel="requests/s", title="Throughput (green: step held, red: did not)"
    )
    ax.legend(loc="upper left", fontsize=8)
    out.append(("Throughput", _png(fig)))

    fig, ax = plt.subplots(figsize=(10, 3.6))
    for p, c in ((50, "#2a9d8f"), (95, "#e9c46a"), (99, "#e76f51")):
        ax.plot(secs, [pct([r[2] for r in rs], p) for _, rs in bins], label=f"p{p}", color=c)
    _shade(ax, steps, t0)
    ax.set(xlabel="seconds", ylabel="ms", title="Latency over time (all requests, 1 s bins)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    out.append(("Latency p50/p95/p99", _png(fig)))

    fig, ax = plt.subplots(figsize=(10, 3.0))
    codes = Counter(f"{r[3]} {r[4]}".strip() for r in rows if failed(r[3], r[4]))
    for code in codes:
        ax.plot(
            secs,
            [
                sum(1 for r in rs if failed(r[3], r[4]) and f"{r[3]} {r[4]}".strip() == code)
                for _, rs in bins
            ],
            label=code,
        )
    if not codes:
        ax.text(0.5, 0.5, "no errors", ha="center", va="center", transform=ax.transAxes)
    _shade(ax, steps, t0)
    ax.set(xlabel="seconds", ylabel="errors/s", title="Errors by status and code")
    if codes:
        ax.legend(fontsize=8)
    out.append(("Errors by code", _png(fig)))

    if samples:
        ts = [s["t"] - t0 for s in samples]
        fig, ax = plt.subplots(figsize=(10, 3.4))
        for g in samples[0]["cpu"]:
            ax.plot(ts, [s["cpu"][g] for s in samples], label=g)
        _shade(ax, steps, t0)
        ax.set(
            xlabel="seconds", ylabel="% of one core", title="CPU by process group on this machine"
        )
        ax.legend(fontsize=8)
        out.append(("Server CPU", _png(fig)))

        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
        m = [s.get("metrics", {}) for s in samples]
        axes[0].plot(ts, [x.get("pool", 0) for x in m], label="in use")
        axes[0].plot(ts, [x.get("pool_waiting", 0) for x in m], label="waiting")
        axes[0].set(title="PostgreSQL pool", xlabel="seconds")
        axes[0].legend(fontsize=8)
        redis_ms = []
        for a, b in itertools.pairwise(m):
            n = b.get("redis_n", 0) - a.get("redis_n", 0)
            redis_ms.append(1000 * (b.get("redis_s", 0) - a.get("redis_s", 0)) / n if n > 0 else 0)
        axes[1].plot(ts[1:], redis_ms)
        axes[1].set(title="Redis call mean (ms)", xlabel="seconds")
        cps = []
        for i in range(1, len(m)):
            dt = max(1e-6, ts[i] - ts[i - 1])
            cps.append(max(0.0, m[i].get("checkins", 0) - m[i - 1].get("checkins", 0)) * 60 / dt)
        axes[2].plot(ts[1:], cps)
        axes[2].set(title="Check-ins per minute (server)", xlabel="seconds")
        out.append(("Server metrics (/metrics)", _png(fig)))
    return out


def write(path, summary: dict[str, Any], steps: list[Step], figures: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    rows = "".join(
        f"<tr class={'ok' if s.held else 'bad'}><td>{s.index}</td><td>{s.users}</td><td>{s.rps:.0f}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v:.0f}' for k, v in sorted(s.per_kind_rps.items())))}</td>"
        f"<td>{s.p50:.1f}</td><td>{s.p95:.1f}</td><td>{s.p99:.1f}</td><td>{s.server_errors}</td>"
        f"<td>{html.escape(', '.join(f'{k}: {v}' for k, v in s.errors.items()))}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v:.0f}%' for k, v in s.cpu.items()))}</td></tr>"
        for s in steps
    )

    def threshold_row(t: dict[str, Any]) -> str:
        shown = "-" if t["value"] is None else f"{t['value']:.3f}"
        return (
            f"<tr class={'ok' if t['ok'] else 'bad'}><td>{html.escape(t['metric'])}</td>"
            f"<td>{html.escape(t['threshold'])}</td><td>{shown}</td>"
            f"<td>{'pass' if t['ok'] else 'BREACHED'}</td></tr>"
        )

    th = "".join(threshold_row(t) for t in summary.get("thresholds", []))
    imgs = "".join(
        f"<h2>{html.escape(t)}</h2><img src='{src}' alt='{html.escape(t)}'>" for t, src in figures
    )
    plan = summary["plan"]
    doc = f"""<!doctype html><meta charset=utf-8><title>Engage capacity {html.escape(summary["run"])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}tr.ok{{background:#eef8f5}}tr.bad{{background:#fdeeea}}
.answer{{font-size:18px;padding:1em;background:#f4f4f4;border-left:4px solid #2a9d8f}}img{{max-width:100%}}</style>
<h1>Engage capacity: {html.escape(plan["url"])}</h1>
<p class=answer>{html.escape(summary["answer"]["words"])}</p>
<p>Run {html.escape(summary["run"])}; steps of {plan["step_s"]} s at {plan["steps"]} users (closed loop, no wait);
p99 limit {plan["p99_ms"]} ms; Locust processes: {plan["processes"]}. Every check-in, spin and login is a
real write (a fresh member each iteration). The machine is shared: CPU figures include other work.</p>
<h2>Steps</h2><table><tr><th>step</th><th>users</th><th>req/s</th><th>per kind/s</th><th>p50</th><th>p95</th>
<th>p99 ms</th><th>5xx</th><th>errors</th><th>CPU</th></tr>{rows}</table>
{"<h2>Thresholds</h2><table><tr><th>metric</th><th>threshold</th><th>value</th><th></th></tr>" + th + "</table>" if th else ""}
{imgs}"""
    path.write_text(doc)
