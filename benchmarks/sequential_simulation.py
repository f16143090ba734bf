"""Offline simulation of ``--against``'s sequential design: false alarms, detection and blocks used.

Draws seeded sequences of blocks (a block's log ratio is the true effect, the session's offset between
the two trees, its process pair's own offset and the block's noise) and runs the plugin's own look rule (:func:`modelperf.decide.sequential.stop_rule`)
after every block, as :func:`modelperf.decide.compare_paired` does. Prints, per noise setting and
effect, how often the sequence ended regressed, improved or equivalent, and its mean blocks.

Run: ``python benchmarks/sequential_simulation.py [--sequences 20000] [--passes 6]`` (seconds; prints only).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from modelperf.decide.sequential import MAX_PASSES, Design, Stop, stop_rule

__all__ = ["main", "sequences_ended", "simulate"]

# (block sd, pair sd, session sd): the noisiest shipped test's block spread (Llama decode, 4 %), a mix, a
# quiet test, a process pair's offset dominating, Llama decode's spread of per-pair ratios in the +5 %
# gate sessions at 19a6e52 (1.8 %), and a busy machine; then two of them with an offset of 1 % sd
# between the two trees of a session, shared by all its process pairs (suspected at df03228, where a
# model without it promised that the tighter equivalence margin would cost no blocks; but the final
# ratios there spread over sessions by 0.8-1.1 % (sd of the log ratio), no more than the sessions'
# own standard errors of 1.1-1.4 %, so there is no sign of one); last, a noisy evening's Llama decode.
NOISE = ((0.04, 0.0, 0.0), (0.02, 0.01, 0.0), (0.01, 0.0, 0.0), (0.005, 0.02, 0.0), (0.018, 0.0, 0.0),
         (0.1, 0.0, 0.0), (0.018, 0.0, 0.01), (0.02, 0.01, 0.01),
         (0.117, 0.039, 0.0))  # A/A at bca9147, split by decide.paired.block_spread
# No change, 0.7 of the minimum effect (the equivalence margin), 0.9 of it, the minimum effect, twice it.
EFFECTS = (0.0, 0.035, 0.045, 0.05, 0.10)


def sequences_ended(log_effect: float, block_sd: float, pair_sd: float, *, sequences: int, processes: int,
                    passes: int = MAX_PASSES, alpha: float = 0.01, min_effect: float = 0.05,
                    session_sd: float = 0.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The whole procedure on ``sequences`` simulated tests: (the Stop code each ended with, the blocks it took).

    A block's log ratio is ``log_effect``, the session's offset (sd ``session_sd``, the same for every
    block of the sequence: the t-test over pairs cannot see it), its process pair's own offset (sd
    ``pair_sd``, the same for every block of that pair) and the block's noise; each look averages the blocks of a pair first
    and runs :func:`stop_rule` on the pairs, as :func:`modelperf.decide.compare_paired` does.
    """
    rng = np.random.default_rng(seed)
    design = Design(processes, alpha, passes)
    blocks = design.max_blocks
    values = (log_effect + rng.normal(0.0, pair_sd, (sequences, processes))[:, np.arange(blocks) % processes]
              + rng.normal(0.0, block_sd, (sequences, blocks)))
    if session_sd > 0:  # drawn after the rest, so that a row without it repeats the seed's old sequences
        values += rng.normal(0.0, session_sd, (sequences, 1))
    code, used = np.zeros(sequences, dtype=int), np.full(sequences, blocks)
    sums, counts = np.zeros((sequences, processes)), np.zeros(processes)
    for block in range(blocks):
        sums[:, block % processes] += values[:, block]
        counts[block % processes] += 1
        if block + 1 < design.first_look:
            continue
        pairs = min(block + 1, processes)
        means = sums[:, :pairs] / counts[:pairs]
        found = stop_rule(means.mean(axis=1), means.std(axis=1, ddof=1) / math.sqrt(pairs), pairs - 1,
                          design.level(block + 1), min_effect)
        new = (code == Stop.GO_ON) & (found != Stop.GO_ON)
        code[new], used[new] = found[new], block + 1
    return code, used


def simulate(effect: float, block_sd: float, pair_sd: float, *, sequences: int, processes: int, passes: int,
             alpha: float = 0.01, min_effect: float = 0.05, session_sd: float = 0.0,
             seed: int = 1) -> tuple[float, float, float, float]:
    """(regressed, improved, equivalent) shares and mean blocks over ``sequences`` simulated tests."""
    code, used = sequences_ended(math.log1p(effect), block_sd, pair_sd, sequences=sequences, processes=processes,
                                 passes=passes, alpha=alpha, min_effect=min_effect, session_sd=session_sd, seed=seed)
    return (float((code == Stop.REGRESSED).mean()), float((code == Stop.IMPROVED).mean()),
            float((code == Stop.EQUIVALENT).mean()), float(used.mean()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=10, help="worker processes a side (default 10, --against's)")
    parser.add_argument("--passes", type=int, default=MAX_PASSES)
    args = parser.parse_args(argv)
    print(f"{args.processes} processes a side, up to {args.passes} passes, alpha 0.01, min_effect 5 %, "
          f"{args.sequences} sequences a row")
    print("block sd  pair sd  session sd  effect  regressed  improved  equivalent  mean blocks")
    for block_sd, pair_sd, session_sd in NOISE:
        for effect in EFFECTS:
            regressed, improved, equivalent, used = simulate(
                effect, block_sd, pair_sd, sequences=args.sequences, processes=args.processes, passes=args.passes,
                session_sd=session_sd)
            print(f"{block_sd:8.3f}  {pair_sd:7.3f}  {session_sd:10.3f}  {effect:+6.1%}  {regressed:9.4f}  "
                  f"{improved:8.4f}  {equivalent:10.3f}  {used:11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
