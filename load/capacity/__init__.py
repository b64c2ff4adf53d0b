"""The capacity command: a ramp to saturation with Locust, the answer, a report (see __main__)."""
