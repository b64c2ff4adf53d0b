"""Unit tests of pure pieces (no I/O): keys, settings, tokens, idempotency, client IP, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

import jwt
import pytest
from litestar import Request

from service.config import DEFAULT_TOKEN_SECRET, Settings, SettingsError, load_settings
from service.core import errors, idempotency
from service.core.auth import TokenService
from service.core.clock import FixedClock
from service.core.errors import CATALOGUE, DomainError, pick_language, register_codes
from service.core.http import client_ip
from service.core.keys import Keys
from service.features import all_features

T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
GOOD_SECRET = "x" * 40


# ---------------------------------------------------------------- keys


def hash_tag(key: str) -> str | None:
    """The part of a key Redis Cluster hashes (its rule: the first {...} with content)."""
    start = key.find("{")
    if start == -1:
        return None
    end = key.find("}", start + 1)
    if end == -1 or end == start + 1:
        return None
    return key[start + 1 : end]


@pytest.mark.parametrize("prefix", ["eng", "t1a2b3"])
def test_tenant_keys_carry_prefix_and_tenant_hash_tag(prefix):
    keys = Keys(prefix)
    tenant_key = keys.tenant(42, "checkin", "daily", 7)
    assert tenant_key == f"{prefix}:{{t42}}:checkin:daily:7"
    assert hash_tag(tenant_key) == "t42"
    # Two keys of one tenant share a slot, so one script may use both.
    assert hash_tag(keys.tenant(42, "a")) == hash_tag(keys.tenant(42, "b", 1))
    assert hash_tag(keys.tenant(42, "a")) != hash_tag(keys.tenant(43, "a"))

    board = keys.tagged(42, "lb:weekly", "2026-W48")
    assert board.startswith(f"{prefix}:")
    assert hash_tag(board) == "t42:lb:weekly"
    assert hash_tag(keys.tagged(42, "lb:weekly", "x")) == hash_tag(board)
    assert hash_tag(keys.tagged(43, "lb:weekly", "x")) != hash_tag(board)


def test_global_keys_carry_prefix_and_no_tenant():
    key = Keys("eng").global_("login", "wxabc", "deadbeef")
    assert key == "eng:g:login:wxabc:deadbeef"
    assert hash_tag(key) is None


def test_tenant_patterns_match_own_keys_only():
    keys = Keys("eng")
    mine = [keys.tenant(1, "a", "b"), keys.tagged(1, "lb:x", "p")]
    others = [keys.tenant(12, "a"), keys.tagged(12, "lb:x", "p"), keys.tenant(2, "a")]
    others += [Keys("other").tenant(1, "a"), keys.global_("t1")]
    patterns = keys.pattern_for_tenant(1)
    for k in mine:
        assert any(fnmatchcase(k, p) for p in patterns), k
        assert fnmatchcase(k, keys.pattern_all())
    for k in others:
        assert not any(fnmatchcase(k, p) for p in patterns), k


# ---------------------------------------------------------------- settings


def test_defaults_load_and_env_values_are_typed():
    s = load_settings({})
    assert s == Settings()
    s = load_settings(
        {
            "ENGAGE_PORT": "8311",
            "ENGAGE_DEV_LOGIN": "true",
            "ENGAGE_REDIS_TIMEOUT_S": "0.25",
            "UNRELATED": "ignored",
        }
    )
    assert (s.port, s.dev_login, s.redis_timeout_s) == (8311, True, 0.25)
    assert s.dev_login_enabled


@pytest.mark.parametrize(
    "secret", [None, "", DEFAULT_TOKEN_SECRET, "short-but-random-31-chars-xxxxx"]
)
def test_production_refuses_weak_token_secret(secret):
    env = {"ENGAGE_ENV": "production"}
    if secret is not None:
        env["ENGAGE_TOKEN_SECRET"] = secret
    with pytest.raises(SettingsError, match="ENGAGE_TOKEN_SECRET"):
        load_settings(env)


def test_production_accepts_long_secret_and_disables_dev_helpers():
    s = load_settings(
        {
            "ENGAGE_ENV": "production",
            "ENGAGE_TOKEN_SECRET": GOOD_SECRET,
            "ENGAGE_DEV_LOGIN": "true",
            "ENGAGE_DEV_CLOCK": "true",
        }
    )
    assert s.is_production
    assert s.dev_login and not s.dev_login_enabled
    assert s.dev_clock and not s.dev_clock_enabled


def test_empty_token_secret_is_refused_outside_production_too():
    with pytest.raises(SettingsError):
        load_settings({"ENGAGE_TOKEN_SECRET": ""})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENGAGE_PORT", "eighty"),
        ("ENGAGE_PORT", "0"),
        ("ENGAGE_PORT", "70000"),
        ("ENGAGE_ENV", "staging"),
        ("ENGAGE_DEV_LOGIN", "maybe"),
        ("ENGAGE_REDIS_PREFIX", "Bad:Prefix"),
        ("ENGAGE_ACCESS_TOKEN_TTL_S", "10"),
        ("ENGAGE_IDEMPOTENCY_TTL_H", "1"),
        ("ENGAGE_WECHAT_TIMEOUT_S", "0"),
        ("ENGAGE_LOG_FORMAT", "xml"),
    ],
)
def test_bad_values_raise_settings_error_naming_the_field(name, value):
    with pytest.raises(SettingsError) as info:
        load_settings({name: value})
    field = name.removeprefix("ENGAGE_").lower()
    assert field in str(info.value)


# ---------------------------------------------------------------- tokens


def _tokens(clock: FixedClock, secret: str = GOOD_SECRET) -> TokenService:
    return TokenService(secret, access_ttl=7200, refresh_ttl=30 * 86400, clock=clock)


def test_access_token_expires_by_the_injected_clock():
    clock = FixedClock(T0)
    svc = _tokens(clock)
    pair = svc.issue(7, 99)
    assert (pair.expires_in, pair.refresh_expires_in) == (7200, 30 * 86400)
    member = svc.verify(pair.access_token)
    assert (member.tenant_id, member.member_id) == (7, 99)
    clock.advance(seconds=7199)
    assert svc.verify(pair.access_token).member_id == 99
    clock.advance(seconds=1)
    with pytest.raises(DomainError) as info:
        svc.verify(pair.access_token)
    assert info.value.code == "TOKEN_EXPIRED" and info.value.status == 401
    # The refresh token outlives it, and is also judged by the injected clock.
    assert svc.verify(pair.refresh_token, typ="refresh").member_id == 99
    clock.advance(days=30)
    with pytest.raises(DomainError, match="TOKEN_EXPIRED"):
        svc.verify(pair.refresh_token, typ="refresh")


def test_wall_clock_does_not_decide_expiry():
    """Issued in 2001 by a pinned clock, the token is valid while that clock says so."""
    clock = FixedClock(datetime(2001, 1, 1, tzinfo=UTC))
    svc = _tokens(clock)
    assert svc.verify(svc.issue(1, 2).access_token).member_id == 2


def test_wrong_typ_is_invalid_both_ways():
    svc = _tokens(FixedClock(T0))
    pair = svc.issue(1, 2)
    for token, typ in [(pair.refresh_token, "access"), (pair.access_token, "refresh")]:
        with pytest.raises(DomainError) as info:
            svc.verify(token, typ=typ)
        assert info.value.code == "TOKEN_INVALID"


def test_forged_foreign_and_malformed_tokens_are_invalid():
    clock = FixedClock(T0)
    svc = _tokens(clock)
    claims = jwt.decode(svc.issue(1, 2).access_token, options={"verify_signature": False})
    now = int(T0.timestamp())
    bad = [
        _tokens(clock, "another-secret-of-forty-characters-xxxxx").issue(1, 2).access_token,
        jwt.encode(claims, key=None, algorithm="none"),
        jwt.encode({**claims, "iss": "someone-else"}, GOOD_SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "tid"}, GOOD_SECRET, "HS256"),
        jwt.encode({**claims, "sub": "not-a-number"}, GOOD_SECRET, algorithm="HS256"),
        jwt.encode({**claims, "exp": now + 60, "typ": "admin"}, GOOD_SECRET, "HS256"),
        "not.a.jwt",
        "",
    ]
    for token in bad:
        with pytest.raises(DomainError) as info:
            svc.verify(token)
        assert info.value.code == "TOKEN_INVALID", token


def test_tokens_differ_even_within_one_second():
    svc = _tokens(FixedClock(T0))
    assert svc.issue(1, 2).access_token != svc.issue(1, 2).access_token


# ---------------------------------------------------------------- idempotency


def test_fingerprint_depends_on_method_path_and_body_only():
    fp = idempotency.fingerprint("POST", "/v1/checkins/daily", b'{"a":1}')
    assert fp == idempotency.fingerprint("POST", "/v1/checkins/daily", b'{"a":1}')
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert fp != idempotency.fingerprint("PUT", "/v1/checkins/daily", b'{"a":1}')
    assert fp != idempotency.fingerprint("POST", "/v1/checkins/other", b'{"a":1}')
    assert fp != idempotency.fingerprint("POST", "/v1/checkins/daily", b'{"a":2}')
    # The separator keeps a path/body split from colliding with another split.
    assert idempotency.fingerprint("POST", "/a", b"b") != idempotency.fingerprint(
        "POST", "/ab", b""
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("abc-123", "abc-123"),
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("  padded  ", "padded"),
        ("k" * 255, "k" * 255),
    ],
)
def test_validate_key_accepts(raw, expected):
    assert idempotency.validate_key(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", '""', "k" * 256, "line\nbreak", "tab\there", "\x00"])
def test_validate_key_rejects(raw):
    with pytest.raises(DomainError) as info:
        idempotency.validate_key(raw)
    assert info.value.code == "VALIDATION_FAILED" and info.value.status == 422
    assert info.value.details["problems"][0]["source"] == "header"


# ---------------------------------------------------------------- client IP


def _request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    scope = {
        "type": "http",
        "client": (peer, 50000),
        "headers": headers,
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "state": {},
    }
    return Request(scope=scope)  # type: ignore[arg-type]


PROXIES = frozenset({"10.0.0.1", "10.0.0.2"})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # No trusted proxies: the socket peer, whatever the header claims.
        ("203.0.113.9", "1.1.1.1", frozenset(), "203.0.113.9"),
        # An untrusted peer cannot spoof its address with the header.
        ("203.0.113.9", "1.1.1.1", PROXIES, "203.0.113.9"),
        # A trusted proxy: the right-most address that is not a trusted proxy.
        ("10.0.0.1", "198.51.100.7", PROXIES, "198.51.100.7"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", PROXIES, "198.51.100.7"),
        # IPv6 is normalised so one client has one bucket.
        ("10.0.0.1", "2001:DB8:0:0::1", PROXIES, "2001:db8::1"),
        # A trusted proxy without the header, or with garbage last: the proxy itself.
        ("10.0.0.1", None, PROXIES, "10.0.0.1"),
        ("10.0.0.1", "1.1.1.1, not-an-ip", PROXIES, "10.0.0.1"),
    ],
)
def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies(
    peer, forwarded, trusted, expected
):
    assert client_ip(_request(peer, forwarded), trusted) == expected


# ---------------------------------------------------------------- errors


def test_every_code_has_a_status_and_both_messages():
    all_features()  # features register their codes at import time
    assert len(CATALOGUE) >= 20
    for code, (status, zh, en) in CATALOGUE.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", code), code
        assert 400 <= status <= 599, code
        assert re.search(r"[\u4e00-\u9fff]", zh), f"{code}: the Chinese message has no Chinese"
        assert en and en.isascii() and en[0].isupper(), code
        err = DomainError(code)
        assert err.status == status
        assert err.localized_message("zh") == zh and err.localized_message("en") == en


def test_codes_the_client_api_promises_exist_with_their_status():
    expected = {
        "TOKEN_EXPIRED": 401,
        "TOKEN_INVALID": 401,
        "IDEMPOTENCY_KEY_REUSED": 422,
        "IDEMPOTENCY_IN_FLIGHT": 409,
        "RATE_LIMITED": 429,
        "DEPENDENCY_UNAVAILABLE": 503,
        "INTERNAL_ERROR": 500,
        "NOT_FOUND": 404,
        "VALIDATION_FAILED": 422,
    }
    assert {c: CATALOGUE[c][0] for c in expected} == expected


def test_unknown_code_and_conflicting_registration_are_refused():
    with pytest.raises(KeyError):
        DomainError("NO_SUCH_CODE")
    existing = "NOT_FOUND"
    register_codes({existing: CATALOGUE[existing]})  # the same definition again is fine
    with pytest.raises(ValueError, match="twice"):
        register_codes({existing: (410, "不同", "Different.")})


def test_dependency_errors_always_say_when_to_retry():
    assert errors.DependencyUnavailable().headers == {"Retry-After": "1"}
    assert errors.DependencyUnavailable(headers={"Retry-After": "5"}).headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("header", "lang"),
    [(None, "zh"), ("", "zh"), ("en-US,en;q=0.9", "en"), ("EN", "en"), ("zh-CN,en;q=0.5", "zh")],
)
def test_pick_language(header, lang):
    assert pick_language(header) == lang


def test_access_token_is_valid_until_its_last_microsecond():
    clock = FixedClock(T0)
    svc = _tokens(clock)
    token = svc.issue(1, 2).access_token
    clock.set(T0 + timedelta(hours=2) - timedelta(microseconds=1))
    assert svc.verify(token).member_id == 2


def test_database_conflicts_and_bad_values_get_the_right_answers():
    """A deadlock is retryable (409 CONFLICT, Retry-After); an out-of-range value is not (422);
    neither is a 500 or a 503."""
    import asyncpg
    import msgspec
    from litestar.testing import RequestFactory

    from service.core.http import exception_to_response

    request = RequestFactory().get("/v1/me")
    request.scope["state"] = {"request_id": "r1"}
    r = exception_to_response(request, asyncpg.DeadlockDetectedError("deadlock detected"))
    assert r.status_code == 409 and dict(r.headers).get("Retry-After") == "1"
    assert msgspec.json.decode(r.content)["error"]["code"] == "CONFLICT"
    r = exception_to_response(request, asyncpg.exceptions._base.DataError("out of range"))
    assert r.status_code == 422
    assert msgspec.json.decode(r.content)["error"]["code"] == "VALIDATION_FAILED"
