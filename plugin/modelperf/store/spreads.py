"""The between-session spread of each latency and served load figure, read from the history store.

``modelperf spread`` prints it and a stored-baseline session judges with it: both group the history's
figures the same way here. Sessions count as repeats of one code when they share the commit, the dirty
flag, the weights and (for latency) the control workload; the spread is pooled within those groups
(:func:`modelperf.decide.pooled_spread`), so a real change between commits never counts as noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modelperf import decide
from modelperf.records import Kind, Measurement
from modelperf.store.history import HistoryStore, RunInfo

__all__ = ["NEWEST_RUNS", "FigureKey", "Groups", "group_figures", "pooled_spreads", "read_spreads"]

# A session reads the spreads from this many of the hardware's newest runs: enough for a pooled sd of
# tens of degrees of freedom, recent enough to be the machine as it is now, and quick to read.
NEWEST_RUNS = 60

FigureKey = tuple[str, str, str]  # (hardware id, test id, latency statistic or load figure)
Groups = dict[FigureKey, dict[tuple[object, ...], list[float]]]


def _repeat_key(run: RunInfo, measurement: Measurement) -> tuple[object, ...]:
    """What sessions of one code share: figures of other weights or another control are not repeats.

    A load figure names no model (its server is another process): the weights the session's settings
    loaded stand for the served ones. Its marker's pattern is left out: the commit fixes the marker, and a
    figure that looked worse and was run again reads "..., run twice", which would set exactly the
    slowest sessions apart, each in a group of one that adds nothing to the spread.
    """
    control = measurement.latency.control_version if measurement.latency is not None else None
    model = measurement.model if measurement.kind is not Kind.LOAD else _session_weights(run)
    return run.commit, run.dirty, model, control


def _session_weights(run: RunInfo) -> tuple[tuple[str, str], ...]:
    """(model name, weights sha256) of every model the run's settings loaded."""
    models = run.versions.get("models")
    if not isinstance(models, dict):
        return ()
    return tuple(sorted((str(name), str(info.get("weights_sha256", ""))) for name, info in models.items()
                        if isinstance(info, dict)))


def group_figures(runs: Iterable[tuple[RunInfo, list[Measurement]]], test: str | None = None) -> Groups:
    """The log figure of every stored-mode latency and load measurement (:func:`~modelperf.decide.
    session_log_figure`), grouped by figure and code; ``--against``'s figures are left out."""
    groups: Groups = {}
    for run, measurements in runs:
        for measurement in measurements:
            if test and test not in measurement.test_id:
                continue
            figure = decide.session_log_figure(measurement)
            if figure is not None:
                key = (run.hardware_id, measurement.test_id, decide.figure_name(measurement))
                groups.setdefault(key, {}).setdefault(_repeat_key(run, measurement), []).append(figure)
    return groups


def read_spreads(history: str | None, hardware_id: str) -> dict[tuple[str, str], decide.PooledSpread] | None:
    """The pooled between-session spread of each (test id, statistic or load figure) of ``hardware_id``
    in ``history``.

    None when there is no history (``--history off``); empty when the store does not exist yet.
    Raises :class:`~modelperf.store.history.HistoryError` when it exists and cannot be read.
    """
    if history is None:
        return None
    if "://" not in history and not Path(history).exists():
        return {}  # a first session: nothing to read, and nothing created before the session writes it
    with HistoryStore(history, create=False) as store:
        runs = store.runs(hardware_id)[-NEWEST_RUNS:]
        return pooled_spreads(group_figures((run, store.measurements(run.run_id)) for run in runs))


def pooled_spreads(figures: Groups) -> dict[tuple[str, str], decide.PooledSpread]:
    """Each grouped figure's spread, pooled within its sessions of one code, by (test id, statistic or
    load figure): what a :class:`~modelperf.decide.SpreadTable` reads as its history."""
    return {(test, statistic): decide.pooled_spread(list(groups.values()))
            for (_, test, statistic), groups in figures.items()}

