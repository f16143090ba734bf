"""Studies of pytest-modelperf itself: scripts that measure the gate, the controls and llama.cpp's costs.

Each study writes its raw sessions outside the repository (to a folder the user names, by default
under ``~/.cache/modelperf/studies/``) and one compact summary per study into ``docs/studies/``; see
``benchmarks/README.md``.
"""
