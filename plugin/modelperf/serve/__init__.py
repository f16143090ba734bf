"""Both models behind real servers, under real arrivals (issue #23), with no pytest in sight.

- :mod:`~modelperf.serve.servers`: start llama-cpp-python's server or the DistilBERT service (each in
  its own process, see :mod:`~modelperf.serve.process`), or point at a team's own server;
- :mod:`~modelperf.serve.client`: the load client (Poisson arrivals or fixed concurrency, streamed
  tokens timed on the client side), bounded in requests and seconds;
- :mod:`~modelperf.serve.figures`: per-request records and the run's summary;
  :mod:`~modelperf.objectives` (below the serving layer, as the `load` marker reads them too): objectives
  such as ``{"ttft_p99": "500 ms"}``;
  :mod:`~modelperf.serve.search`: the highest rate whose objectives hold;
  :mod:`~modelperf.serve.queueing`: the M/G/1 prediction a single-request server must meet.

Importing this package imports nothing heavy; each module imports what it needs.
"""

from __future__ import annotations

__all__: list[str] = []
