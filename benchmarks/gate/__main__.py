"""``python -m benchmarks.gate``: see :mod:`benchmarks.gate.cli`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
