"""The control workload: a fixed piece of model-like CPU work timed beside every latency test.

Its seconds say how fast the machine is right now, so ``decide.compare_latency`` can divide them
out. It is one BERT encoder block written with plain torch ops (384 wide, 6 heads, FFN 1536,
sequence 16, batch 1, float32, fixed seeded weights), 5 passes a round: about 5 ms at 1 thread and
3 ms at 2 on this machine. It has the op mix and widths of the embedded DistilBERT (MiniLM-L6,
384 wide): dense matmuls, softmax, layer norm, GELU, at the caller's thread count.

Why this workload: a one-layer encoder block tracks the model's speed far more closely than plain
matmul chains; timed interleaved with the model's rounds, it follows a busy neighbour far better than
timed in blocks; and the two designs give different ratios, so figures of different designs are never
compared. With every core busy, OpenMP threads wait for a descheduled peer whenever anything else
runs, so time latency with fewer threads than cores on a shared machine. The measurements:
docs/concepts/design-measurements.md#control-workload.

A torch model's own weights: a model whose weights stream from cache and memory on every call runs
a few per cent faster or slower in one process than in the next (where its weights landed in
physical memory; the small block's weights do not share that). With ``model_weights`` the control
also multiplies a fixed input through every linear layer's weight of the model under test, once a
round. The block and the walk take about half the round each: the walk alone over-reacts, being all
weight streaming where the model call is not, and the mix follows the model from one process to the
next best (docs/concepts/design-measurements.md#control-workload).

Without torch (a session that installed only the ``llama`` extra) the same block runs in numpy, under
an identity of its own (``numpy-v1``): its seconds are never compared with the torch block's. Tests of
a Llama model use llama.cpp's own control (``Llama.latency_control``) either way.

:data:`CONTROL_VERSION` changes whenever the workload does; :func:`control_identity` names the
version and the walked weights' layout, and control seconds of different identities are never
compared.

Which control a test gets is chosen here too (:func:`choose_control`: its one model's own, such as
Llama's, else this block), and :class:`QuietestControl` keeps the session's quietest control floor,
which tells a test that ran on a busy machine. :mod:`modelperf.measure.latency` times the control
between a test's rounds.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelperf.figures import control_floor
from modelperf.models.base import Model

__all__ = ["CONTROL_VERSION", "QuietestControl", "choose_control", "control_identity", "control_modules",
           "control_threads", "control_timer", "control_weights", "has_torch", "measure_control"]

# Bump when the workload changes: control seconds of different versions are not comparable.
CONTROL_VERSION = 1
_WIDTH, _HEADS, _FFN, _SEQ = 384, 6, 1536, 16  # a MiniLM/DistilBERT-like block at a short input
_PASSES = 5  # passes per round: a few ms, long enough to time, short enough to interleave
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


def has_torch() -> bool:
    """Whether torch is installed; without it the control runs in numpy."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def control_modules() -> tuple[str, ...]:
    """The libraries a process imports to time the control, beyond numpy: torch where it is installed
    (``--against``'s fork server imports them once for all its workers)."""
    return ("torch",) if has_torch() else ()


@functools.lru_cache(maxsize=1)
def _numpy_weights() -> dict[str, Any]:
    """The block's weights for numpy, seeded as the torch block's are (not the same numbers)."""
    import numpy as np

    rng = np.random.default_rng(_SEED)

    def dense(rows: int, cols: int) -> Any:
        return (rng.standard_normal((rows, cols)) / cols**0.5).astype(np.float32)

    return {"x": rng.standard_normal((_SEQ, _WIDTH)).astype(np.float32), "qkv": dense(3 * _WIDTH, _WIDTH),
            "out": dense(_WIDTH, _WIDTH), "up": dense(_FFN, _WIDTH), "down": dense(_WIDTH, _FFN)}


def _numpy_block(w: dict[str, Any]) -> Any:
    """The encoder block of :func:`_block` in numpy: attention, add & norm, FFN (tanh GELU), add & norm."""
    import numpy as np

    def norm(x: Any) -> Any:
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)

    x = w["x"]
    head = _WIDTH // _HEADS
    q, k, v = (x @ w["qkv"].T).reshape(_SEQ, 3, _HEADS, head).transpose(1, 2, 0, 3)
    scores = q @ k.transpose(0, 2, 1) / head**0.5
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    attn = (scores / scores.sum(-1, keepdims=True)) @ v
    x = norm(x + attn.transpose(1, 0, 2).reshape(_SEQ, _WIDTH) @ w["out"].T)
    up = x @ w["up"].T
    gelu = 0.5 * up * (1 + np.tanh(0.7978845608 * (up + 0.044715 * up**3)))
    return norm(x + gelu @ w["down"].T)


def _numpy_timer() -> Callable[[], float]:
    weights = _numpy_weights()

    def one_round() -> float:
        start = time.perf_counter()
        for _ in range(_PASSES):
            _numpy_block(weights)
        return time.perf_counter() - start

    return one_round


def control_identity(model_weights: Sequence[Any] = ()) -> str:
    """Names the control workload: its version, plus the shapes and dtypes of the model weights it walks.

    Control seconds of different identities are not comparable, so a baseline is compared only with a
    run of the same identity: a change of the model's weight dtypes or shapes is reported as "not
    compared" rather than silently scaled away.
    """
    if not has_torch():
        return f"numpy-v{CONTROL_VERSION}"
    if not model_weights:
        return f"v{CONTROL_VERSION}"
    layout = ";".join(f"{tuple(weight.shape)}:{weight.dtype}" for weight in model_weights)
    return f"v{CONTROL_VERSION}+weights:{hashlib.sha256(layout.encode()).hexdigest()[:12]}"


def _weight_walk(model_weights: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Each weight with a fixed seeded input of its width: (weight, input) pairs for ``F.linear``."""
    import torch

    gen = torch.Generator().manual_seed(_SEED)
    walk = []
    for weight in model_weights:
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError("control weights must be 2-D torch tensors (the weights of the model's linear layers).")
        walk.append((weight, torch.randn(1, _SEQ, weight.shape[1], generator=gen).to(weight.dtype)))
    return walk


def control_timer(threads: int | None = None, model_weights: Sequence[Any] = ()) -> Callable[[], float]:
    """A callable that runs one control round and returns its seconds.

    Build it once and call it between the rounds of a test to interleave the two. ``threads``
    sets torch's intra-op threads for the round (restored afterwards); None keeps the current
    setting, which should be the one the test itself runs with.

    ``model_weights``: the 2-D weights of the linear layers of a torch model under test. Each round
    then also multiplies a fixed input through every one of them, once, so the control shares the
    physical memory layout of the model's weights, which decides much of a memory-bound model's
    speed in a given process (see the module docstring).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads!r} must be a positive number of threads, or None for torch's setting.")
    if not has_torch():
        return _numpy_timer()  # numpy's BLAS threads are its own: ``threads`` steers torch's only
    import torch
    import torch.nn.functional as F

    weights = _weights()
    walk = _weight_walk(model_weights)

    def one_round() -> float:
        previous = torch.get_num_threads()
        if threads is not None and threads != previous:
            torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                start = time.perf_counter()
                for _ in range(_PASSES):
                    _block(weights)
                for weight, features in walk:
                    F.linear(features, weight)
                return time.perf_counter() - start
        finally:
            if threads is not None and threads != previous:
                torch.set_num_threads(previous)

    return one_round


def control_threads() -> int:
    """torch's intra-op thread count, which a ``control_timer()`` built now runs at (1 for numpy's block)."""
    if not has_torch():
        return 1
    import torch

    return int(torch.get_num_threads())


def measure_control(rounds: int = 15, threads: int | None = None) -> tuple[float, ...]:
    """Seconds of ``rounds`` control rounds, after one discarded warm-up round.

    ``threads``: torch intra-op threads for the rounds; None uses ``torch.get_num_threads()``.
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be at least 1 control round.")
    timer = control_timer(threads)
    timer()  # warm-up: first-call allocations and cold caches are not the machine's speed
    return tuple(timer() for _ in range(rounds))


def control_weights(models: Mapping[str, Model]) -> tuple[Any, ...]:
    """The weights the control walks: those of the test's one torch model, or none (the generic control).

    A test that uses both models keeps the generic control: which model's weights would track it is unclear.
    """
    if len(models) != 1:
        return ()
    offered = getattr(next(iter(models.values())), "control_weights", None)
    return tuple(offered()) if callable(offered) else ()


def choose_control(models: Mapping[str, Model]) -> tuple[Callable[[], float], str, int]:
    """(timer, identity, threads) of the control for a test of ``models``.

    The test's one model may run a control of its own (``latency_control()``: Llama's runs through
    llama.cpp, which a torch block does not track); otherwise the torch block, walking a torch model's
    weights where it offers them (:func:`control_timer`).
    """
    if len(models) == 1:
        model = next(iter(models.values()))
        own = getattr(model, "latency_control", None)
        if callable(own):
            timer, identity = own()
            return timer, identity, int(model.info.threads)
    weights = control_weights(models)
    return control_timer(model_weights=weights), control_identity(weights), control_threads()


class QuietestControl:
    """The session's quietest control floor per thread count, to tell when a test ran on a busy machine.

    A test measured while another process took the machine carries that in every round; a baseline
    saved then makes every later comparison of that test look faster (and hides real slowdowns).
    Comparing each test's control floor with the quietest one seen this session finds those tests.
    """

    def __init__(self) -> None:
        self._floors: dict[Any, float] = {}

    def calibrate(self, key: Any, control: Callable[[], float], rounds: int = 20) -> None:
        """Time ``rounds`` control rounds if ``key`` (e.g. the thread count) has no floor yet."""
        if key not in self._floors:
            self._floors[key] = float(control_floor([control() for _ in range(rounds)]))

    def busy_factor(self, key: Any, controls: Sequence[float]) -> float:
        """How much slower than the quietest floor so far these control rounds ran; updates the floor."""
        if not controls:
            return 1.0
        floor = float(control_floor(controls))
        quietest = min(self._floors.get(key, floor), floor)
        self._floors[key] = quietest
        return floor / quietest
