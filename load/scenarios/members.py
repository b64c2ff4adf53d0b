"""Members: log in (mini-program dev login or H5 token minting), then look at the profile."""

from __future__ import annotations

from config import CONFIG
from locust import FastHttpUser, between, task

from scenarios.common import error_code, next_member, seed


class SignedInMember(FastHttpUser):
    """A seeded member with a token; the sale-day scenarios play one each."""

    abstract = True
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.member = next_member()
        self.auth: dict[str, str] = {}
        self.login()

    def signed_in(self) -> bool:
        """Log in again after a failed login or a 401, so one error does not end the user."""
        if not self.auth:
            self.login()
        return bool(self.auth)

    def login(self) -> None:
        s = seed()
        if CONFIG.login == "h5":
            # The brand's back end minting a token for its H5 page.
            ctx = self.client.post(
                f"/admin/v1/members/{self.member['externalId']}/token",
                headers={"Authorization": f"Bearer {s['apiKey']}"},
                name="/admin/v1/members/{externalId}/token",
                catch_response=True,
            )
        else:
            ctx = self.client.post(
                "/v1/auth/wechat",
                json={"appId": s["appId"], "code": f"dev:{self.member['openid']}"},
                name="/v1/auth/wechat",
                catch_response=True,
            )
        with ctx as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code} {error_code(resp)}")
                return
            body = resp.json()
            if not body.get("accessToken") or body["member"]["id"] != self.member["memberId"]:
                resp.failure("login answered another member or no token")
                return
            self.auth = {"Authorization": f"Bearer {body['accessToken']}"}

    def on_unauthorized(self, resp) -> None:  # type: ignore[no-untyped-def]
        if resp.status_code == 401:
            self.auth = {}


class MemberUser(SignedInMember):
    """A member opening the mini-program: logs in once, then reads /v1/me now and then."""

    weight = 4

    @task(1)
    def relogin(self) -> None:
        self.login()

    @task(10)
    def me(self) -> None:
        if not self.signed_in():
            return
        with self.client.get(
            "/v1/me", headers=self.auth, name="/v1/me", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code} {error_code(resp)}")
                self.on_unauthorized(resp)
            elif resp.json().get("id") != self.member["memberId"]:
                resp.failure("/v1/me answered another member")
