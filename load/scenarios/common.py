"""What every scenario shares: the seed, the loopback guard, and checking one answer."""

from __future__ import annotations

import ipaddress
import itertools
import socket
import threading
from urllib.parse import urlsplit

from config import CONFIG
from locust import events
from locust.env import Environment

_seed: dict | None = None
_lock = threading.Lock()
_members = itertools.count()


def seed() -> dict:
    global _seed
    with _lock:
        if _seed is None:
            _seed = CONFIG.seed()
        return _seed


def next_member() -> dict:
    """Simulated users take seeded members in turn, so each user is a different member."""
    members = seed()["members"]
    return members[next(_members) % len(members)]


def error_code(resp) -> str:  # type: ignore[no-untyped-def]
    """The stable error code of a failed answer, for the failure statistics."""
    try:
        return str(resp.json()["error"]["code"])
    except Exception:
        return "NO_ERROR_BODY"


def fail_unless_ok(resp) -> dict | None:  # type: ignore[no-untyped-def]
    """The JSON body of a 200; anything else is marked failed as `<status> <error code>`."""
    if resp.status_code != 200:
        resp.failure(f"{resp.status_code} {error_code(resp)}")
        return None
    try:
        return resp.json()  # type: ignore[no-any-return]
    except Exception:
        resp.failure(f"200 without a JSON body: {resp.text[:100]!r}")
        return None


def count_as(resp, name: str) -> None:  # type: ignore[no-untyped-def]
    """Report this request under another name (read when the context manager exits).

    An expected business answer (a 409 from a used-up wheel) is known only from the response,
    so it is renamed here rather than given its own name up front; this keeps it out of the
    200s' latency figures without counting it as a failure.
    """
    resp.request_meta["name"] = name


def _is_loopback(host: str) -> bool:
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


@events.test_start.add_listener
def _refuse_remote_targets(environment: Environment, **_: object) -> None:
    """A load test is an attack on whatever it points at: loopback only unless told otherwise."""
    host = urlsplit(environment.host or "").hostname or ""
    if not CONFIG.allow_remote and not _is_loopback(host):
        raise SystemExit(
            f"refusing to load-test {environment.host!r}: not a loopback address. "
            "Set ENGAGE_LOAD_ALLOW_REMOTE=1 only for a staging copy you are allowed to load."
        )
