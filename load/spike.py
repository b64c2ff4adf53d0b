"""Sale-day entry point: the scenarios under the SaleDaySpike shape (`locust -f load/spike.py`)."""

from scenarios.members import MemberUser
from scenarios.service import ProbeUser
from shapes import SaleDaySpike

__all__ = ["MemberUser", "ProbeUser", "SaleDaySpike"]
