"""`python -m load.capacity` (or `engage capacity`): a ramp to saturation, and the answer.

    uv run python -m load.capacity --url http://127.0.0.1:8100 \
        --thresholds load/capacity/thresholds.json

Runs Locust headless as a subprocess (`--processes N` for N worker processes under one master)
with the users of load/capacity/locustfile.py stepping up, samples the server (CPU per
process group, /metrics), then prints the capacity answer in words and numbers and writes
<out>/report.html (plots), <out>/summary.json and Locust's CSVs. Exit status 1 when a
threshold is breached or no step held. Seed first with load/seed.py (see load/README.md).
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
        required=True,
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
    p.add_argument("--thresholds", help="k6-style thresholds file (JSON); see analyse.py")
    p.add_argument("--out", help="output folder (default load/out/capacity-<run>)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    plan = {
        "url": args.url.rstrip("/"),
        "seed": str(Path(args.seed).resolve()),
        "out": str(out),
        "run": run,
        "steps": [int(x) for x in args.steps.split(",")],
        "step_s": args.step_s,
        "p99_ms": args.p99_ms,
        "mix": mix,
        "processes": args.processes,
    }
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--host",
        plan["url"],
        "--csv",
        str(out / "locust"),
        "--loglevel",
        "WARNING",
        "--only-summary",
    ]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    env = {**os.environ, "ENGAGE_CAPACITY_PLAN": str(out / "plan.json")}
    budget = len(plan["steps"]) * args.step_s + 90
    print(
        f"capacity run {run}: {plan['steps']} users x {args.step_s} s on {plan['url']} "
        f"({args.processes} Locust process(es)); output in {out}",
        flush=True,
    )
    sampler = Sampler(plan["url"])
    sampler.start()
    try:
        with (out / "locust.log").open("w") as log:
            subprocess.run(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=budget,
                check=False,
            )
    finally:
        sampler.stop()
    rows = analyse.load_requests(out)
    if not rows:
        print(f"no request was made; see {out / 'locust.log'}")
        return 1
    t0 = rows[0][0]
    steps = analyse.steps_of(rows, plan, t0, sampler.samples)
    ans = analyse.answer(steps, plan, args.processes)
    summary = {
        "run": run,
        "plan": plan,
        "answer": ans,
        "steps": [{k: v for k, v in vars(s).items() if k != "latencies"} for s in steps],
    }
    ok = ans["held"]
    if args.thresholds:
        results = analyse.check_thresholds(json.loads(Path(args.thresholds).read_text()), steps)
        summary["thresholds"] = results
        ok = ok and all(r["ok"] for r in results)
    summary["passed"] = ok
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    report.write(
        out / "report.html", summary, steps, report.plots(rows, steps, sampler.samples, t0)
    )
    print()
    for s in steps:
        print(
            f"  step {s.index}: {s.users:4d} users  {s.rps:7.0f} req/s  p50 {s.p50:6.1f}  "
            f"p95 {s.p95:6.1f}  p99 {s.p99:7.1f} ms  5xx {s.server_errors}  "
            f"{'held' if s.held else 'did not hold'}"
        )
    print(f"\n{ans['words']}")
    for r in summary.get("thresholds", []):
        v = "-" if r["value"] is None else f"{r['value']:.3f}"
        print(f"  threshold {r['metric']} {r['threshold']}: {v} {'ok' if r['ok'] else 'BREACHED'}")
    print(f"\nreport: {out / 'report.html'}\nsummary: {out / 'summary.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
