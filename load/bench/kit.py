"""Drivers of the benchmark: an `engage serve` subprocess, wrk (or a Python keep-alive driver
when wrk is missing) and pgbench. Everything targets loopback and stops by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """ENGAGE_BENCH_PORT when set (a shared box hands out port ranges), else a free one."""
    if os.environ.get("ENGAGE_BENCH_PORT"):
        return int(os.environ["ENGAGE_BENCH_PORT"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    env: dict[str, str], workers: int, port: int | None = None, ready_seconds: int = 90
) -> Iterator[str]:
    """`engage serve` on a loopback port (a free one unless given); yields its base URL once
    /health/ready answers (within ``ready_seconds``), stops its process group after."""
    port = port or free_port()
    workers_arg = ["--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *workers_arg],
        env={**os.environ, **env, "ENGAGE_LOG_LEVEL": "warning"},
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"server exited: {err}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(base + "/health/ready", timeout=1) as r,
            ):
                if r.status == 200:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"server did not become ready in {ready_seconds} s")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Load:
    """What one HTTP load run measured."""

    rate: float = 0.0  # requests/s, every status
    requests: int = 0
    ok: int = 0  # 2xx
    status_5xx: int = 0
    status_other: int = 0  # 3xx/4xx
    socket_errors: int = 0
    consumed: int = 0  # tokens the run went through (the highest index used + 1)
    p99_ms: float = 0.0
    seconds: float = 0.0
    driver: str = ""
    latencies: list[float] = field(default_factory=list, repr=False)


@dataclass
class Request:
    """What the driver sends: ``path`` and ``body`` may contain ``{n}`` (a number unique in
    the run), ``{r}`` (1 + that number % ``modulus``) and ``{i}`` (the index into ``tokens``,
    cycling); ``tokens`` are Bearer tokens, each used once while there are enough (a fresh
    member per request)."""

    method: str
    path: str
    tokens: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    modulus: int = 1  # {r} is 1 + (a number unique in the run) % modulus


# Each wrk thread takes every n-th token of the file, so no two requests share a token while
# there are enough; {n} and {i} are filled per request; statuses are counted per thread.
_WRK_LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  tokens = {}
  local n = tonumber(args[2])
  local i = 0
  if args[1] ~= "-" then
    for line in io.lines(args[1]) do
      if i % n == tid then tokens[#tokens + 1] = line end
      i = i + 1
    end
  end
  nthreads = n
  counter = 0
  s5 = 0
  sother = 0
  method = METHOD
  path = PATH
  body = BODY
  headers = HEADERS
  modulus = MODULUS
end
function request()
  counter = counter + 1
  local u = counter * nthreads + tid
  local unique = tostring(u)
  local r = tostring(u % modulus + 1)
  local idx = "0"
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  if #tokens > 0 then
    local j = ((counter - 1) % #tokens) + 1
    h["Authorization"] = "Bearer " .. tokens[j]
    idx = tostring((j - 1) * nthreads + tid)
  end
  local p = path:gsub("{n}", unique):gsub("{i}", idx):gsub("{r}", r)
  local b = nil
  if body ~= "" then b = body:gsub("{n}", unique):gsub("{i}", idx):gsub("{r}", r) end
  return wrk.format(method, p, h, b)
end
function response(status, headers, body)
  if status >= 500 then s5 = s5 + 1 elseif status >= 300 then sother = sother + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s5")
    b = b + t:get("sother")
    c = math.max(c, t:get("counter"))
  end
  io.write(string.format("STATUS5XX %d\nSTATUSOTHER %d\nCONSUMED %d\n", a, b, c * #threads))
  io.write(string.format("P99US %d\n", latency:percentile(99)))
end
"""


def _lua_string(s: str) -> str:
    return "[==[" + s + "]==]"


def _wrk(base: str, req: Request, seconds: float, connections: int, threads: int) -> Load:
    with tempfile.TemporaryDirectory(prefix="engage-bench-") as tmp:
        lua = _WRK_LUA.replace("METHOD", _lua_string(req.method))
        lua = lua.replace("PATH", _lua_string(req.path)).replace("BODY", _lua_string(req.body))
        heads = ", ".join(
            f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in req.headers.items()
        )
        lua = lua.replace("HEADERS", "{" + heads + "}").replace("MODULUS", str(req.modulus))
        script = Path(tmp) / "s.lua"
        script.write_text(lua)
        tokens = "-"
        if req.tokens:
            tokens = str(Path(tmp) / "tokens.txt")
            Path(tokens).write_text("\n".join(req.tokens) + "\n")
        threads = max(1, min(threads, connections))
        done = subprocess.run(
            [
                *("wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"),
                *("--timeout", "10s", "-s", str(script), base, "--", tokens, str(threads)),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    out = done.stdout
    if "CONSUMED" not in out:  # wrk runs its default request when the script fails
        raise RuntimeError(f"wrk script failed: {done.stderr[-1000:]}")

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    requests = int(num(r"(\d+) requests in"))
    s5, other = int(num(r"STATUS5XX (\d+)")), int(num(r"STATUSOTHER (\d+)"))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Load(
        rate=num(r"Requests/sec:\s+([\d.]+)"),
        requests=requests,
        ok=requests - s5 - other,
        status_5xx=s5,
        status_other=other,
        socket_errors=errors,
        consumed=int(num(r"CONSUMED (\d+)")),
        p99_ms=num(r"P99US (\d+)") / 1000,
        seconds=seconds,
        driver="wrk",
    )


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> int:
    """Send one HTTP/1.1 request on a keep-alive connection, read its whole answer (head and
    a Content-Length body); returns the status."""
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if m:
        await reader.readexactly(int(m.group(1)))
    return int(head[9:12])


def _python(base: str, req: Request, seconds: float, connections: int) -> Load:
    """Closed loop over raw keep-alive sockets in this process (one core): a fallback."""
    host, port = base.removeprefix("http://").split(":")
    res = Load(driver="python")
    counter = [0]

    def payload(n: int) -> bytes:
        i = n % len(req.tokens) if req.tokens else 0
        r = str(n % req.modulus + 1)
        path = req.path.replace("{n}", str(n)).replace("{i}", str(i)).replace("{r}", r)
        body = req.body.replace("{n}", str(n)).replace("{i}", str(i)).replace("{r}", r).encode()
        heads = {"Host": "127.0.0.1", **req.headers}
        if req.tokens:
            heads["Authorization"] = f"Bearer {req.tokens[i]}"
        if body or req.method in ("POST", "PUT", "PATCH"):
            heads["Content-Length"] = str(len(body))
        lines = [f"{req.method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in heads.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def worker(stop_at: float) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < stop_at:
                counter[0] += 1
                t0 = time.perf_counter()
                status = await exchange(reader, writer, payload(counter[0]))
                res.latencies.append(time.perf_counter() - t0)
                res.requests += 1
                if status >= 500:
                    res.status_5xx += 1
                elif status >= 300:
                    res.status_other += 1
                else:
                    res.ok += 1
        except (OSError, asyncio.IncompleteReadError):
            res.socket_errors += 1
        finally:
            writer.close()

    async def go() -> None:
        t0 = time.monotonic()
        await asyncio.gather(*[worker(t0 + seconds) for _ in range(connections)])
        res.seconds = time.monotonic() - t0

    asyncio.run(go())
    res.rate = res.requests / res.seconds if res.seconds else 0.0
    res.consumed = counter[0] + 1
    xs = sorted(res.latencies)
    res.p99_ms = xs[min(len(xs) - 1, int(0.99 * len(xs)))] * 1000 if xs else 0.0
    return res


def http_load(
    base: str, req: Request, seconds: float, connections: int, driver: str = "auto"
) -> Load:
    """Closed-loop load for ``seconds`` over ``connections`` keep-alive connections."""
    if driver == "wrk" or (driver == "auto" and shutil.which("wrk")):
        return _wrk(base, req, seconds, connections, threads=2)
    return _python(base, req, seconds, connections)


def pgbench(database_url: str, script: str, seconds: float, clients: int) -> float:
    """TPS of pgbench running ``script`` (prepared protocol, like asyncpg) for ``seconds``.
    Each client starts with ``i`` = 0 and knows ``nclients`` (see capture.Fresh.pool)."""
    from service.core.embedded import pg_binary

    binary = pg_binary("pgbench") or shutil.which("pgbench")
    if binary is None:
        raise RuntimeError("pgbench not found (apt-get install postgresql-client)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            [
                *(binary, "-n", "-M", "prepared", "-f", path, "-T", str(max(1, round(seconds)))),
                *("-c", str(clients), "-j", "2", "-D", "i=0", "-D", f"nclients={clients}"),
                database_url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(path)
    m = re.search(r"tps = ([\d.]+) \((?:without|excluding)", out.stdout)
    if not m or out.returncode != 0 or "aborted" in out.stderr:
        raise RuntimeError(f"pgbench failed: {out.stdout[-800:]}{out.stderr[-1500:]}")
    return float(m.group(1))
