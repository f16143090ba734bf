"""Loading the plugin imports none of the heavy libraries: a plain `pytest` run pays for none of them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "llama_cpp", "numpy", "scipy", "sqlalchemy", "memray", "matplotlib", "plotly",
         "sklearn")


def test_importing_the_plugin_loads_no_model_or_statistics_library() -> None:
    code = ("import sys, modelperf.pytest.plugin; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "", f"loaded at plugin import: {done.stdout.strip()}"
