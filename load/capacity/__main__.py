"""`python -m load.capacity` (or `engage capacity`): a ramp to saturation, and the answer.

    uv run python -m load.capacity --url http://127.0.0.1:8100 \
        --thresholds load/capacity/thresholds.json

Runs Locust headless as a subprocess (`--processes N` for N worker processes under one master):
first the reference phase (`--reference-s` seconds of the bare GET /health/live alone, at
`--reference-users`), then the users of load/capacity/locustfile.py stepping up. Samples the
server meanwhile (CPU per process group, /metrics), then prints the capacity answer in words
and numbers, with each throughput as a ratio to the reference, and writes <out>/report.html
(plots), <out>/summary.json and Locust's CSVs. Exit status 1 when a threshold is breached or
no step held. Seed first with load/seed.py (see load/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from load.capacity import analyse, report
from load.capacity.sampler import Sampler

HERE = Path(__file__).resolve().parent
LOAD = HERE.parent
ROOT = LOAD.parent


def _is_loopback(host: str) -> bool:
    import ipaddress
    import socket

    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m load.capacity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        help="the server under test (loopback only unless ENGAGE_LOAD_ALLOW_REMOTE=1)",
    )
    p.add_argument("--seed", default=str(LOAD / ".seed.json"), help="written by load/seed.py")
    p.add_argument("--steps", default="4,8,16,32,64", help="users at each step (comma-separated)")
    p.add_argument("--step-s", type=int, default=20, help="seconds each step is held")
    p.add_argument("--p99-ms", type=float, default=50.0, help="a step holds with p99 at most this")
    p.add_argument(
        "--scenario",
        choices=["mix", "fresh", "board"],
        default="mix",
        help="mix: fresh members (login, check-in, spin) and board readers 1:1",
    )
    p.add_argument("--processes", type=int, default=1, help="Locust worker processes")
    p.add_argument(
        "--reference-s",
        type=int,
        default=15,
        help="seconds of the bare /health/live alone before the ramp, the reference of the "
        "ratios (0: no reference phase, no ratios)",
    )
    p.add_argument(
        "--reference-users",
        type=int,
        help="users of the reference phase (default: the largest step's)",
    )
    p.add_argument("--thresholds", help="k6-style thresholds file (JSON); see analyse.py")
    p.add_argument("--out", help="output folder (default load/out/capacity-<run>)")
    p.add_argument(
        "--redraw",
        metavar="OUT",
        help="no run: read OUT (a finished run's folder) again and rewrite its answer, "
        "summary.json and report.html (with --thresholds, checks them again)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.redraw:
        out = Path(args.redraw).resolve()
        samples = out / "samples.json"
        return conclude(
            out,
            json.loads((out / "plan.json").read_text()),
            json.loads(samples.read_text()) if samples.exists() else [],
            args.thresholds,
        )
    if not args.url:
        print("--url is required (the server under test), unless --redraw")
        return 2
    host = urlsplit(args.url).hostname or ""
    if os.environ.get("ENGAGE_LOAD_ALLOW_REMOTE") != "1" and not _is_loopback(host):
        print(f"refusing to load {args.url}: not a loopback address (ENGAGE_LOAD_ALLOW_REMOTE=1)")
        return 2
    if not Path(args.seed).exists():
        print(f"no seed file at {args.seed}: run `uv run python load/seed.py --host {args.url}`")
        return 2
    run = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    out = Path(args.out or LOAD / "out" / f"capacity-{run}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    mix = {
        "mix": {"fresh": 1, "board": 1},
        "fresh": {"fresh": 1, "board": 0},
        "board": {"fresh": 0, "board": 1},
    }[args.scenario]
    steps = [int(x) for x in args.steps.split(",")]
    plan = {
        "url": args.url.rstrip("/"),
        "seed": str(Path(args.seed).resolve()),
        "out": str(out),
        "run": run,
        "steps": steps,
        "step_s": args.step_s,
        "p99_ms": args.p99_ms,
        "mix": mix,
        "processes": args.processes,
        "reference": {"s": args.reference_s, "users": args.reference_users or max(steps)},
    }
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    locust = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--host",
        plan["url"],
        "--loglevel",
        "WARNING",
        "--only-summary",
    ]
    if args.processes > 1:
        locust += ["--processes", str(args.processes)]
    env = {**os.environ, "ENGAGE_CAPACITY_PLAN": str(out / "plan.json")}
    ramp_classes = [c for c, k in (("FreshMember", "fresh"), ("BoardReader", "board")) if mix[k]]
    phases = [
        ("ramp", ramp_classes, "locust", len(steps) * args.step_s + 90),
    ]
    if args.reference_s > 0:
        phases.insert(0, ("reference", ["LiveProbe"], "locust-reference", args.reference_s + 60))
    ref_users = plan["reference"]["users"]
    print(
        f"capacity run {run}: "
        + (
            f"/health/live alone at {ref_users} users x {args.reference_s} s, then "
            if args.reference_s > 0
            else ""
        )
        + f"{steps} users x {args.step_s} s on {plan['url']} "
        f"({args.processes} Locust process(es)); output in {out}",
        flush=True,
    )
    sampler = Sampler(plan["url"])
    sampler.start()
    try:
        with (out / "locust.log").open("w") as log:
            for phase, classes, csv, budget in phases:
                log.write(f"== phase {phase}: {' '.join(classes)}\n")
                log.flush()
                subprocess.run(
                    [*locust, "--csv", str(out / csv), *classes],
                    cwd=ROOT,
                    env={**env, "ENGAGE_CAPACITY_PHASE": phase},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=budget,
                    check=False,
                )
    finally:
        sampler.stop()
    return conclude(out, plan, sampler.samples, args.thresholds)


def conclude(out: Path, plan: dict, samples: list[dict], thresholds: str | None) -> int:  # type: ignore[type-arg]
    """From the request log in ``out`` to the answer, summary.json and report.html; printed.
    Exit status: 0 when a step held and every threshold passed, else 1."""
    every = analyse.load_requests(out)
    rows = [r for r in every if r[1] != analyse.REFERENCE]
    if not rows:
        print(f"no request was made; see {out / 'locust.log'}")
        return 1
    t0 = rows[0][0]
    steps_ = analyse.steps_of(rows, plan, t0, samples)
    ref = analyse.reference_of(every, plan, samples)
    ans = analyse.answer(steps_, plan, plan["processes"], ref)
    summary = {
        "run": plan["run"],
        "plan": plan,
        "answer": ans,
        "reference": None if ref is None else analyse.public(ref),
        "steps": [analyse.public(s) for s in steps_],
    }
    ok = ans["held"]
    if thresholds:
        spec = json.loads(Path(thresholds).read_text())
        results = analyse.check_thresholds(spec, steps_, ref)
        summary["thresholds"] = results
        ok = ok and all(r["ok"] for r in results)
    summary["passed"] = ok
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    # The server samples too, so `--redraw` can draw the report again.
    (out / "samples.json").write_text(json.dumps(samples))
    report.write(
        out / "report.html",
        summary,
        steps_,
        report.plots(every, steps_, samples, t0, ref),
        ref,
    )
    print()
    if ref is not None:
        print(
            f"  reference: {ref.users:4d} users  {ref.rps:7.0f} req/s  p50 {ref.p50:6.1f}  "
            f"p95 {ref.p95:6.1f}  p99 {ref.p99:7.1f} ms  5xx {ref.server_errors}  "
            f"(GET /health/live alone)"
        )
    for s in steps_:
        print(
            f"  step {s.index}: {s.users:4d} users  {s.rps:7.0f} req/s  p50 {s.p50:6.1f}  "
            f"p95 {s.p95:6.1f}  p99 {s.p99:7.1f} ms  5xx {s.server_errors}  "
            f"failed {s.failed}  {'held' if s.held else 'did not hold'}"
        )
    print(f"\n{ans['words']}")
    if ans.get("ratios"):
        print(
            "  ratios to /health/live: "
            + ", ".join(f"{k} {v:.3g}x" for k, v in ans["ratios"].items())
        )
    if ans.get("perCoreSecond"):
        print(
            "  per core-second of our processes at that step: "
            + ", ".join(f"{k} {v:g}" for k, v in ans["perCoreSecond"].items())
        )
    for r in summary.get("thresholds", []):
        v = "-" if r["value"] is None else f"{r['value']:.3f}"
        print(f"  threshold {r['metric']} {r['threshold']}: {v} {'ok' if r['ok'] else 'BREACHED'}")
    print(f"\nreport: {out / 'report.html'}\nsummary: {out / 'summary.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
