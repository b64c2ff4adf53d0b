"""The Locust suite keeps its rules: bounded spike shape, named and checked requests."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

LOAD = Path(__file__).resolve().parent.parent / "load"


# Importing locust monkey-patches sockets and threads (gevent) for the whole process, which
# would break every later test that runs a server in a thread; the shape is probed in a child.
_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import shapes
shape = shapes.SaleDaySpike()
out = []
for t in json.loads(sys.argv[2]):
    shape.get_run_time = lambda t=t: t
    out.append(shape.tick())
print(json.dumps(out))
"""


def test_spike_is_ten_times_within_five_seconds_held_a_minute_and_ends():
    env = {
        **os.environ,
        "ENGAGE_LOAD_BASE_USERS": "30",
        "ENGAGE_LOAD_SPIKE_FACTOR": "10",
        "ENGAGE_LOAD_WARMUP_S": "20",
        "ENGAGE_LOAD_SPIKE_RAMP_S": "5",
        "ENGAGE_LOAD_SPIKE_HOLD_S": "60",
        "ENGAGE_LOAD_COOLDOWN_S": "15",
    }
    times = [0, 19.9, 20, 84.9, 85, 100]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(LOAD), json.dumps(times)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ticks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ticks[0][0] == 30 and ticks[1][0] == 30  # warm-up at the base
    users, rate = ticks[2]
    assert users == 300 and (users - 30) / rate <= 5  # 10x, reached within 5 s
    assert ticks[3][0] == 300  # held for the minute
    assert ticks[4][0] == 30  # cool-down
    assert ticks[5] is None  # and the run ends by itself


def _client_calls(path: Path) -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get", "post", "put", "patch", "delete"}
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "client"
        ):
            calls.append(node)
    return calls


def test_every_request_is_named_and_checked():
    scenario_files = sorted((LOAD / "scenarios").glob("*.py"))
    calls = [(f, c) for f in scenario_files for c in _client_calls(f)]
    assert len(calls) >= 4
    for f, call in calls:
        kwargs = {k.arg: k.value for k in call.keywords}
        where = f"{f.name}:{call.lineno}"
        assert "name" in kwargs, f"{where}: give the request a name= (its route template)"
        catch = kwargs.get("catch_response")
        assert isinstance(catch, ast.Constant) and catch.value is True, f"{where}: catch_response"


def test_locustfile_only_imports_scenarios():
    tree = ast.parse((LOAD / "locustfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Expr | ast.Assign):
            continue  # the docstring and __all__
        assert isinstance(node, ast.ImportFrom) and node.module.startswith("scenarios."), node


def _scenario_files() -> list[Path]:
    return sorted((LOAD / "scenarios").glob("*.py"))


def test_templated_urls_are_named_by_their_template():
    # A name that is the URL itself would split the statistics per member, board or wheel.
    for f in _scenario_files():
        for call in _client_calls(f):
            url = call.args[0] if call.args else None
            name = {k.arg: k.value for k in call.keywords}.get("name")
            if isinstance(url, ast.JoinedStr):
                where = f"{f.name}:{call.lineno}"
                assert name is not None and ast.dump(name) != ast.dump(url), where
                texts = [n.value for n in ast.walk(name) if isinstance(n, ast.Constant)]
                assert any("{" in str(t) or "[" in str(t) for t in texts), f"{where}: template"


def _user_classes() -> set[str]:
    """Concrete Locust user classes of the scenario package (abstract bases left out)."""
    found = set()
    for f in _scenario_files():
        for node in ast.parse(f.read_text()).body:
            if not isinstance(node, ast.ClassDef) or not node.bases:
                continue
            abstract = any(
                isinstance(s, ast.Assign)
                and any(getattr(t, "id", None) == "abstract" for t in s.targets)
                for s in node.body
            )
            if not abstract and any(
                "User" in ast.unparse(b) or "Member" in ast.unparse(b) for b in node.bases
            ):
                found.add(node.name)
    return found


def _imported(path: Path) -> set[str]:
    return {
        a.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ImportFrom) and node.module.startswith("scenarios.")
        for a in node.names
    }


def test_every_scenario_is_wired_into_the_steady_run_and_the_spike():
    classes = _user_classes()
    assert {"MemberUser", "CheckinUser", "WheelUser", "BoardReader", "BrandBackend"} <= classes
    assert classes <= _imported(LOAD / "locustfile.py")
    assert classes <= _imported(LOAD / "spike.py")
    # Scenarios live in the package, one module per feature, not beside the entry points.
    assert not list(LOAD.glob("scenarios_*.py"))
