"""Leaderboards: members reading the top page, the ranks around them and a friends board."""

from __future__ import annotations

import random

from locust import task

from scenarios.common import fail_unless_ok, seed
from scenarios.members import SignedInMember


class BoardReader(SignedInMember):
    """Sale day: everyone opens the board; some look around themselves or at their friends."""

    weight = 8

    def on_start(self) -> None:
        self.board = seed()["board"]
        super().on_start()

    def _check_page(self, resp) -> None:  # type: ignore[no-untyped-def]
        body = fail_unless_ok(resp)
        if body is None:
            self.on_unauthorized(resp)
            return
        ranks = [i["rank"] for i in body.get("items", [])]
        if ranks != sorted(ranks) or "me" not in body or "period" not in body:
            resp.failure("page out of order or missing me/period")

    @task(6)
    def top_page(self) -> None:
        if not self.signed_in():
            return
        with self.client.get(
            f"/v1/leaderboards/{self.board}?limit=100",
            headers=self.auth,
            name="/v1/leaderboards/{boardKey}",
            catch_response=True,
        ) as resp:
            self._check_page(resp)

    @task(3)
    def around_me(self) -> None:
        if not self.signed_in():
            return
        with self.client.get(
            f"/v1/leaderboards/{self.board}/around-me?radius=5",
            headers=self.auth,
            name="/v1/leaderboards/{boardKey}/around-me",
            catch_response=True,
        ) as resp:
            self._check_page(resp)

    @task(1)
    def friends(self) -> None:
        if not self.signed_in():
            return
        members = seed()["members"]
        friends = [m["externalId"] for m in random.sample(members, min(20, len(members)))]
        with self.client.post(
            f"/v1/leaderboards/{self.board}/friends",
            json={"externalIds": friends},
            headers=self.auth,
            name="/v1/leaderboards/{boardKey}/friends",
            catch_response=True,
        ) as resp:
            self._check_page(resp)
