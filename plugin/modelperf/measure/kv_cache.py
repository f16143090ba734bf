"""A KV cache's size per token: what a model's architecture says it needs, and what measured peaks say it took.

A test of a Llama model's memory compares the two: :func:`kv_cache_bytes_per_token` from the model's
layers, KV heads and head size, :func:`kv_growth_per_token` as the slope of memray peaks measured at
several context lengths (:class:`~modelperf.measure.memory.MemoryTracker`).
"""

from __future__ import annotations

from scipy import stats

__all__ = ["kv_cache_bytes_per_token", "kv_growth_per_token"]


def kv_cache_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_element: int) -> int:
    """The KV cache an architecture needs per token: a key and a value per layer and KV head."""
    for name, value in (
        ("n_layers", n_layers),
        ("n_kv_heads", n_kv_heads),
        ("head_dim", head_dim),
        ("bytes_per_element", bytes_per_element),
    ):
        if value <= 0:
            raise ValueError(
                f"kv_cache_bytes_per_token needs a positive {name}, got {value}; pass the model's value."
            )
    return 2 * n_layers * n_kv_heads * head_dim * bytes_per_element


def kv_growth_per_token(points: list[tuple[int, int]]) -> float:
    """Least-squares slope, in bytes per token, of peak memory against context length."""
    if len({tokens for tokens, _ in points}) < 2:
        raise ValueError(
            f"kv_growth_per_token needs peaks at two or more different context lengths, got {points!r}; "
            "measure at least two lengths."
        )
    fit = stats.linregress([float(t) for t, _ in points], [float(b) for _, b in points])
    return float(fit.slope)
