"""The HTML report: plots (matplotlib, PNG embedded as data URIs, so the file stands alone)."""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter, defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter

from load.capacity.analyse import REFERENCE, Step, failed, pct


def _png(fig, aligned: bool = True) -> str:  # type: ignore[no-untyped-def]
    """``aligned``: the one-axes time plots share fixed margins (legends on the right), so
    their time axes line up down the page."""
    buf = io.BytesIO()
    if aligned:
        fig.subplots_adjust(left=0.07, right=0.80, top=0.88, bottom=0.16)
    else:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bins(rows, t0: float):  # type: ignore[no-untyped-def]
    by_sec: dict[int, list] = defaultdict(list)
    for r in rows:
        by_sec[math.floor(r[0] - t0)].append(r)
    return sorted(by_sec.items())


def _frame(ax, steps: list[Step], t0: float, ref: Step | None, xlim: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    """The same time axis on every plot: the reference phase shaded blue, each step's measured
    window green (held) or red (did not hold), seconds from the start of the ramp."""
    if ref is not None:
        ax.axvspan(ref.start - t0, ref.end - t0, color="#457b9d", alpha=0.10)
    for s in steps:
        ax.axvspan(s.start - t0, s.end - t0, color="#2a9d8f" if s.held else "#e76f51", alpha=0.07)
    ax.set_xlim(*xlim)
    ax.set_xlabel("seconds from the start of the ramp")


def plots(
    rows, steps: list[Step], samples: list[dict], t0: float, ref: Step | None = None
) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """``rows``: the whole request log (the reference's ``live`` requests included)."""
    rows = [r for r in rows if r[1] != "login (reader)"]
    ramp = [r for r in rows if r[1] != REFERENCE]
    live = [r for r in rows if r[1] == REFERENCE]
    start = min(r[0] for r in rows) - t0
    end = max(r[0] for r in rows) - t0 + 1
    xlim = (math.floor(start), math.ceil(end))
    step_s = (steps[1].start - steps[0].start) if len(steps) > 1 else (end - 0)
    out = []

    # Throughput: answers that succeeded per second, by kind; the failed ones apart.
    bins = _bins(ramp, t0)
    secs = [x for x, _ in bins]
    kinds = sorted({r[1] for r in ramp})
    fig, ax = plt.subplots(figsize=(12, 3.6))
    for k in kinds:
        ax.plot(
            secs,
            [sum(1 for r in rs if r[1] == k and not failed(r[3], r[4])) for _, rs in bins],
            label=k,
        )
    ax.plot(
        secs,
        [sum(1 for r in rs if not failed(r[3], r[4])) for _, rs in bins],
        label="all that succeeded",
        color="black",
        lw=1.5,
    )
    if any(failed(r[3], r[4]) for r in ramp):
        ax.plot(
            secs,
            [sum(1 for r in rs if failed(r[3], r[4])) for _, rs in bins],
            label="failed",
            color="#e76f51",
            ls=":",
        )
    _frame(ax, steps, t0, ref, xlim)
    if ref is not None:
        ax.text(
            (ref.start + ref.end) / 2 - t0,
            0.92,
            f"reference:\n/health/live alone\n{ref.rps:.0f}/s at {ref.users} users",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=8,
            color="#1d3557",
        )
    ax2 = ax.twinx()
    bounds = [s.start - t0 - min(3.0, step_s / 4) for s in steps]
    ax2.step(
        [*bounds, bounds[-1] + step_s] if bounds else [],
        [*(s.users for s in steps), steps[-1].users] if steps else [],
        where="post",
        color="grey",
        ls="--",
        label="users",
    )
    ax2.set_ylabel("users (dashed)")
    ax2.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    ax.set(
        ylabel="requests/s", title="Throughput (blue: reference, green: step held, red: did not)"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.07, 1), fontsize=8)
    out.append(("Throughput", _png(fig)))

    # Latency: the reference's requests too (its own line), in the same milliseconds.
    fig, ax = plt.subplots(figsize=(12, 3.6))
    for p, c in ((50, "#2a9d8f"), (95, "#e9c46a"), (99, "#e76f51")):
        ax.plot(secs, [pct([r[2] for r in rs], p) for _, rs in bins], label=f"p{p}", color=c)
    if live:
        lbins = _bins(live, t0)
        for p, c in ((50, "#2a9d8f"), (99, "#e76f51")):
            ax.plot(
                [x for x, _ in lbins],
                [pct([r[2] for r in rs], p) for _, rs in lbins],
                color=c,
                ls="--",
                label=f"p{p} /health/live",
            )
    _frame(ax, steps, t0, ref, xlim)
    ax.set(ylabel="ms (log)", title="Latency over time (1 s bins)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    out.append(("Latency p50/p95/p99", _png(fig)))

    fig, ax = plt.subplots(figsize=(12, 3.0))
    codes = Counter(f"{r[3]} {r[4]}".strip() for r in rows if failed(r[3], r[4]))
    every = _bins(rows, t0)
    for code in codes:
        ax.plot(
            [x for x, _ in every],
            [
                sum(1 for r in rs if failed(r[3], r[4]) and f"{r[3]} {r[4]}".strip() == code)
                for _, rs in every
            ],
            label=code,
        )
    if not codes:
        ax.text(0.5, 0.5, "no errors", ha="center", va="center", transform=ax.transAxes)
    _frame(ax, steps, t0, ref, xlim)
    ax.set(ylabel="errors/s", title="Errors by status and code")
    ax.set_ylim(bottom=0)
    if codes:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    out.append(("Errors by code", _png(fig)))

    samples = [x for x in samples if xlim[0] <= x["t"] - t0 <= xlim[1]]
    if samples:
        ts = [x["t"] - t0 for x in samples]
        fig, ax = plt.subplots(figsize=(12, 3.4))
        for g in samples[0]["cpu"]:
            ax.plot(ts, [x["cpu"][g] for x in samples], label=g)
        _frame(ax, steps, t0, ref, xlim)
        ax.set(ylabel="% of one core", title="CPU by process group on this machine")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        out.append(("Server CPU", _png(fig)))

        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
        m = [x.get("metrics", {}) for x in samples]
        axes[0].plot(ts, [x.get("pool", 0) for x in m], label="in use")
        axes[0].plot(ts, [x.get("pool_waiting", 0) for x in m], label="waiting")
        axes[0].set(title="PostgreSQL pool (connections)")
        axes[0].legend(fontsize=8)
        redis_ms = []
        for a, b in itertools.pairwise(m):
            n = b.get("redis_n", 0) - a.get("redis_n", 0)
            redis_ms.append(1000 * (b.get("redis_s", 0) - a.get("redis_s", 0)) / n if n > 0 else 0)
        axes[1].plot(ts[1:], redis_ms)
        axes[1].set(title="Redis call mean (ms, pipelines incl.)")
        cps = []
        for i in range(1, len(m)):
            dt = max(1e-6, ts[i] - ts[i - 1])
            cps.append(max(0.0, m[i].get("checkins", 0) - m[i - 1].get("checkins", 0)) * 60 / dt)
        axes[2].plot(ts[1:], cps)
        axes[2].set(title="Check-ins per minute (server)")
        for ax in axes:
            _frame(ax, steps, t0, ref, xlim)
            ax.set_xlabel("seconds")
            ax.set_ylim(bottom=0)
        out.append(("Server metrics (/metrics)", _png(fig, aligned=False)))
    return out


def write(
    path,
    summary: dict[str, Any],
    steps: list[Step],
    figures: list[tuple[str, str]],
    ref: Step | None = None,
) -> None:  # type: ignore[no-untyped-def]
    def ratio(s: Step) -> str:
        return f"{s.rps / ref.rps:.3g}x" if ref is not None and ref.rps else "-"

    reference = (
        ""
        if ref is None
        else (
            f"<tr class=ref><td>ref</td><td>{ref.users}</td><td>{ref.rps:.0f}</td>"
            f"<td>GET /health/live alone</td><td>1x</td>"
            f"<td>{ref.p50:.1f}</td><td>{ref.p95:.1f}</td><td>{ref.p99:.1f}</td><td>{ref.server_errors}</td>"
            f"<td>{html.escape(', '.join(f'{k}: {v}' for k, v in ref.errors.items()))}</td>"
            f"<td>{html.escape(', '.join(f'{k} {v:.0f}%' for k, v in ref.cpu.items()))}</td></tr>"
        )
    )
    rows = reference + "".join(
        f"<tr class={'ok' if s.held else 'bad'}><td>{s.index}</td><td>{s.users}</td><td>{s.rps:.0f}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v:.0f}' for k, v in sorted(s.per_kind_rps.items())))}</td>"
        f"<td>{ratio(s)}</td><td>{s.p50:.1f}</td><td>{s.p95:.1f}</td><td>{s.p99:.1f}</td><td>{s.server_errors}</td>"
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
    ref_plan = plan.get("reference") or {}
    ref_words = (
        f"first {ref_plan['s']} s of the bare GET /health/live alone at {ref_plan['users']} users "
        "(row <i>ref</i>: the reference every throughput is divided by), then "
        if ref_plan.get("s")
        else ""
    )
    doc = f"""<!doctype html><meta charset=utf-8><title>Engage capacity {html.escape(summary["run"])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}tr.ok{{background:#eef8f5}}tr.bad{{background:#fdeeea}}tr.ref{{background:#eef2fb}}
.answer{{font-size:18px;padding:1em;background:#f4f4f4;border-left:4px solid #2a9d8f}}img{{max-width:100%}}</style>
<h1>Engage capacity: {html.escape(plan["url"])}</h1>
<p class=answer>{html.escape(summary["answer"]["words"])}</p>
<p>Run {html.escape(summary["run"])}; {ref_words}steps of {plan["step_s"]} s at {plan["steps"]} users (closed loop, no wait);
p99 limit {plan["p99_ms"]} ms; Locust processes: {plan["processes"]}. Every check-in, spin and login is a
real write (a fresh member each iteration). The machine is shared: CPU figures include other work.</p>
<h2>Steps</h2><table><tr><th>step</th><th>users</th><th>req/s ok</th><th>per kind/s ok</th><th>vs /health/live</th><th>p50</th><th>p95</th>
<th>p99 ms</th><th>5xx</th><th>errors</th><th>CPU</th></tr>{rows}</table>
{"<h2>Thresholds</h2><table><tr><th>metric</th><th>threshold</th><th>value</th><th></th></tr>" + th + "</table>" if th else ""}
{imgs}"""
    path.write_text(doc)
