"""The probe's child process: load one model as the session would, evaluate it once, say how it went.

Run as ``python -m modelperf.models.probe_child REQUEST RESULT`` by :mod:`modelperf.models.probe`;
a module of its own because it loads models through the registry, which itself starts the probes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modelperf.models.base import ModelUnavailable
from modelperf.models.probe import evaluate_once, system_info
from modelperf.models.registry import load_model

__all__ = ["main"]


def main(request_path: str, result_path: str) -> int:
    """Write the llama.cpp build line first: a crash while loading still leaves it for the session."""
    request = json.loads(Path(request_path).read_text())
    name = request["model"]
    result = Path(result_path)
    result.write_text(json.dumps({"system_info": system_info(name)}))
    try:
        model = load_model(name, request["load_arguments"])
    except ModelUnavailable as exc:
        # Not a crash: the session's own load raises the same sentence and reports it as usual.
        result.write_text(json.dumps({"system_info": system_info(name), "unavailable": str(exc)}))
        return 0
    evaluate_once(model)
    result.write_text(json.dumps({"system_info": system_info(name)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
