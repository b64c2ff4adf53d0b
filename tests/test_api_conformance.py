"""A bounded schemathesis run over both APIs: the OpenAPI document is what the service does.

Every operation of the exported document gets generated requests (valid and invalid ones), sent
with a member token (``/v1``) or an operator key (``/admin/v1``) of a seeded tenant: a wheel,
a check-in campaign, a challenge, a board with its red/black list, a rule, a member with points
and a won prize, so that half of the requests name keys that exist and reach real code paths.
Each answer must be no server error, a documented status, match the documented body schema,
content type and headers. The run is bounded (a fixed number of examples per operation, no
shrinking, derandomized), valid and invalid requests alike: about a minute on a 2-core box.

schemathesis generates and validates; the requests go through the suite's in-process client so
the app keeps its one event loop and its pools.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_challenges_api import put_challenge
from tests.test_checkins_api import put_campaign
from tests.test_events import ORDER_RULE, put_rule
from tests.test_leaderboards import put_board
from tests.wheel_helpers import prize, put_wheel, wheel_config

pytestmark = pytest.mark.asyncio

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
# The keys the seeded tenant has, by path parameter name.
REAL = {
    "wheelKey": "wheel",
    "campaignKey": "daily",
    "boardKey": "pts",
    "externalId": "u1",
    "prizeKey": "pts",
}
# `key` depends on the resource the path names.
KEY_BY_PREFIX = {
    "/admin/v1/wheels/": "wheel",
    "/admin/v1/checkin-campaigns/": "daily",
    "/admin/v1/challenges/": "c3",
    "/v1/challenges/": "c3",
    "/admin/v1/leaderboards/": "pts",
    "/admin/v1/red-black/": "rb",
    "/admin/v1/rules/": "orders",
}


async def _seed(client: Any, tenant: Any) -> dict[str, Any]:
    await put_wheel(
        client,
        tenant,
        "wheel",
        wheel_config([prize("pts", "points", 50, value=10), prize("thanks", "nothing", 50)]),
    )
    await put_campaign(client, tenant)
    await put_challenge(client, tenant)
    await put_board(client, tenant, "pts", period="allTime", title="积分榜")
    r = await client.put(
        "/admin/v1/red-black/rb",
        json={"boardKey": "pts", "redSize": 2, "blackSize": 1, "blackEnabled": True},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    await put_rule(client, tenant, "orders", ORDER_RULE)
    member_id, member = await tenant.member("u1")
    r = await client.post(
        "/admin/v1/members/u1/points",
        json={"currency": "points", "amount": 500, "reason": "seed"},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    r = await client.post("/v1/wheels/wheel/spins", headers=member)
    assert r.status_code == 200, r.text
    await tenant.member("u2")
    return {"member": member, "operator": tenant.admin, "member_id": member_id}


def _real_path(path: str, params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for name in params:
        if name in REAL:
            out[name] = REAL[name]
        elif name == "key":
            for prefix, key in KEY_BY_PREFIX.items():
                if path.startswith(prefix):
                    out[name] = key
    return out


def _header_bytes(value: Any) -> bytes:
    """Header values as bytes on the wire (generated ones may hold any character)."""
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _run_operation(
    operation: Any,
    loop: asyncio.AbstractEventLoop,
    client: Any,
    auth: dict[str, Any],
    statuses: list[int],
) -> None:
    path = operation.path
    headers = auth["operator"] if path.startswith("/admin/") else auth["member"]

    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=cases, real=st.booleans())
    def check(case: Any, real: bool) -> None:
        if real and case.path_parameters:
            case.path_parameters = _real_path(path, case.path_parameters)
        # Generated credentials are never valid: every request carries the seeded ones.
        sent = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        sent.update(headers)
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=sent)
        request: dict[str, Any] = {
            "method": kwargs["method"],
            "url": kwargs["url"],
            "headers": {k: _header_bytes(v) for k, v in (kwargs.get("headers") or {}).items()},
            "params": kwargs.get("params"),
            "cookies": kwargs.get("cookies"),
        }
        if kwargs.get("json") is not None:
            request["json"] = kwargs["json"]
        elif kwargs.get("data") is not None:
            request["content"] = kwargs["data"]
        response = asyncio.run_coroutine_threadsafe(client.request(**request), loop).result()
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    check()


# Every operation's examples in one test: ~3.5 minutes alone on a 2-core box whose load average
# is 8-10 (other suites), so the suite's 300 s per test judged the box, not the API.
@pytest.mark.timeout(1200)
async def test_both_apis_conform_to_the_openapi_document(app, client, tenant, ctx):
    auth = await _seed(client, tenant)
    schema = schemathesis.openapi.from_dict(app.openapi_schema.to_schema())
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    statuses: list[int] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        if operation.path in ("/metrics",) or operation.path.startswith("/health"):
            continue
        try:
            await asyncio.to_thread(_run_operation, operation, loop, client, auth, statuses)
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
    # The run reached the routes' code: many requests, and plenty of them succeeded.
    assert len(statuses) > 15 * len(operations)
    assert sum(1 for s in statuses if s < 300) > 2 * len(operations)
    assert all(s < 500 for s in statuses)
