"""The paired gate benchmark: ``pytest --benchmark --against REF`` sessions as users run them.

Run it as ``python -m benchmarks.gate`` from the repository root (``--help`` lists the modes). Its
parts: :mod:`.worktrees` (the change tree), :mod:`.slowdown` (the injected work), :mod:`.plan` (the
modes and the order of sessions), :mod:`.sessions` (running and supervising them), :mod:`.analysis`
(figures from the sessions' files, as the records of :mod:`.figures`), :mod:`.summary` (printing them,
and the study summary), :mod:`.check` (the injected work timed in one process), :mod:`.cli`.
This package module imports nothing, so that pytest can load :mod:`.slowdown` as a plugin cheaply.
"""
