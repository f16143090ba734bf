"""Offline simulation of the latency gate: false-alarm and detection rates of compare_latency.

Draws synthetic sessions and prints, per scenario, how often ``compare_latency`` (with the
confirm-by-rerun step the plugin uses) says REGRESSED for injected slowdowns of 0/5/10/15/20 %.
Use it to tune ``decide.EFFECT_SHARE`` before the real gate benchmark runs on the machine.

Noise model, per session (one baseline save or one comparison run):

* ``drift``: the whole machine is faster/slower by a factor applied to samples AND control;
* ``track``: the control's imperfect tracking of the model, a lognormal factor (sd ``track``)
  applied to the samples only. This is the residual the correction cannot remove, so it sets the
  false-alarm rate; a rerun in the same session keeps it (the pessimistic case);
* per round: lognormal noise (sd ``cv``) and, with probability ``outlier_p``, a 1.3-2.5x outlier.

Run: ``python benchmarks/gate_simulation.py [--trials 200]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from modelperf import decide
from modelperf.decide import Verdict, compare_latency, confirm, should_confirm
from modelperf.records import Kind, Measurement

__all__ = ["Scenario", "main", "regression_rate"]

EFFECTS = (0.0, 0.05, 0.10, 0.15, 0.20)
_MODEL_SECONDS = 0.0123  # a DistilBERT-sized forward pass
_CONTROL_SECONDS = 0.003  # one control round


@dataclass(frozen=True)
class Scenario:
    """One noise setting; ``drift`` multiplies the current session only."""

    name: str
    rounds: int = 30
    control_rounds: int = 60  # the plugin times 3 control rounds every 5 timed rounds: 60 in 100
    cv: float = 0.04
    outlier_p: float = 0.03
    track: float = 0.02
    drift: float = 1.0
    use_control: bool = True


def _rounds(rng: np.random.Generator, median: float, n: int, sc: Scenario) -> tuple[float, ...]:
    values = median * rng.lognormal(0.0, sc.cv, n)
    outliers = rng.random(n) < sc.outlier_p
    values[outliers] *= rng.uniform(1.3, 2.5, int(outliers.sum()))
    return tuple(float(v) for v in values)


def _session(rng: np.random.Generator, sc: Scenario, drift: float, slowdown: float,
             track: float) -> Measurement:
    speed = drift * track
    samples = _rounds(rng, _MODEL_SECONDS * speed * (1 + slowdown), sc.rounds, sc)
    control = _rounds(rng, _CONTROL_SECONDS * drift, sc.control_rounds, sc) if sc.use_control else ()
    return Measurement("sim", Kind.LATENCY, "latency", "s", float(np.median(samples)), samples, control)


def regression_rate(sc: Scenario, slowdown: float, trials: int, seed: int) -> float:
    """Share of ``trials`` simulated comparisons that end REGRESSED after the confirm rerun."""
    rng = np.random.default_rng(seed)
    regressed = 0
    for _ in range(trials):
        base = _session(rng, sc, 1.0, 0.0, rng.lognormal(0.0, sc.track))
        session_track = rng.lognormal(0.0, sc.track)
        result = compare_latency(base, _session(rng, sc, sc.drift, slowdown, session_track))
        if should_confirm(result):
            rerun = compare_latency(base, _session(rng, sc, sc.drift, slowdown, session_track))
            result = confirm(result, rerun)
        regressed += result.verdict is Verdict.REGRESSED
    return regressed / trials


# "measured here": per-round cv of the real DistilBERT adapter at 1 thread on the 2-core dev VM, and
# the per-test spread of p10(model) / p10(control) with the control interleaved (1.2 % on a quiet
# machine; see modelperf.measure.latency).
SCENARIOS = (
    Scenario("quiet: cv 4 %, track 1 %", track=0.01),
    Scenario("typical: cv 4 %, track 2 %"),
    Scenario("noisy: cv 8 %, track 2 %, 8 % outliers", cv=0.08, outlier_p=0.08),
    Scenario("measured here: cv 7 %, track 1.2 %, 100 rounds, 60 controls", rounds=100, control_rounds=60,
             cv=0.07, track=0.012),
    Scenario("drift x0.9 (machine got faster), track 2 %", drift=0.9),
    Scenario("drift x1.5 (busy neighbour), track 3 %", drift=1.5, track=0.03),
    Scenario("few rounds: n=10, track 2 %", rounds=10),
    Scenario("NO control, drift x0.9", drift=0.9, use_control=False),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="comparisons per cell (default 200)")
    parser.add_argument("--effect-share", type=float, default=decide.EFFECT_SHARE,
                        help=f"share of min_effect the ratio must reach (default {decide.EFFECT_SHARE})")
    args = parser.parse_args()
    decide.EFFECT_SHARE = args.effect_share  # read at call time, so the whole run uses this value
    print(f"EFFECT_SHARE {decide.EFFECT_SHARE}, {args.trials} comparisons per cell")
    header = "".join(f"{f'+{e:.0%}':>7}" for e in EFFECTS)
    print(f"{'scenario (rate of REGRESSED; +0 % = false alarms)':52}{header}")
    for index, scenario in enumerate(SCENARIOS):
        rates = [regression_rate(scenario, e, args.trials, seed=1000 * index + k)
                 for k, e in enumerate(EFFECTS)]
        print(f"{scenario.name:52}" + "".join(f"{r:7.1%}" for r in rates), flush=True)


if __name__ == "__main__":
    main()
