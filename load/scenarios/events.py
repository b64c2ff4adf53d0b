"""The brand's back end: posts batches of paid orders that the event rule turns into points."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime

from config import CONFIG
from locust import FastHttpUser, between, task

from scenarios.common import fail_unless_ok, seed

# Unique per Locust process, so a rerun against the same tenant is never a batch of duplicates.
RUN = uuid.uuid4().hex[:12]
_batches = itertools.count()


class BrandBackend(FastHttpUser):
    """A few back-end workers flushing the order queue: BATCH events per POST, API key auth."""

    weight = 1
    wait_time = between(1.0, 3.0)

    @task
    def post_batch(self) -> None:
        s = seed()
        n = CONFIG.event_batch
        batch_no = next(_batches)
        now = datetime.now(UTC).isoformat()
        members = s["members"]
        events = [
            {
                "eventId": f"load-{RUN}-{batch_no}-{i}",
                "externalId": random.choice(members)["externalId"],
                "type": "order.paid",
                "occurredAt": now,
                "value": round(random.uniform(9.9, 999.0), 2),
                "attributes": {"channel": "mini-program"},
            }
            for i in range(n)
        ]
        with self.client.post(
            "/admin/v1/events",
            json=events,
            headers={
                "Authorization": f"Bearer {s['apiKey']}",
                "Idempotency-Key": f"load-{RUN}-batch-{batch_no}",
            },
            name=f"/admin/v1/events [batch of {n}]",
            catch_response=True,
        ) as resp:
            body = fail_unless_ok(resp)
            if body is None:
                return
            if body.get("applied") != n or body.get("rejected"):
                resp.failure(
                    f"applied {body.get('applied')}, duplicates {body.get('duplicates')}, "
                    f"rejected {body.get('rejected')} of {n}"
                )
