"""The GitHub workflow: pull requests against their merge base, pushes to main against baselines and history.

Nothing here runs GitHub Actions; the test reads the workflow as Actions would and checks the
life cycle the README documents: a pull request runs `--against` its merge base with no history and
posts one sticky comment; main restores its newest history, appends and saves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).parent.parent / ".github" / "workflows" / "modelperf.yml"
ON_PR = "github.event_name == 'pull_request'"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def _steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _document()["jobs"]["benchmark"]["steps"]
    return steps


def _using(action: str) -> dict[str, Any]:
    [step] = [s for s in _steps() if str(s.get("uses", "")).startswith(action)]
    return step


def _named(name: str) -> dict[str, Any]:
    [step] = [s for s in _steps() if s.get("name") == name]
    return step


def _suites() -> list[dict[str, Any]]:
    return [s for s in _steps() if str(s.get("run", "")).startswith("pytest --benchmark")]


def test_pushes_to_main_restore_mains_newest_history_file() -> None:
    restore = _using("actions/cache/restore@")
    assert restore["with"]["path"] == "modelperf-history.sqlite"
    assert restore["with"]["restore-keys"] == "modelperf-history-${{ runner.os }}-"
    assert "env.ON_MAIN == 'true'" in restore["if"]  # pull requests run with --history off


def test_only_pushes_to_main_save_the_history_and_each_under_a_new_key() -> None:
    save = _using("actions/cache/save@")
    assert save["with"]["path"] == "modelperf-history.sqlite"
    assert "${{ github.run_id }}" in save["with"]["key"]
    assert "env.ON_MAIN == 'true'" in save["if"] and "always()" in save["if"]
    assert _document()["env"]["ON_MAIN"] == "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}"


def test_a_database_url_secret_is_written_on_main_and_never_reaches_a_pull_request() -> None:
    choose = _named("Choose the history store")
    assert choose["if"] == "env.ON_MAIN == 'true'"
    assert 'echo "MODELPERF_HISTORY=$MODELPERF_HISTORY_URL"' in choose["run"]
    url = _document()["env"]["MODELPERF_HISTORY_URL"]
    assert "github.event_name == 'push' && secrets.MODELPERF_HISTORY_URL" in url
    for step in ("HTML report", "Screenshot of the report in a headless browser"):
        assert "env.ON_MAIN == 'true'" in _named(step)["if"]  # they read main's history
    [upload] = [s for s in _steps() if str(s.get("uses", "")).startswith("actions/upload-artifact@") and "id" not in s]
    assert "modelperf-history.sqlite" in upload["with"]["path"]


def test_the_plugins_own_tests_run_before_the_history_store_is_chosen() -> None:
    names = [s.get("name") for s in _steps()]
    assert names.index("Tests") < names.index("Choose the history store")  # they never write the real history


def test_exactly_one_suite_runs_for_each_event() -> None:
    on_main, on_pr = _suites()
    assert on_main["if"] == "github.event_name != 'pull_request'" and on_pr["if"] == ON_PR
    assert "--history" not in on_main["run"] and "--against" not in on_main["run"]  # MODELPERF_HISTORY, baselines
    for suite in (on_main, on_pr):
        assert "--results-json modelperf-results.json" in suite["run"]
        assert "--summary-markdown modelperf-summary.md" in suite["run"]


def test_a_pull_request_runs_against_its_merge_base_with_no_history() -> None:
    checkout = _using("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0  # the base is checked out into a worktree: it needs history
    base = _named("Merge base of the pull request")
    assert base["if"] == ON_PR and base["id"] == "base"
    assert base["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert 'git merge-base "origin/$BASE_REF" HEAD' in base["run"]
    assert '>> "$GITHUB_OUTPUT"' in base["run"]
    suite = _suites()[1]
    assert suite["env"]["BASE"] == "${{ steps.base.outputs.sha }}"
    assert " ".join(suite["run"].split()) == (
        'pytest --benchmark tests/suite --against "$BASE" --results-json modelperf-results.json '
        "--summary-markdown modelperf-summary.md --history off")
    job = _document()["jobs"]["benchmark"]
    assert job["timeout-minutes"] == 90  # both sides: about twice a single-side run


def test_a_pull_request_gets_one_sticky_comment_even_after_a_regression() -> None:
    comment = _using("marocchino/sticky-pull-request-comment@")
    assert comment["uses"].endswith("@v2")
    assert comment["with"] == {"header": "modelperf", "path": "modelperf-summary.md"}
    assert comment["if"].startswith("always() && " + ON_PR)  # after a failed suite step too
    assert "hashFiles('modelperf-summary.md') != ''" in comment["if"]
    assert comment["continue-on-error"] is True  # forks' read-only token must not fail the check
    names = [s.get("name") for s in _steps()]
    assert names.index("Model suite, the pull request against its merge base") < names.index(
        "Comment the summary on the pull request")
    assert _document()["jobs"]["benchmark"]["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_the_pull_request_comment_links_to_the_uploaded_report() -> None:
    names = [s.get("name") or s.get("id") for s in _steps()]
    report, link = _named("HTML report of the pull request"), _named("Link the summary to the report")
    assert "modelperf report --results modelperf-results.json --html modelperf-report.html" in report["run"]
    [upload] = [s for s in _steps() if s.get("id") == "report"]
    assert upload["with"]["path"] == "modelperf-report.html" and ON_PR in upload["if"]
    assert "--report-url \"$REPORT_URL\"" in link["run"] and "--markdown modelperf-summary.md" in link["run"]
    assert link["env"]["REPORT_URL"] == "${{ steps.report.outputs.artifact-url }}"
    comment = next(i for i, s in enumerate(_steps()) if str(s.get("uses", "")).startswith("marocchino/"))
    assert names.index("HTML report of the pull request") < names.index("report") < \
        names.index("Link the summary to the report") < comment
