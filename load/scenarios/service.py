"""Service endpoints: the bare /health/live, watched once a second under the mix (the rate the
ratios are formed with comes from `engage capacity`'s reference phase, see load/README.md)."""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class ProbeUser(FastHttpUser):
    """The reference: what this server answers with no work behind the route."""

    weight = 1
    wait_time = constant(1)

    @task
    def live(self) -> None:
        with self.client.get("/health/live", name="/health/live", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}")
            elif resp.json() != {"status": "ok"}:
                resp.failure(f"unexpected body {resp.text[:100]!r}")
