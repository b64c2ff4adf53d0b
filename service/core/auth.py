"""Member tokens: short-lived signed JWTs (PyJWT, HS256) checked against the injected clock."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import jwt

from service.core.clock import Clock
from service.core.errors import DomainError

ISSUER = "engage"


@dataclass(frozen=True, slots=True)
class Member:
    """The caller of a client API route."""

    tenant_id: int
    member_id: int


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class TokenService:
    def __init__(self, secret: str, access_ttl: int, refresh_ttl: int, clock: Clock) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock

    def _encode(self, tenant_id: int, member_id: int, typ: str, ttl: int) -> str:
        now = int(self._clock.now().timestamp())
        claims = {
            "iss": ISSUER,
            "sub": str(member_id),
            "tid": tenant_id,
            "typ": typ,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def issue(self, tenant_id: int, member_id: int) -> TokenPair:
        return TokenPair(
            self._encode(tenant_id, member_id, "access", self.access_ttl),
            self.access_ttl,
            self._encode(tenant_id, member_id, "refresh", self.refresh_ttl),
            self.refresh_ttl,
        )

    def verify(self, token: str, typ: str = "access") -> Member:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                # Expiry is checked below against the injected clock, not the wall clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "sub", "tid", "typ", "iss"],
                },
            )
        except jwt.InvalidTokenError as exc:
            raise DomainError("TOKEN_INVALID") from exc
        if claims.get("typ") != typ:
            raise DomainError("TOKEN_INVALID")
        if not isinstance(claims["exp"], int) or claims["exp"] <= self._clock.now().timestamp():
            raise DomainError("TOKEN_EXPIRED")
        try:
            return Member(int(claims["tid"]), int(claims["sub"]))
        except (TypeError, ValueError) as exc:
            raise DomainError("TOKEN_INVALID") from exc
