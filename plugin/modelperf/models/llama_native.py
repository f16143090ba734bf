"""What the Llama adapter runs through llama.cpp's own calls, beside llama-cpp-python's ``Llama`` object.

:func:`quiet_native_stderr` keeps the log llama.cpp prints from C out of the test report, around a
load, a context's creation or a state file's read. :func:`llama_control` is the latency control of a
Llama test (``Llama.latency_control``): a second, small context on the loaded model, driven with
llama-cpp-python's internal context and batch wrappers, so it leaves the session's own context alone.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from modelperf.models.base import ModelInfo

__all__ = ["llama_control", "quiet_native_stderr"]

# The latency control run by llama.cpp: a batch of this many fixed tokens (compute-bound, as a prefill
# is), then one single-token step (weight-streaming-bound, as a decode step is). About 40 ms a round
# for SmolLM2-135M at one thread here. Over 10 fresh processes (benchmarks/control_tracking.py) the
# spread of decode / this control was 0.7 % (decode alone 2.2 %; correlation 0.95), against 9.0 % for
# decode / the torch block. Bump _CONTROL_VERSION whenever the workload changes.
_CONTROL_BATCH = 4
_CONTROL_VERSION = 1
_CONTROL_TEXT = "The market by the river opened early, and the bakers carried bread up the hill."


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """llama.cpp prints its load log from C to fd 2; keep it out of the test report."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def llama_control(model: Any, info: ModelInfo, tokenize: Callable[[str], list[int]]) -> tuple[Callable[[], float], str]:
    """The control of a Llama test, on the loaded ``model`` (llama-cpp-python's ``_model``): (timer, identity).

    Each round evaluates a fixed batch and one more token on a context of its own; see
    :meth:`modelperf.models.llama.Llama.latency_control` for why it tracks the model.
    """
    from llama_cpp import _internals
    from llama_cpp import llama_cpp as native

    params = native.llama_context_default_params()
    params.n_ctx = params.n_batch = params.n_ubatch = 2 * _CONTROL_BATCH
    params.n_threads = params.n_threads_batch = info.threads
    with quiet_native_stderr():
        context = _internals.LlamaContext(model=model, params=params, verbose=False)
    batch = _internals.LlamaBatch(n_tokens=_CONTROL_BATCH, embd=0, n_seq_max=1, verbose=False)
    tokens = (tokenize(_CONTROL_TEXT) * _CONTROL_BATCH)[: _CONTROL_BATCH + 1]

    def one_round() -> float:
        start = time.perf_counter()
        context.kv_cache_clear()  # type: ignore[no-untyped-call]
        batch.set_batch(tokens[:_CONTROL_BATCH], n_past=0, logits_all=False)
        context.decode(batch)
        batch.set_batch(tokens[_CONTROL_BATCH:], n_past=_CONTROL_BATCH, logits_all=False)
        context.decode(batch)
        return time.perf_counter() - start

    # The context and batch live as long as the timer does (closures keep them).
    return one_round, f"llama.cpp-v{_CONTROL_VERSION}:{info.key}:{info.threads}t"
