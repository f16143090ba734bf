"""The workflow step that records baselines fails when the save fails: it keeps pytest's exit status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).parents[2] / ".github" / "workflows" / "modelperf.yml"


def _recording_steps() -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    steps = [step for job in document["jobs"].values() for step in job["steps"]]
    # Every suite run outside --against may write baselines (a first run records them; --baseline-save saves).
    return [s for s in steps if str(s.get("run", "")).startswith("pytest --benchmark") and "--against" not in s["run"]]


def test_every_step_that_may_save_baselines_fails_when_pytest_does() -> None:
    steps = _recording_steps()
    assert steps
    for step in steps:
        command = " ".join(str(step["run"]).split())
        assert not step.get("continue-on-error"), step
        assert "|| true" not in command and "; true" not in command and "|" not in command, command
        assert step.get("shell", "bash") in ("bash", "sh"), step  # the default shell stops on a non-zero status
