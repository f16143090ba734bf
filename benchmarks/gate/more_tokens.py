"""The gate benchmark's load slowdown: the change side's served requests ask for more generated tokens.

A served Llama request costs its prefill plus one decode step per generated token; asking every
request for a share more tokens makes its decode that share slower, and the whole request a little
less (its prefill is unchanged), as a change that makes the model answer at more length would, in the
server's own path and on whatever machine runs it. Under load the queue adds more: each request
waits behind slower ones.

:func:`ask_more_tokens` wraps :meth:`modelperf.serve.servers.Served.endpoint`, through which every
load test's client asks its server for ``tokens`` tokens a request. :mod:`benchmarks.gate.slowdown`
installs it (``MODELPERF_GATE_MORE_TOKENS``) in the change side's ``--against`` workers only, as it
does the latency slowdown; each endpoint made logs one JSON line to the injection log.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["ask_more_tokens", "more_tokens"]


def more_tokens(tokens: int, share: float) -> int:
    """``tokens`` plus ``share`` of them, at least one more: 16 tokens and 0.10 ask for 18."""
    return tokens + max(1, round(share * tokens))


def ask_more_tokens(share: float, log: Path | None) -> None:
    """Make every served endpoint of this process ask for :func:`more_tokens` per completion request."""
    from modelperf.serve import servers

    original = servers.Served.endpoint
    if getattr(original, "__wrapped__", None) is not None:
        return  # installed already: asking for more twice would double the share

    @functools.wraps(original)
    def endpoint(self: Any, tokens: int) -> Any:
        asked = more_tokens(tokens, share)
        if log is not None and self.completion:
            line = {"pid": os.getpid(), "method": "Served.endpoint", "tokens": tokens, "asked": asked, "share": share}
            with log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        return original(self, asked)

    servers.Served.endpoint = endpoint  # type: ignore[method-assign]
