"""Benchmark tooling shared by `engage bench ...`: a server subprocess, a keep-alive HTTP load
driver, pgbench, and the ratio report. Everything targets loopback and stops by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from load.bench import kit
from service.core.embedded import pg_binary


@contextlib.contextmanager
def server(env: dict[str, str], workers: int = 2, port: int | None = None) -> Iterator[str]:
    """Run `engage serve` on a loopback port (a free one unless given); yields its base URL,
    stops it after (see kit.server)."""
    with kit.server(env, workers, port=port, ready_seconds=60) as base:
        yield base


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


RequestFn = Callable[[int], bytes]


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _worker(
    host: str, port: int, make: RequestFn, stop_at: float, res: LoadResult, counter: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            counter[0] += 1
            payload = make(counter[0])
            t0 = time.perf_counter()
            status = await kit.exchange(reader, writer, payload)
            res.latencies.append(time.perf_counter() - t0)
            res.requests += 1
            res.statuses[status] = res.statuses.get(status, 0) + 1
            if status >= 400:
                res.errors += 1
    except (OSError, asyncio.IncompleteReadError):
        res.errors += 1
    finally:
        writer.close()


def http_load(base: str, make: RequestFn, seconds: float, connections: int) -> LoadResult:
    """Closed-loop load: `connections` keep-alive connections, each sending as fast as the
    server answers, for `seconds`. Runs in this process (one core)."""
    host, port = base.removeprefix("http://").split(":")
    res = LoadResult()

    async def go() -> None:
        counter = [0]
        stop_at = time.monotonic() + seconds
        t0 = time.monotonic()
        await asyncio.gather(
            *[_worker(host, int(port), make, stop_at, res, counter) for _ in range(connections)]
        )
        res.seconds = time.monotonic() - t0

    asyncio.run(go())
    return res


def pgbench(
    database_url: str,
    script: str,
    seconds: int,
    clients: int,
    variables: dict[str, str] | None = None,
) -> float:
    """TPS of pgbench running `script` against the same database. Simple protocol: pgbench
    cannot prepare statements whose parameter types it has to infer from string concatenation."""
    binary = pg_binary("pgbench")
    if binary is None:
        raise RuntimeError("pgbench not found (apt-get install postgresql-client)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    cmd = [
        binary,
        "-n",
        "-f",
        path,
        "-T",
        str(seconds),
        "-c",
        str(clients),
        "-j",
        "2",
        "-M",
        "simple",
    ]
    for k, v in (variables or {}).items():
        cmd += ["-D", f"{k}={v}"]
    cmd.append(database_url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    os.unlink(path)
    m = re.search(r"tps = ([\d.]+) \((?:without|excluding)", out.stdout)
    if not m:
        raise RuntimeError(f"pgbench failed: {out.stdout[-500:]}{out.stderr[-1500:]}")
    return float(m.group(1))


def report(rows: list[tuple[str, float, str, float]]) -> str:
    """rows: (what, rate, reference name, reference rate) -> a table with ratios."""
    lines = [f"{'measure':44} {'rate/s':>10}   {'reference':28} {'ref/s':>10} {'ratio':>7}"]
    for what, rate, ref, ref_rate in rows:
        ratio = rate / ref_rate if ref_rate else 0.0
        lines.append(f"{what:44} {rate:10.0f}   {ref:28} {ref_rate:10.0f} {ratio:7.2f}x")
    return "\n".join(lines)
