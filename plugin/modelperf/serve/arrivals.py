"""When a load run sends its requests: Poisson arrivals at a rate, or a fixed number of clients.

Poisson arrivals are drawn up front from a seeded generator as offsets from the run's start, and
the client sends each request at its absolute offset: a late wake-up delays that one request but
never shifts the ones after it, so the client's own delays do not bend the process it claims.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Concurrency", "Limits", "Pattern", "Poisson", "poisson_offsets"]


@dataclass(frozen=True)
class Poisson:
    """Requests arrive as a Poisson process of ``rate`` per second (exponential gaps), seeded."""

    rate: float
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"The arrival rate {self.rate!r} is not a positive number of requests per second: "
                             "give e.g. rate=2.0.")

    @property
    def label(self) -> str:
        return f"Poisson {self.rate:g}/s"


@dataclass(frozen=True)
class Concurrency:
    """``clients`` clients, each sending its next request as soon as its previous one ends."""

    clients: int

    def __post_init__(self) -> None:
        if isinstance(self.clients, bool) or not isinstance(self.clients, int) or self.clients < 1:
            raise ValueError(f"The concurrency {self.clients!r} is not a whole number of clients of at least 1: "
                             "give e.g. concurrency=4.")

    @property
    def label(self) -> str:
        return f"{self.clients} concurrent client(s)"


Pattern = Poisson | Concurrency


@dataclass(frozen=True)
class Limits:
    """Bounds of one run: at most ``max_requests`` sent, none sent after ``duration_s``, and each
    request given at most ``request_timeout_s`` (those still running then are cut off and counted
    as failed), so a run always ends by itself within duration + timeout."""

    max_requests: int
    duration_s: float
    request_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_requests, bool) or not isinstance(self.max_requests, int) or self.max_requests < 1:
            raise ValueError(f"max_requests={self.max_requests!r} is not a whole number of at least 1: give e.g. 50.")
        for name in ("duration_s", "request_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r} is not a positive finite number of seconds: give e.g. 30.")


def poisson_offsets(rate: float, seed: int, *, max_requests: int, duration_s: float) -> tuple[float, ...]:
    """Send times (seconds from the start) of a Poisson process at ``rate``: the first at 0, then
    exponential gaps of mean 1/rate, stopping at ``max_requests`` or before ``duration_s``."""
    draw = random.Random(seed)
    offsets: list[float] = []
    at = 0.0
    while len(offsets) < max_requests and at < duration_s:
        offsets.append(at)
        at += draw.expovariate(rate)
    return tuple(offsets)
