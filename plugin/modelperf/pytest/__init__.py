"""The pytest face: the only part of modelperf that imports pytest (hooks, options, fixtures)."""
