"""The lucky wheel: look at it, spin it until today's spins or points run out."""

from __future__ import annotations

import uuid

from locust import task

from scenarios.common import count_as, error_code, seed
from scenarios.members import SignedInMember

# The used-up answers a member meets on sale day; the app shows "come back tomorrow". They are
# the business working, so they count as successes, reported under their own name.
USED_UP = {"WHEEL_CAP_REACHED", "WHEEL_NO_SPINS_LEFT", "INSUFFICIENT_POINTS"}


class WheelUser(SignedInMember):
    """Opens the wheel, spins (free spins first, then paid with points, up to the daily cap)."""

    weight = 6

    def on_start(self) -> None:
        self.wheel = seed()["wheel"]
        self.slots: set[str] = set()
        super().on_start()

    @task(2)
    def view(self) -> None:
        if not self.signed_in():
            return
        with self.client.get(
            f"/v1/wheels/{self.wheel}",
            headers=self.auth,
            name="/v1/wheels/{wheelKey}",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code} {error_code(resp)}")
                self.on_unauthorized(resp)
                return
            body = resp.json()
            self.slots = {p["key"] for p in body.get("prizes", [])}
            if body.get("key") != self.wheel or body.get("status") != "open" or not self.slots:
                resp.failure(f"wheel {body.get('key')!r} status {body.get('status')!r}")

    @task(3)
    def spin(self) -> None:
        if not self.signed_in():
            return
        # A fresh key per tap: each tap is a new spin; only a retry of one tap would reuse it.
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            f"/v1/wheels/{self.wheel}/spins",
            headers=headers,
            name="/v1/wheels/{wheelKey}/spins",
            catch_response=True,
        ) as resp:
            if resp.status_code == 409 and error_code(resp) in USED_UP:
                count_as(resp, "/v1/wheels/{wheelKey}/spins [409 used up]")
                resp.success()
                return
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code} {error_code(resp)}")
                self.on_unauthorized(resp)
                return
            body = resp.json()
            won = body.get("prize", {}).get("key")
            if not isinstance(body.get("slotIndex"), int) or not won:
                resp.failure(f"spin without a prize or slot: {resp.text[:120]!r}")
            elif self.slots and won not in self.slots:
                resp.failure(f"won {won!r}, which is not on the wheel")
