"""Loading the plugin imports none of the heavy libraries: a plain `pytest` run pays for none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "llama_cpp", "numpy", "scipy", "sqlalchemy", "memray", "matplotlib", "plotly",
         "sklearn")


def test_importing_the_plugin_loads_no_model_or_statistics_library() -> None:
    code = ("import sys, modelperf.pytest.plugin; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "", f"loaded at plugin import: {done.stdout.strip()}"


def test_a_plain_pytest_session_loads_no_model_or_statistics_library(tmp_path: Path) -> None:
    # The session's pipeline is built in every run; an instrument's module (memray's) loads only with a test
    # that uses its marker.
    (tmp_path / "conftest.py").write_text(
        "import sys\n\n"
        "def pytest_unconfigure(config):\n"
        f"    print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(tmp_path)], check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    [loaded] = [line for line in done.stdout.splitlines() if line.startswith("LOADED:")]
    assert loaded == "LOADED:", loaded
