"""The side-by-side picture of the two models: small and fast against large and deeper.

It reads the figures the shipped suite measured in this session (by test name, see ``_ROLES``)
and lays them out per model, plus one plot of accuracy against latency and against memory.
Figures that were not measured in the session show as "-"; nothing is estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelperf.units import format_duration, format_size

__all__ = ["TRADEOFF_ROWS", "collect", "interval", "plot", "rows"]

# (test function name, metric or extra key) -> role in the comparison, per model.
_ROLES: dict[str, dict[str, str]] = {
    "distilbert": {"test_cold_load[distilbert]": "load", "test_load_memory[distilbert]": "memory",
                   "test_distilbert_batch1_short": "batch1", "test_distilbert_batch32_throughput": "throughput",
                   "test_distilbert_sentiment_accuracy": "accuracy"},
    "llama": {"test_cold_load[llama]": "load", "test_load_memory[llama]": "memory",
              "test_llama_classify_batch1": "batch1", "test_llama_decode": "decode",
              "test_llama_sentiment_accuracy": "accuracy"},
}

TRADEOFF_ROWS = ("architecture", "layers", "parameters", "file size", "context window", "load time",
                 "peak memory (memray)", "peak memory (RSS growth)", "batch-1 latency p50", "batch-1 latency p95",
                 "throughput", "decode", "sentiment accuracy (95% CI)")


def collect(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{model: {role: result}} for the results of the shipped suite's tests."""
    found: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in _ROLES}
    for result in results:
        test = result["measurement"]["test_id"].rsplit("::", 1)[-1]
        for name, roles in _ROLES.items():
            if test in roles:
                found[name][roles[test]] = result
    return found


def _p95(samples: Sequence[float]) -> float:
    import numpy as np

    return float(np.percentile(samples, 95))


def _column(info: dict[str, Any] | None, figures: dict[str, dict[str, Any]]) -> list[str]:
    from modelperf.decide import wilson_interval

    def m(role: str) -> dict[str, Any] | None:
        return figures[role]["measurement"] if role in figures else None

    load, memory, batch1, throughput = m("load"), m("memory"), m("batch1"), m("throughput")
    decode, accuracy = m("decode"), m("accuracy")
    cells = ["-"] * len(TRADEOFF_ROWS)
    if info:
        cells[0:5] = [info["architecture"], str(info["layers"]), f"{info['parameters'] / 1e6:.1f} M",
                      format_size(info["file_bytes"]), str(info["context_length"])]
    if load:
        cells[5] = format_duration(load["value"])
    if memory:
        cells[6] = format_size(memory["extra"].get("memray_peak_bytes", memory["value"]))
        cells[7] = format_size(memory["extra"].get("rss_delta_bytes", 0))
    if batch1:
        cells[8], cells[9] = format_duration(batch1["value"]), format_duration(_p95(batch1["samples"]))
        cells[10] = f"{1 / batch1['value']:.1f} sentences/s (batch 1)"
    if throughput and "sentences_per_s" in throughput["extra"]:
        cells[10] = f"{throughput['extra']['sentences_per_s']:.1f} sentences/s (batch 32)"
    if decode and "decode_tokens_per_s" in decode["extra"]:
        cells[11] = f"{decode['extra']['decode_tokens_per_s']:.1f} tokens/s"
    if accuracy:
        n = len(accuracy["samples"])
        low, high = wilson_interval(int(sum(accuracy["samples"])), n)
        cells[12] = f"{accuracy['value']:.3f} ({low:.3f}-{high:.3f}, n={n})"
    return cells


def rows(model_info: dict[str, dict[str, Any]], results: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per figure, one column per model (distilbert, llama)."""
    figures = collect(results)
    columns = {name: _column(model_info.get(name), figures[name]) for name in _ROLES}
    return [[label, *(columns[name][i] for name in _ROLES)] for i, label in enumerate(TRADEOFF_ROWS)]


def interval(measurement: dict[str, Any], scale: float = 1.0) -> tuple[float, list[list[float]]]:
    """A figure and its error bar (matplotlib's [[below], [above]]): Wilson for per-example accuracy,
    the rounds' p10-p90 for latency."""
    import numpy as np

    from modelperf.decide import wilson_interval

    value, samples = float(measurement["value"]), [float(x) for x in measurement.get("samples", ())]
    if measurement.get("kind") == "accuracy" and samples:
        low, high = wilson_interval(int(sum(samples)), len(samples))
    elif len(samples) >= 2:
        low, high = (float(q) for q in np.percentile(samples, [10, 90]))
    else:
        low = high = value
    low, high = min(low, value), max(high, value)
    return value * scale, [[(value - low) * scale], [(high - value) * scale]]


def plot(results: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Accuracy against batch-1 latency and against memray peak, both models; None if not measured."""
    figures = collect(results)
    points = {name: f for name, f in figures.items() if {"accuracy", "batch1", "memory"} <= set(f)}
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, f in points.items():
        acc, acc_err = interval(f["accuracy"]["measurement"])
        lat, lat_err = interval(f["batch1"]["measurement"], scale=1e3)
        left.errorbar(lat, acc, xerr=lat_err, yerr=acc_err, fmt="o", capsize=3, markersize=7, label=name)
        memory = f["memory"]["measurement"]["extra"].get("memray_peak_bytes", 0) / 2**20
        right.errorbar(memory, acc, yerr=acc_err, fmt="o", capsize=3, markersize=7, label=name)
    left.set(xlabel="batch-1 sentiment latency (ms, median; bars: rounds p10-p90)",
             ylabel="sentiment accuracy (test split; bars: 95% Wilson)")
    right.set(xlabel="load peak memory (MiB, memray)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle("DistilBERT vs Llama on this machine")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
