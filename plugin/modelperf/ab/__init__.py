"""``--against REF``: the base commit and the change measured in one session, in worker processes.

Nothing here imports pytest. :mod:`~modelperf.ab.git` checks REF out into a temporary worktree,
:mod:`~modelperf.ab.workers` starts and talks to the worker processes of each side,
:mod:`~modelperf.ab.plan` orders their runs in ABBA blocks, and :mod:`~modelperf.ab.runner` measures each
test on both sides and hands the figures to the one judge (:mod:`modelperf.judge`). The pytest face (``modelperf.pytest.against`` and ``modelperf.pytest.worker``)
drives them.
"""
