"""Check-ins: the daily tap (with an Idempotency-Key, retried like a flaky phone) and the page."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from locust import task

from scenarios.common import fail_unless_ok, seed
from scenarios.members import SignedInMember

# The seeded campaign's zone: a member's day, and so the key of its daily tap, follows it.
CAMPAIGN_TZ = ZoneInfo("Asia/Shanghai")


class CheckinUser(SignedInMember):
    """Opens the check-in page, taps "签到"; taps again later (the app retries, or the member
    taps twice), which must answer 200 with the first result and pay nothing twice."""

    weight = 8

    def on_start(self) -> None:
        self.campaign = seed()["campaign"]
        self.checked_in_on: str | None = None
        super().on_start()

    @task(3)
    def page(self) -> None:
        if not self.signed_in():
            return
        with self.client.get(
            f"/v1/checkins/{self.campaign}",
            headers=self.auth,
            name="/v1/checkins/{campaignKey}",
            catch_response=True,
        ) as resp:
            body = fail_unless_ok(resp)
            if body is None:
                self.on_unauthorized(resp)
            elif body.get("campaign") != self.campaign or body.get("state") != "live":
                resp.failure(f"page of {body.get('campaign')!r} in state {body.get('state')!r}")
            elif self.checked_in_on == body.get("today") and not body.get("checkedInToday"):
                resp.failure("checked in today, but the page says not")

    @task(2)
    def check_in(self) -> None:
        if not self.signed_in():
            return
        today = datetime.now(CAMPAIGN_TZ).date().isoformat()
        repeat = self.checked_in_on == today
        # One key per member and day, as the app would keep it for its retries of one tap.
        headers = {**self.auth, "Idempotency-Key": f"checkin-{self.member['memberId']}-{today}"}
        with self.client.post(
            f"/v1/checkins/{self.campaign}",
            headers=headers,
            name="/v1/checkins/{campaignKey}"
            if not repeat
            else "/v1/checkins/{campaignKey} [replay]",
            catch_response=True,
        ) as resp:
            body = fail_unless_ok(resp)
            if body is None:
                self.on_unauthorized(resp)
                return
            replayed = resp.headers.get("Idempotent-Replayed") == "true" or body.get("replayed")
            if body.get("campaign") != self.campaign or body.get("streak", 0) < 1:
                resp.failure(f"unexpected check-in {resp.text[:120]!r}")
            elif repeat and not replayed:
                resp.failure("a second tap today was not answered as a replay")
            else:
                self.checked_in_on = body.get("date", today)
