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
        self._verified: dict[tuple[str, str], tuple[Member, int]] = {}

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
        """The member a token names; TOKEN_EXPIRED or TOKEN_INVALID otherwise.

        Verified tokens are remembered (bounded) with their expiry, so a member's burst of calls
        pays the HMAC and JSON decoding once; expiry is still checked on every call.
        """
        cached = self._verified.get((token, typ))
        if cached is not None:
            if cached[1] <= self._clock.now().timestamp():
                raise DomainError("TOKEN_EXPIRED")
            return cached[0]
        member, exp = self._verify(token, typ)
        if len(self._verified) >= 50_000:
            self._verified.clear()
        self._verified[(token, typ)] = (member, exp)
        return member

    def _verify(self, token: str, typ: str) -> tuple[Member, int]:
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
            return Member(int(claims["tid"]), int(claims["sub"])), claims["exp"]
        except (TypeError, ValueError) as exc:
            raise DomainError("TOKEN_INVALID") from exc
