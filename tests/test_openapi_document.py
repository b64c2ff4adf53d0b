"""The exported OpenAPI document describes the real answers (issue 9, item 3)."""

from __future__ import annotations

import json
from pathlib import Path

from litestar import get
from litestar.openapi.spec import Schema

from service.core import apidoc
from service.core.errors import CATALOGUE
from service.features import all_features

ROOT = Path(__file__).resolve().parent.parent
DOC = json.loads((ROOT / "frontend-api-spec" / "openapi.json").read_text())
METHODS = ("get", "post", "put", "patch", "delete")


def operations():
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", path, op


def test_every_error_answer_is_the_one_error_shape_with_its_codes():
    all_features()
    error = DOC["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    assert set(error["properties"]["error"]["properties"]["code"]["enum"]) == set(CATALOGUE)
    for name, path, op in operations():
        if path in ("/metrics", "/health/live"):
            continue
        errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        assert errors, f"{name} documents no error answer"
        for status, resp in errors.items():
            media = resp["content"]["application/json"]
            schema = media["schema"]
            # never the framework's default {status_code, detail, extra} body
            assert "status_code" not in json.dumps(schema), f"{name} {status}"
            assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorResponse"}
            codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
            assert codes and all(CATALOGUE[c][0] == int(status) for c in codes), (name, status)
            assert resp["headers"]["X-Request-Id"] == {"$ref": "#/components/headers/X-Request-Id"}
            if status in ("429", "503"):
                assert "Retry-After" in resp["headers"]


def test_routes_of_each_kind_document_their_common_answers():
    for name, path, op in operations():
        if path in ("/metrics", "/health/live"):
            continue
        statuses = set(op["responses"])
        codes = {
            c
            for s, r in op["responses"].items()
            if s[0] in "45"
            for c in r["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"][
                "properties"
            ]["code"]["enum"]
        }
        assert "503" in statuses, name
        params = {p.get("$ref", "").rsplit("/", 1)[-1] for p in op.get("parameters", [])}
        assert {"XRequestId", "AcceptLanguage"} <= params, name
        if path.startswith("/v1/") and not path.startswith("/v1/auth/"):
            assert {"TOKEN_EXPIRED", "TOKEN_INVALID", "UNAUTHENTICATED", "RATE_LIMITED"} <= codes
        if path.startswith("/admin/v1/"):
            assert {"API_KEY_INVALID", "FORBIDDEN_SCOPE"} <= codes, name
        if "requestBody" in op:
            assert {"MALFORMED_REQUEST", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"} <= codes
        if "IdempotencyKey" in params:
            assert {"IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_IN_FLIGHT"} <= codes, name
            assert "Idempotent-Replayed" in op["responses"]["200"]["headers"], name


def test_value_granting_routes_declare_the_idempotency_key():
    for name in (
        "POST /v1/wheels/{wheelKey}/spins",
        "POST /v1/checkins/{campaignKey}",
        "POST /v1/checkins/{campaignKey}/makeups",
        "POST /v1/challenges/{key}/entries",
        "POST /admin/v1/members/{externalId}/points",
        "POST /admin/v1/events",
    ):
        method, path = name.split(" ")
        params = DOC["paths"][path][method.lower()]["parameters"]
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in params, name


def test_metrics_are_prometheus_text_and_pages_show_their_limits():
    metrics = DOC["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    limits = [
        (name, p)
        for name, _, op in operations()
        for p in op.get("parameters", [])
        if p.get("name") == "limit"
    ]
    assert len(limits) >= 5
    for name, p in limits:
        assert p["schema"].get("maximum") and p["schema"].get("minimum"), name


def test_an_undeclared_error_answer_is_caught():
    @get("/probe/{key:str}", opt={"scope": "config"}, sync_to_thread=False)
    def probe(key: str) -> None:
        return None

    apidoc.errors("WHEEL_NOT_FOUND")(probe)
    scope = {"route_handler": probe, "method": "GET", "path_template": "/probe/{key}"}
    before = set(apidoc.UNDOCUMENTED)
    apidoc.note_answer(scope, 404, "WHEEL_NOT_FOUND")  # declared
    # it has a path parameter
    apidoc.note_answer(scope, CATALOGUE["VALIDATION_FAILED"][0], "VALIDATION_FAILED")
    assert before == apidoc.UNDOCUMENTED
    apidoc.note_answer(scope, 404, "PRIZE_NOT_FOUND")
    caught = apidoc.UNDOCUMENTED - before
    apidoc.UNDOCUMENTED.difference_update(caught)  # the suite-wide check must stay green
    assert caught == {("GET", "/probe/{key}", 404, "PRIZE_NOT_FOUND")}
    assert isinstance(apidoc._error_schema(), Schema)
