"""The control workload: a fixed piece of model-like CPU work timed beside every latency test.

Its seconds say how fast the machine is right now, so ``decide.compare_latency`` can divide them
out. It is one transformer encoder block written with plain torch ops (384 wide, 6 heads, FFN
1536, sequence 16, batch 1, float32, fixed seeded weights), run 5 times a round: about 3 ms per
round on this 2-core machine. The same op mix as the models under test (dense matmuls, softmax,
layer norm, GELU), at the same thread count, so contention hits both alike.

How it was chosen (2-core shared VM, torch 2.13 cpu, 5-8 separate processes per phase, model =
6-layer 384-wide ``nn.TransformerEncoder`` at batch 1, seq 16, and a 768-wide one at seq 32; a
phase without and one with a neighbour ``python -c "while True: pass"``). Figures are the
session-to-session sd of log(model median / control median) and the shift of that ratio when the
neighbour starts:

* one encoder block (this design), control interleaved with the model, 1 thread:
  sd 1.7 % (384) / 0.8 % (768), neighbour shift +3.1 % / +0.2 %;
* plain matmul chains (64x256 and 128x512 tanh chains), same setup: sd 1.1-2.6 %, shifts up to
  +8.5 %, and in block (not interleaved) timing one shift of +19.8 %;
* at 2 threads a neighbour on one core slows torch by x1.8-x4 (OpenMP threads wait for the
  descheduled one) and by very different factors for different op sizes: 0.6 ms matmul chains
  x4.4, the 384-wide model x2.5, the 768-wide one x1.8, so no control tracks better than about
  10-25 % there; see the ratio figures in the commit report.

So: measure at a fixed thread count and interleave control rounds with the test's rounds when the
caller can (``control_timer``); :data:`CONTROL_VERSION` changes whenever the workload does, and
controls of different versions must not be compared.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CONTROL_VERSION", "control_timer", "measure_control"]

# Bump when the workload changes: control seconds of different versions are not comparable.
CONTROL_VERSION = 1
_WIDTH, _HEADS, _FFN, _SEQ = 384, 6, 1536, 16  # a MiniLM/DistilBERT-like block at a short input
_PASSES = 5  # passes per round: ~3 ms, long enough to time, short enough to interleave
_SEED = 1234


@functools.lru_cache(maxsize=1)
def _weights() -> dict[str, Any]:
    """Seeded weights, built once per process; scaled so activations stay well-conditioned."""
    import torch

    gen = torch.Generator().manual_seed(_SEED)

    def dense(rows: int, cols: int) -> Any:
        return torch.randn(rows, cols, generator=gen) / cols**0.5

    return {
        "x": torch.randn(1, _SEQ, _WIDTH, generator=gen),
        "qkv": dense(3 * _WIDTH, _WIDTH), "out": dense(_WIDTH, _WIDTH),
        "up": dense(_FFN, _WIDTH), "down": dense(_WIDTH, _FFN),
        "ln": (torch.ones(_WIDTH), torch.zeros(_WIDTH)),
    }


def _block(w: dict[str, Any]) -> Any:
    """One post-norm encoder block, as in BERT: attention, add & norm, FFN, add & norm."""
    import torch.nn.functional as F

    x = w["x"]
    q, k, v = F.linear(x, w["qkv"]).view(1, _SEQ, 3, _HEADS, _WIDTH // _HEADS).permute(2, 0, 3, 1, 4)
    attn = F.softmax(q @ k.transpose(-2, -1) / (_WIDTH // _HEADS) ** 0.5, dim=-1) @ v
    x = F.layer_norm(x + F.linear(attn.transpose(1, 2).reshape(1, _SEQ, _WIDTH), w["out"]), (_WIDTH,), *w["ln"])
    return F.layer_norm(x + F.linear(F.gelu(F.linear(x, w["up"])), w["down"]), (_WIDTH,), *w["ln"])


def control_timer(threads: int | None = None) -> Callable[[], float]:
    """A callable that runs one control round and returns its seconds.

    Build it once and call it between the rounds of a test to interleave the two. ``threads``
    sets torch's intra-op threads for the round (restored afterwards); None keeps the current
    setting, which should be the one the test itself runs with.
    """
    import torch

    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads!r} must be a positive number of threads, or None for torch's setting.")
    weights = _weights()

    def one_round() -> float:
        previous = torch.get_num_threads()
        if threads is not None and threads != previous:
            torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                start = time.perf_counter()
                for _ in range(_PASSES):
                    _block(weights)
                return time.perf_counter() - start
        finally:
            if threads is not None and threads != previous:
                torch.set_num_threads(previous)

    return one_round


def measure_control(rounds: int = 15, threads: int | None = None) -> tuple[float, ...]:
    """Seconds of ``rounds`` control rounds, after one discarded warm-up round.

    ``threads``: torch intra-op threads for the rounds; None uses ``torch.get_num_threads()``.
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be at least 1 control round.")
    timer = control_timer(threads)
    timer()  # warm-up: first-call allocations and cold caches are not the machine's speed
    return tuple(timer() for _ in range(rounds))
