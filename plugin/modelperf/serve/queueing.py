"""What queueing theory predicts for a server that handles one request at a time.

llama-cpp-python's server holds one lock per model for a whole request, so under Poisson arrivals
it is an M/G/1 queue, and the Pollaczek-Khinchine formula gives the mean wait before service
from the arrival rate and the first two moments of the service time alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["mg1_mean_wait", "utilisation"]


def utilisation(rate: float, service_times_s: Sequence[float]) -> float:
    """rho = rate x mean service time: the share of time a single server is busy."""
    if not service_times_s:
        raise ValueError("no service times were measured: run requests at a low rate first.")
    return rate * statistics.fmean(service_times_s)


def mg1_mean_wait(rate: float, service_times_s: Sequence[float]) -> float:
    """Pollaczek-Khinchine mean time in queue: rate x E[S^2] / (2 (1 - rho))."""
    rho = utilisation(rate, service_times_s)
    if rho >= 1.0:
        raise ValueError(f"at {rate:g} requests/s the server is loaded to {rho:.0%}: a queue at or over 100 % "
                         "has no steady state; choose a lower rate.")
    second_moment = statistics.fmean(s * s for s in service_times_s)
    return rate * second_moment / (2.0 * (1.0 - rho))
