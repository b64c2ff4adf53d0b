"""Steady-load entry point: only the scenario classes (`locust -f load/locustfile.py -u -r -t`)."""

from scenarios.members import MemberUser
from scenarios.service import ProbeUser

__all__ = ["MemberUser", "ProbeUser"]
