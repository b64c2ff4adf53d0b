"""Locust scenario for boards: members reading the top page, around-me and a friends board.

Import it from the suite's locustfile (``from scenarios_boards import BoardReader``). Config
from the environment: ENGAGE_LOAD_API_KEY (an operator key of the staging tenant),
ENGAGE_LOAD_BOARD (a board key, default ``sale-day``), ENGAGE_LOAD_MEMBERS (how many member
identities the users spread over, default 1000). The board must exist; members are minted on
first use through the operator API, as the brand's back end would.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, between, task

API_KEY = os.environ.get("ENGAGE_LOAD_API_KEY", "")
BOARD = os.environ.get("ENGAGE_LOAD_BOARD", "sale-day")
MEMBERS = int(os.environ.get("ENGAGE_LOAD_MEMBERS", "1000"))


class BoardReader(FastHttpUser):
    """Sale day: everyone opens the board; some look around themselves or at their friends."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.external_id = f"load-{random.randrange(MEMBERS)}"
        with self.client.post(
            f"/admin/v1/members/{self.external_id}/token",
            headers={"Authorization": f"Bearer {API_KEY}"},
            name="/admin/v1/members/[externalId]/token",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"token: {r.status_code}")
                self.headers = {}
                return
            self.headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}

    def _check_page(self, r) -> None:  # type: ignore[no-untyped-def]
        if r.status_code != 200:
            r.failure(f"{r.status_code}: {r.text[:200]}")
            return
        body = r.json()
        ranks = [i["rank"] for i in body["items"]]
        if ranks != sorted(ranks) or "me" not in body or "period" not in body:
            r.failure("page out of order or missing me/period")

    @task(6)
    def top_page(self) -> None:
        with self.client.get(
            f"/v1/leaderboards/{BOARD}?limit=100",
            headers=self.headers,
            name="/v1/leaderboards/[key]",
            catch_response=True,
        ) as r:
            self._check_page(r)

    @task(3)
    def around_me(self) -> None:
        with self.client.get(
            f"/v1/leaderboards/{BOARD}/around-me?radius=5",
            headers=self.headers,
            name="/v1/leaderboards/[key]/around-me",
            catch_response=True,
        ) as r:
            self._check_page(r)

    @task(1)
    def friends(self) -> None:
        friends = [f"load-{random.randrange(MEMBERS)}" for _ in range(20)]
        with self.client.post(
            f"/v1/leaderboards/{BOARD}/friends",
            json={"externalIds": friends},
            headers=self.headers,
            name="/v1/leaderboards/[key]/friends",
            catch_response=True,
        ) as r:
            self._check_page(r)
