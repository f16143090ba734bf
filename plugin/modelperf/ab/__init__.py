"""``--against REF``: the base commit and the change measured in one session, in worker processes.

Nothing here imports pytest. :mod:`~modelperf.ab.git` checks REF out into a temporary worktree,
:mod:`~modelperf.ab.workers` starts and talks to the worker processes of each side (forked by
:mod:`~modelperf.forking` from one fork server that imported the heavy libraries once),
:mod:`~modelperf.ab.plan` orders their runs in ABBA blocks, and :mod:`~modelperf.ab.runner` measures each
test on both sides, block after block until its verdict is sure (:mod:`modelperf.decide.sequential`), and
hands the figures to the one judge (:mod:`modelperf.judge`); :mod:`~modelperf.ab.outcome` reads the
workers' replies into a test's outcome and figures. The pytest face (``modelperf.pytest.against`` and
``modelperf.pytest.worker``) drives them.
"""
