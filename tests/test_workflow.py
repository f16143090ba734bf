"""The GitHub workflow keeps history across runs on main and lets pull requests read it.

Nothing here runs GitHub Actions; the test reads the workflow as Actions would and checks the
life cycle the README documents: restore main's newest history in every run, save only from main.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).parent.parent / ".github" / "workflows" / "modelperf.yml"


def _steps() -> list[dict[str, Any]]:
    document = yaml.safe_load(WORKFLOW.read_text())
    steps: list[dict[str, Any]] = document["jobs"]["benchmark"]["steps"]
    return steps


def _using(action: str) -> dict[str, Any]:
    [step] = [s for s in _steps() if str(s.get("uses", "")).startswith(action)]
    return step


def test_every_run_restores_mains_newest_history_file() -> None:
    restore = _using("actions/cache/restore@")
    assert restore["with"]["path"] == "modelperf-history.sqlite"
    assert restore["with"]["restore-keys"] == "modelperf-history-${{ runner.os }}-"
    assert "ON_MAIN" not in str(restore.get("if", ""))  # pull requests read it too


def test_only_pushes_to_main_save_the_history_and_each_under_a_new_key() -> None:
    save = _using("actions/cache/save@")
    assert save["with"]["path"] == "modelperf-history.sqlite"
    assert "${{ github.run_id }}" in save["with"]["key"]
    assert "env.ON_MAIN == 'true'" in save["if"] and "always()" in save["if"]
    document = yaml.safe_load(WORKFLOW.read_text())
    assert document["env"]["ON_MAIN"] == "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}"


def test_a_database_url_secret_is_written_on_main_and_copied_for_pull_requests() -> None:
    [choose] = [s for s in _steps() if s.get("name") == "Choose the history store"]
    script = choose["run"]
    assert 'echo "MODELPERF_HISTORY=$MODELPERF_HISTORY_URL"' in script
    assert 'modelperf export --history "$MODELPERF_HISTORY_URL" --to modelperf-history.sqlite' in script
    suite = next(s for s in _steps() if str(s.get("run", "")).startswith("pytest --benchmark"))
    assert "--history" not in suite["run"]  # the store comes from MODELPERF_HISTORY
    uploaded = _using("actions/upload-artifact@")["with"]["path"]
    assert "modelperf-history.sqlite" in uploaded


def test_the_plugins_own_tests_run_before_the_history_store_is_chosen() -> None:
    names = [s.get("name") for s in _steps()]
    assert names.index("Tests") < names.index("Choose the history store")  # they never write the real history
