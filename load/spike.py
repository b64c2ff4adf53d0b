"""Sale-day entry point: the scenarios under the SaleDaySpike shape (`locust -f load/spike.py`)."""

# Weights (on each class) make a sale-day mix: many board reads, check-ins and spins, a few
# profile reads, one brand back end posting order batches, one probe for the reference figure.
from scenarios.boards import BoardReader
from scenarios.checkins import CheckinUser
from scenarios.events import BrandBackend
from scenarios.members import MemberUser
from scenarios.service import ProbeUser
from scenarios.wheel import WheelUser
from shapes import SaleDaySpike

__all__ = [
    "BoardReader",
    "BrandBackend",
    "CheckinUser",
    "MemberUser",
    "ProbeUser",
    "SaleDaySpike",
    "WheelUser",
]
