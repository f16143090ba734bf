"""The gate benchmark's figures as a terminal report and as a study summary for ``docs/studies/``."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace

from modelperf.decide.sequential import MAX_ADVISED_PROCESSES

from ..studies import Provenance, Summary
from .figures import GateFigures, ModeFigures, Rate, TestFigures

__all__ = ["gate_summary", "headline", "print_report"]

_ORDER = ("aa", "neighbour", "single", "load-aa")  # then the slowdowns, by factor; the load modes last


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float) -> str:
    text = f"{100 * value:.1f}"
    return text.removesuffix(".0")


def _rate_text(rate: Rate) -> str:
    return f"{_pct(rate.rate or 0.0)} % ({_pct(rate.low)}-{_pct(rate.high)} %)"


def _ordered(figures: GateFigures) -> list[ModeFigures]:
    return sorted(figures.modes, key=lambda m: (_kind(m) == "load",
                                                _ORDER.index(m.mode) if m.mode in _ORDER else len(_ORDER), m.factor))


def _kind(mode: ModeFigures) -> str:
    return "load" if mode.mode.startswith("load-") else "latency"


def _label(mode: ModeFigures) -> str:
    if mode.factor:
        return f"load, +{_pct(mode.factor)} % tokens" if _kind(mode) == "load" else f"+{_pct(mode.factor)} % injected"
    return {"aa": "A/A", "neighbour": "A/A with a busy neighbour", "single": "single side (plain --benchmark)",
            "load-aa": "load A/A"}.get(mode.mode, mode.mode)


def print_report(figures: GateFigures) -> None:
    """Per mode: verdict counts, the rate with its interval, and a line per test."""
    for f in figures.modes:
        print(f"\n== {f.mode}: {f.sessions} sessions, median wall {_fmt(f.median_wall_s, '.0f')} s")
        print(f"   {_kind(f)} comparisons {f.comparisons}: regressed {f.verdicts.get('regressed', 0)}, "
              f"improved {f.verdicts.get('improved', 0)}, inconclusive {f.verdicts.get('inconclusive', 0)}, "
              f"pass {f.verdicts.get('pass', 0)}; not compared {sum(f.not_compared.values())} {f.not_compared or ''}")
        if f.skipped_results or f.unreadable_sessions:
            print(f"   skipped: {f.skipped_results} results without measurement/test_id/kind/verdict, "
                  f"{f.unreadable_sessions} unreadable session files")
        if f.injected_processes:
            print(f"   processes that ran injected code, per session: {list(f.injected_processes)}")
        for label, rate in (("false alarms (regressed + improved)", f.false_alarms), ("detected (regressed)",
                                                                                    f.detection)):
            if rate is not None:
                print(f"   {label}: {rate.count}/{rate.of} = {_fmt(rate.rate, '.1%')}, "
                      f"Wilson 95 % [{rate.low:.1%}, {rate.high:.1%}]")
        if f.detection is not None:
            print(f"   excluded from detection: {f.excluded_min_effect_above_factor} comparisons of tests with "
                  f"min_effect above the factor, {f.excluded_no_min_effect} without min_effect")
        if f.tests:
            print(f"   {'test':<36} {'reg/imp/n':>10} {'min_eff':>7} {'med ratio':>9} {'sd log':>7} "
                  f"{'(/control)':>10} {'half-95':>7} {'(/control)':>10} {'passes':>11} {'detects':>8} {'block sd':>7} "
                  f"{'pair sd':>7}")
        for t in f.tests:
            print(f"   {t.name:<36} {t.regressed:>3}/{t.improved}/{t.comparisons:<4} "
                  f"{_fmt(t.min_effect, '.2f'):>7} {_fmt(t.median_ratio, '.4f'):>9} {_fmt(t.log_ratio_sd, '.4f'):>7} "
                  f"{_fmt(t.log_ratio_control_sd, '.4f'):>10} {_fmt(t.median_half_width, '.4f'):>7} "
                  f"{_fmt(t.median_half_width_control, '.4f'):>10} "
                  f"{_fmt(t.mean_passes, '.2f'):>5} max {_fmt(t.max_passes, '.2f')} x{_fmt(t.median_detectable, '.3f')} "
                  f"{_fmt(t.median_block_sd, '.4f'):>7} {_fmt(t.median_pair_sd, '.4f'):>7}")
    if figures.wall_ratio is not None:
        print(f"\nwall time, median --against A/A session / median single-side session: {figures.wall_ratio:.2f}")


def headline(figures: GateFigures) -> str:
    """One sentence: false alarms, detection per injected size, and the wall-time cost."""
    parts = []
    for mode in _ordered(figures):
        if mode.false_alarms is not None:
            count = mode.false_alarms.count
            parts.append(f"{_label(mode)}: {count} false alarm{'' if count == 1 else 's'} in {mode.false_alarms.of}")
        if mode.detection is not None:
            parts.append(f"{_label(mode)}: {mode.detection.count} of {mode.detection.of} detected")
    if figures.wall_ratio is not None:
        parts.append(f"--against took {figures.wall_ratio:.2f}x the wall time of a single-side run")
    return ("; ".join(parts) or "no comparisons") + "."


def _mode_row(mode: ModeFigures, wall_ratio: float | None) -> tuple[str, ...]:
    wall = _fmt(mode.median_wall_s, ".0f") + " s" if mode.median_wall_s is not None else "-"
    if mode.mode == "single":
        cost = f" (--against: {wall_ratio:.2f}x)" if wall_ratio is not None else ""
        return f"{_label(mode)}, {mode.sessions}", "", "", "", wall + cost
    verdicts = f"{mode.verdicts.get('regressed', 0)} regressed, {mode.verdicts.get('improved', 0)} improved"
    if mode.detection is not None:
        comparisons = f"{mode.detection.of} of tests with min_effect up to {_pct(mode.factor)} %"
        return (f"{_label(mode)}, {mode.sessions}", comparisons, f"{mode.detection.count} regressed",
                f"detected {_rate_text(mode.detection)}", wall)
    rate = f"false alarms {_rate_text(mode.false_alarms)}" if mode.false_alarms is not None else ""
    return f"{_label(mode)}, {mode.sessions}", str(mode.comparisons), verdicts, rate, wall


def _per_test(modes: Sequence[ModeFigures]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Per test, per mode: regressed/improved of comparisons, and the median ratio."""
    compared = [m for m in modes if m.tests]
    names = sorted({t.name for m in compared for t in m.tests})
    effects = {t.name: t.min_effect for m in compared for t in m.tests if t.min_effect is not None}
    rows = []
    for name in names:
        cells = [name, _fmt(effects.get(name), ".2f")]
        for mode in compared:
            test = next((t for t in mode.tests if t.name == name), None)
            cells.append("-" if test is None else
                         f"{test.regressed}/{test.improved}/{test.comparisons}, x{_fmt(test.median_ratio, '.3f')}")
        rows.append(tuple(cells))
    return ("test", "min effect", *(f"{_label(m)}: reg/imp/n, median ratio" for m in compared)), tuple(rows)


def _spread(mode: ModeFigures) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Per test of one mode: how far a session's paired ratio wanders, raw and divided by the control."""
    rows = tuple((t.name, _fmt(t.log_ratio_sd, ".4f"), _fmt(t.log_ratio_control_sd, ".4f"),
                  _fmt(t.median_half_width, ".4f"), _fmt(t.median_half_width_control, ".4f"),
                  _fmt(t.mean_passes, ".2f"), _fmt(t.max_passes, ".2f"), _fmt(t.median_detectable, ".3f"),
                  _fmt(t.median_block_sd, ".4f"), _fmt(t.median_pair_sd, ".4f"),
                  _count(t.median_processes_needed), _count(t.median_processes_needed_small),
                  _fmt(t.median_round_sd, ".4f"))
                 for t in mode.tests)
    return ("test", "sd of log ratio over sessions", "same, runs / control", "median 95 % half-width (log)",
            "same, runs / control", "mean passes", "max passes", "could detect (median, 95 % power)",
            "sd of a block within its pair (log; median of the sessions past one pass)", "sd between pairs (same)",
            "processes a side to state its min effect (same)", "processes a side to state 3 % (same)",
            "sd of a round within its run, change side (median, log)"), rows


def _count(processes: int | None) -> str:
    if processes is None:
        return "-"
    return f"> {MAX_ADVISED_PROCESSES}" if processes > MAX_ADVISED_PROCESSES else str(processes)


def gate_summary(figures: GateFigures, *, name: str, title: str, made: Provenance, notes: Sequence[str] = ()
                 ) -> Summary:
    """The study summary of one results folder."""
    modes = _ordered(figures)
    tables = [("Per test", *_per_test(modes))]
    aa = figures.mode("aa")
    if aa is not None and aa.tests:
        tables.append(("Per test, A/A: spread of the paired ratio (recomputed from the stored runs)", *_spread(aa)))
    if figures.session_command:
        note = "# each A/A session ran (paths as on the machine that ran it):"
        made = replace(made, commands=(*made.commands, "", note, shlex.join(figures.session_command)))
    return Summary(
        name=name, title=title, headline=headline(figures), provenance=made,
        columns=("sessions", "comparisons", "verdicts", "rate (Wilson 95 %)", "median wall time"),
        rows=tuple(_mode_row(m, figures.wall_ratio) for m in modes), notes=tuple(notes), figures=_compact(figures),
        tables=tuple(tables))


def _compact(figures: GateFigures) -> dict[str, object]:
    """The figures a docs page reads: per mode the counts, rates and wall time; per test its verdicts."""
    def test(t: TestFigures) -> dict[str, object]:
        return {"regressed": t.regressed, "improved": t.improved, "comparisons": t.comparisons,
                "min_effect": t.min_effect, "median_ratio": t.median_ratio, "log_ratio_sd": t.log_ratio_sd,
                "mean_passes": t.mean_passes, "median_detectable": t.median_detectable,
                "median_block_sd": t.median_block_sd, "median_pair_sd": t.median_pair_sd,
                "median_processes_needed": t.median_processes_needed,
                "median_processes_needed_small": t.median_processes_needed_small,
                "median_round_sd": t.median_round_sd}

    modes: dict[str, object] = {}
    for m in figures.modes:
        data = {key: value for key, value in m.to_json().items() if key != "tests"}
        data["tests"] = {t.name: test(t) for t in m.tests}
        modes[m.mode] = data
    return {"modes": modes, "wall_ratio_against_over_single": figures.wall_ratio}
