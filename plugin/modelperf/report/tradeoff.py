"""The side-by-side picture of the two models: small and fast against large and deeper.

It reads the figures whose tests declared a role in their marker (``@pytest.mark.latency(role=
"llama:decode")``, stored as ``Measurement.role``, so the history's runs carry it too) and
lays them out per model, plus one plot of accuracy against latency and against memory.
Figures that were not measured in the session show as "-"; nothing is estimated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelperf.records import Kind, Measurement
from modelperf.units import format_duration, format_size

__all__ = ["MODELS", "ROLES", "TRADEOFF_ROWS", "collect", "interval", "plot", "rows"]

MODELS = ("distilbert", "llama")  # the plugin's two model fixtures, one column each
# The figures a test can give the table, as the figure part of its marker's role ("llama:decode").
ROLES = ("load", "memory", "batch1", "throughput", "decode", "accuracy", "max_rate")

TRADEOFF_ROWS = ("architecture", "layers", "parameters", "file size", "context window", "load time",
                 "peak memory (memray)", "peak memory (RSS growth)", "batch-1 latency p50", "batch-1 latency p95",
                 "throughput", "decode", "sentiment accuracy (95% CI)",
                 "requests/s held at p99 <= objective")


def collect(measurements: Sequence[Measurement]) -> dict[str, dict[str, Measurement]]:
    """{model: {role: measurement}} for the measurements whose test declared a role (``Measurement.role``)."""
    found: dict[str, dict[str, Measurement]] = {name: {} for name in MODELS}
    for measurement in measurements:
        model, _, role = (measurement.role or "").partition(":")
        if model in found and role in ROLES:
            found[model][role] = measurement
    return found


def _percentile(samples: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(samples, q))


def _statistic(measurement: Measurement) -> str:
    """The statistic a latency record's value is (p10 unless the test's marker chose another)."""
    return measurement.statistic


def _column(info: Mapping[str, Any] | None, figures: dict[str, Measurement]) -> list[str]:
    from modelperf.decide import wilson_interval

    load, memory, batch1, throughput = (figures.get(role) for role in ("load", "memory", "batch1", "throughput"))
    decode, accuracy = figures.get("decode"), figures.get("accuracy")
    cells = ["-"] * len(TRADEOFF_ROWS)
    if info:
        cells[0:5] = [info["architecture"], str(info["layers"]), f"{info['parameters'] / 1e6:.1f} M",
                      format_size(info["file_bytes"]), str(info["context_length"])]
    if load:
        cells[5] = f"{format_duration(load.value)} ({_statistic(load)})"
    if memory:
        detail = memory.memory
        cells[6] = format_size(detail.memray_peak_bytes if detail else memory.value)
        cells[7] = format_size(detail.rss_delta_bytes if detail else 0)
    if batch1:
        cells[8] = format_duration(_percentile(batch1.samples, 50))
        cells[9] = format_duration(_percentile(batch1.samples, 95))
        cells[10] = f"{1 / _percentile(batch1.samples, 50):.1f} sentences/s (batch 1, median)"
    # The suite's tests name these figures themselves (benchmark.extra_info), for people to read.
    if throughput and "sentences_per_s" in throughput.info:
        cells[10] = f"{throughput.info['sentences_per_s']:.1f} sentences/s (batch 32, median)"
    if decode and "decode_tokens_per_s" in decode.info:
        cells[11] = f"{decode.info['decode_tokens_per_s']:.1f} tokens/s (median)"
    if accuracy:
        n = len(accuracy.samples)
        low, high = wilson_interval(int(sum(accuracy.samples)), n)
        cells[12] = f"{accuracy.value:.3f} ({low:.3f}-{high:.3f}, n={n})"
    served = figures.get("max_rate")
    if served and served.load is not None and served.load.max_rate is not None:
        from modelperf.report.load import objectives_text

        cells[13] = f"{served.load.max_rate:.3g}/s ({objectives_text(served.load)}, Poisson arrivals, own server)"
    return cells


def rows(model_info: Mapping[str, Mapping[str, Any]], measurements: Sequence[Measurement]) -> list[list[str]]:
    """One row per figure, one column per model (distilbert, llama)."""
    figures = collect(measurements)
    columns = {name: _column(model_info.get(name), figures[name]) for name in MODELS}
    return [[label, *(columns[name][i] for name in MODELS)] for i, label in enumerate(TRADEOFF_ROWS)]


def interval(measurement: Measurement, scale: float = 1.0) -> tuple[float, list[list[float]]]:
    """A figure and its error bar (matplotlib's [[below], [above]]): Wilson for per-example accuracy,
    the rounds' p10-p90 for latency."""
    import numpy as np

    from modelperf.decide import wilson_interval

    value, samples = float(measurement.value), [float(x) for x in measurement.samples]
    if measurement.kind == Kind.ACCURACY and measurement.metric == "accuracy" and samples:
        low, high = wilson_interval(int(sum(samples)), len(samples))
    elif len(samples) >= 2:
        low, high = (float(q) for q in np.percentile(samples, [10, 90]))
    else:
        low = high = value
    low, high = min(low, value), max(high, value)
    return value * scale, [[(value - low) * scale], [(high - value) * scale]]


def plot(measurements: Sequence[Measurement], path: Path) -> Path | None:
    """Accuracy against batch-1 latency and against memray peak, both models; None if not measured."""
    figures = collect(measurements)
    points = {name: f for name, f in figures.items() if {"accuracy", "batch1", "memory"} <= set(f)}
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, f in points.items():
        acc, acc_err = interval(f["accuracy"])
        lat, lat_err = interval(f["batch1"], scale=1e3)  # the gated statistic, bars from its rounds
        left.errorbar(lat, acc, xerr=lat_err, yerr=acc_err, fmt="o", capsize=3, markersize=7, label=name)
        detail = f["memory"].memory
        memory = (detail.memray_peak_bytes if detail else f["memory"].value) / 2**20
        right.errorbar(memory, acc, yerr=acc_err, fmt="o", capsize=3, markersize=7, label=name)
    statistics = sorted({_statistic(f["batch1"]) for f in points.values()})
    left.set(xlabel=f"batch-1 sentiment latency (ms, {'/'.join(statistics)}; bars: rounds p10-p90)",
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
