"""The gate benchmark's planning, analysis, summaries and change tree, on small made-up session files."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import studies
from benchmarks.gate import cli, slowdown
from benchmarks.gate.analysis import analyze
from benchmarks.gate.plan import Mode, parse_slowdown, plan_session, schedule, sessions_done
from benchmarks.gate.sessions import run_session
from benchmarks.gate.worktrees import open_change_tree
from modelperf.decide.sequential import BlockSpread, Design, processes_to_detect

MACHINE = {"cpu_model": "Test CPU", "cpu_physical_cores": 2, "cpu_logical_cores": 4, "memory_gib": 8,
           "cpu_flags": "avx2 amx_tile"}


def _runs(values: list[float], control: float = 0.01) -> list[dict[str, Any]]:
    """Two blocks per process, six processes: the runs of one side."""
    return [{"process": k % 6, "value": v, "control": control, "rounds": 10} for k, v in enumerate(values)]


def _result(test: str, verdict: str, ratio: float, min_effect: float, change_scale: list[float],
            schema: int = 2) -> dict[str, Any]:
    """A result as today's --results-json writes it (each side's runs in ``latency.paired``), or as schema 1
    did (``extra.against``)."""
    base = [0.01 * (1 + k / 100) for k in range(12)]
    change = [b * s for b, s in zip(base, change_scale)]
    runs = {"base": _runs(base), "change": _runs(change), "min_effect": min_effect}
    where = {"latency": {"paired": runs}} if schema == 2 else {"extra": {"against": runs}}
    return {"verdict": verdict, "ratio": ratio, "detectable": 1.0 + min_effect / 2, "measurement": {
        "kind": "latency", "test_id": f"tests/suite/test_latency.py::{test}", "value": 0.01, **where}}


def _session(path: Path, results: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"commit": "a" * 40, "machine": MACHINE, "results": results}))


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    same, slower = [1.0] * 12, [1.05] * 12
    _session(raw / "aa-0.json", [_result("test_a", "pass", 1.0, 0.05, same), _result("test_cold", "pass", 1.0, 0.2, same)])
    _session(raw / "aa-1.json", [_result("test_a", "improved", 0.97, 0.05, [0.97] * 12, schema=1),
                                 _result("test_cold", "pass", 1.0, 0.2, same)])
    _session(raw / "slowdown-0.05-0.json", [_result("test_a", "regressed", 1.05, 0.05, slower),
                                            _result("test_cold", "pass", 1.05, 0.2, slower)])
    (raw / "slowdown-0.05-0.inject.jsonl").write_text('{"pid": 1}\n{"pid": 2}\n{"pid": 1}\n')
    (raw / "aa-2.json").write_text("{not json")  # a session that died mid-write
    (raw / "summary.json").write_text("{}")  # not a session: no <mode>-<i> name
    lines = [{"mode": "aa", "wall_s": 100.0}, {"mode": "aa", "wall_s": 120.0}, {"mode": "single", "wall_s": 55.0}]
    (raw / "sessions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"mode": "aa", "wa')
    _session(raw / "single-0.json", [{"verdict": "new", "measurement": {"kind": "latency", "test_id": "t::test_a"}}])
    return raw


def test_analysis_counts_verdicts_rates_and_exclusions(results_dir: Path) -> None:
    figures = analyze(results_dir)
    aa, slow, single = figures.mode("aa"), figures.mode("slowdown-0.05"), figures.mode("single")
    assert aa is not None and slow is not None and single is not None
    assert (aa.sessions, aa.unreadable_sessions, aa.comparisons, aa.median_wall_s) == (3, 1, 4, 110.0)
    assert aa.false_alarms is not None and (aa.false_alarms.count, aa.false_alarms.of) == (1, 4)
    assert 0 < aa.false_alarms.low < 0.25 < aa.false_alarms.high < 1
    # The cold-load test asks for 20 %: it does not count for detecting 5 %.
    assert slow.detection is not None and (slow.detection.count, slow.detection.of) == (1, 1)
    assert slow.excluded_min_effect_above_factor == 1 and slow.injected_processes == (2,)
    assert single.comparisons == 0 and single.not_compared == {"new": 1}
    assert figures.wall_ratio == pytest.approx(110.0 / 55.0)
    assert figures.revisions == ("a" * 40,) and figures.machine is not None
    assert figures.machine.describe() == "Test CPU, 2 cores (4 logical), 8 GiB; CPU with Intel AMX"


def test_analysis_recomputes_each_sessions_paired_ratio(results_dir: Path) -> None:
    figures = analyze(results_dir)
    slow = figures.mode("slowdown-0.05")
    aa = figures.mode("aa")
    assert slow is not None and aa is not None
    test = next(t for t in slow.tests if t.name == "test_a")
    # Every block of the change ran exactly 5 % slower: the paired ratio is 1.05, its interval has no width.
    assert test.log_ratio_mean == pytest.approx(math.log(1.05))
    assert test.median_half_width == pytest.approx(0.0, abs=1e-12)
    assert test.mean_passes == 2 and test.max_passes == 2  # 12 runs over 6 processes
    assert test.median_detectable == pytest.approx(1.025)  # each verdict's stated power, as the results say it
    spread = next(t for t in aa.tests if t.name == "test_a")
    assert spread.log_ratio_sd == pytest.approx(abs(math.log(0.97)) / math.sqrt(2))


def test_analysis_splits_each_sessions_spread_into_block_noise_and_pair_offsets(tmp_path: Path) -> None:
    # Six process pairs keep offsets of 0, 2 and 4 %; the first pass reads 1 % above them, the second 1 % below.
    offsets = [0.0, 0.02, 0.04] * 2
    scale = [math.exp(offsets[k % 6] + (0.01 if k < 6 else -0.01)) for k in range(12)]
    raw = tmp_path / "raw"
    raw.mkdir()
    _session(raw / "aa-0.json", [_result("test_a", "pass", 1.02, 0.05, scale)])
    aa = analyze(raw).mode("aa")
    assert aa is not None
    test = aa.tests[0]
    block_variance = 2 * 0.01**2  # two blocks at +-1 % around their pair's mean
    assert test.median_block_sd == pytest.approx(math.sqrt(block_variance))
    # The pair means vary by the offsets' variance; their blocks' noise explains block_variance / 2 of it.
    assert test.median_pair_sd == pytest.approx(math.sqrt(statistics.variance(offsets) - block_variance / 2))
    # Six processes a side at these spreads: what the design would need to state 5 % and 3 %.
    spread = BlockSpread(test.median_block_sd, test.median_pair_sd, 6, 12)
    assert test.median_processes_needed == processes_to_detect(spread, Design(6, 0.01), 0.05)
    assert test.median_processes_needed_small == processes_to_detect(spread, Design(6, 0.01), 0.03)
    assert test.median_processes_needed is not None and test.median_processes_needed_small is not None
    assert test.median_processes_needed <= test.median_processes_needed_small
    one_pass = analyze(_one_pass(tmp_path)).mode("aa")
    assert one_pass is not None
    assert one_pass.tests[0].median_block_sd is None and one_pass.tests[0].median_pair_sd is None


def test_analysis_reads_the_machines_noise_from_one_round_to_the_next(tmp_path: Path) -> None:
    # Every run of the change side (10 rounds each, as _runs records) alternates 2 % above and below.
    result = _result("test_a", "pass", 1.0, 0.05, [1.0] * 12)
    result["measurement"]["samples"] = [0.01 * math.exp(0.02 * (-1) ** i) for i in range(120)]
    short = _result("test_b", "pass", 1.0, 0.05, [1.0] * 12)
    short["measurement"]["samples"] = [0.01] * 119  # one round short of the runs' 120: not read
    raw = tmp_path / "raw"
    raw.mkdir()
    _session(raw / "aa-0.json", [result, short])
    aa = analyze(raw).mode("aa")
    assert aa is not None
    noisy, unread = (next(t for t in aa.tests if t.name == name) for name in ("test_a", "test_b"))
    assert noisy.median_round_sd == pytest.approx(0.02 * math.sqrt(10 / 9))
    assert unread.median_round_sd is None


def _one_pass(tmp_path: Path) -> Path:
    """A session whose test stopped within its first pass: one block per process pair."""
    raw = tmp_path / "one-pass"
    raw.mkdir()
    result = _result("test_a", "pass", 1.0, 0.05, [1.0] * 12)
    for side in ("base", "change"):
        result["measurement"]["latency"]["paired"][side] = result["measurement"]["latency"]["paired"][side][:6]
    _session(raw / "aa-0.json", [result])
    return raw


def test_analysis_of_a_missing_folder_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory of gate sessions; give the --results-dir"):
        analyze(tmp_path / "nowhere")


def test_cli_writes_a_summary_and_the_index(results_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "studies"
    out = tmp_path / "figures.json"
    code = cli.main(["--analyze", str(results_dir), "--summary", "gate-test", "--studies-dir", str(docs),
                     "--date", "2026-01-02", "--study-command", "python -m benchmarks.gate --aa 2", "--out", str(out)])
    assert code == 0
    assert "false alarms (regressed + improved): 1/4" in capsys.readouterr().out
    markdown = (docs / "gate-test.md").read_text()
    assert "| A/A, 3 | 4 | 0 regressed, 1 improved | false alarms 25 % (" in markdown
    assert "| +5 % injected, 1 | 1 of tests with min_effect up to 5 % | 1 regressed | detected 100 % (" in markdown
    assert "- Revision: `aaaaaaaaaa`" in markdown and "python -m benchmarks.gate --aa 2" in markdown
    data = json.loads((docs / "gate-test.json").read_text())
    assert data["figures"]["modes"]["aa"]["false_alarms"]["count"] == 1 and data["date"] == "2026-01-02"
    index = (docs / "index.md").read_text()
    assert "- 2026-01-02: [Paired gate (--against): raw](gate-test.md): A/A: 1 false alarm in 4" in index
    assert json.loads(out.read_text())["modes"]["slowdown-0.05"]["detection"]["count"] == 1


def test_cli_names_a_missing_folder_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--analyze", str(tmp_path / "missing")]) == 2
    assert "gate benchmark: " in capsys.readouterr().err


def test_index_lists_studies_newest_first(tmp_path: Path) -> None:
    def made(date: str) -> studies.Provenance:
        return studies.Provenance(date, "abc", None, ("cmd",))

    for name, date in (("old", "2025-01-01"), ("new", "2026-01-01")):
        studies.write_summary(studies.Summary(name, f"Study {name}", f"{name} figures.", made(date), ("a",),
                                              (("1",),)), tmp_path)
    lines = [line for line in (tmp_path / "index.md").read_text().splitlines() if line.startswith("- ")]
    assert lines == ["- 2026-01-01: [Study new](new.md): new figures.", "- 2025-01-01: [Study old](old.md): old figures."]


def test_raw_files_default_outside_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    raw = studies.raw_dir("against-gate", None)
    assert raw.is_dir() and raw.parent == tmp_path / "modelperf" / "studies"
    assert not raw.is_relative_to(studies.REPO)


def test_provenance_prefers_the_options_then_the_record(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text(json.dumps({"commands": ["python -m benchmarks.gate --aa 1"],
                                                     "started": "2026-02-03", "revision": "b" * 40}))
    args = argparse.Namespace(revision=None, date=None, study_command=[])
    made = studies.provenance(args, tmp_path)
    assert (made.date, made.revision, made.commands) == ("2026-02-03", "b" * 10, ("python -m benchmarks.gate --aa 1",))
    args = argparse.Namespace(revision="c1", date="2026-03-04", study_command=["x"])
    assert studies.provenance(args, tmp_path, revisions=("d" * 40,)).revision == "c1"


@pytest.mark.parametrize(("text", "mode"), [("0.05:10", Mode("slowdown-0.05", 10, 0.05)),
                                             ("0.1:0", Mode("slowdown-0.10", 0, 0.1))])
def test_slowdown_modes_parse(text: str, mode: Mode) -> None:
    assert parse_slowdown(text) == mode


@pytest.mark.parametrize("text", ["0.05", "a:b", "0:3", "0.05:-1", "11:2", "0.05:1:2"])
def test_bad_slowdown_modes_say_what_to_give(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="e.g. 0.05:10"):
        parse_slowdown(text)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=4),
       st.integers(min_value=0, max_value=7))
def test_schedule_runs_each_mode_its_sessions_numbered_after_those_done(counts: list[int], done: int) -> None:
    modes = [Mode(f"m{k}", n) for k, n in enumerate(counts)]
    planned = list(schedule(modes, {"m0": done}))
    for k, mode in enumerate(modes):
        first = done if k == 0 else 0
        assert [i for m, i in planned if m is mode] == list(range(first, first + mode.sessions))
    # Round-robin: no mode runs its (k+1)-th session before every mode with k+1 sessions ran its k-th.
    rounds = [i - (done if m.name == "m0" else 0) for m, i in planned]
    assert rounds == sorted(rounds)


def test_sessions_done_continues_the_numbering(tmp_path: Path) -> None:
    for name in ("aa-0.json", "aa-4.json", "slowdown-0.05-1.json", "summary.json", "aa-0.log"):
        (tmp_path / name).write_text("{}")
    assert sessions_done(tmp_path) == {"aa": 5, "slowdown-0.05": 2}


def test_only_slowdown_sessions_load_the_plugin(tmp_path: Path) -> None:
    common = {"python": "py", "rev": "abc", "tree": tmp_path / "tree", "results_dir": tmp_path, "selection": ("t",),
              "extra": (), "against_processes": 4}
    slow = plan_session(Mode("slowdown-0.05", 1, 0.05), 3, **common)  # type: ignore[arg-type]
    assert slow.env["PYTEST_PLUGINS"] == "benchmarks.gate.slowdown" == slowdown.__name__
    assert slow.env[slowdown.FACTOR_ENV] == "0.05" and slow.env[slowdown.TREE_ENV] == str(tmp_path / "tree")
    assert slow.command[-5:] == ("--against", "abc", "--against-processes", "4", "t")
    assert slow.results == tmp_path / "slowdown-0.05-3.json"
    aa = plan_session(Mode("aa", 1), 0, **common)  # type: ignore[arg-type]
    assert "PYTEST_PLUGINS" not in aa.env and slowdown.FACTOR_ENV not in aa.env
    single = plan_session(Mode("single", 1), 0, **common)  # type: ignore[arg-type]
    assert "--against" not in single.command and str(single.baselines) in single.command


def test_a_session_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    outcome = run_session([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path, tmp_path / "log",
                          {"PATH": "/usr/bin:/bin"}, timeout_s=1.0, neighbour_after_s=None)
    assert outcome.returncode is None and outcome.neighbour_started_s is None


def test_a_session_exit_status_is_kept(tmp_path: Path) -> None:
    outcome = run_session([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], tmp_path, tmp_path / "log",
                          {"PATH": "/usr/bin:/bin"}, timeout_s=60.0, neighbour_after_s=None)
    assert outcome.returncode == 3 and (tmp_path / "log").read_text().strip() == "hello"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_the_change_tree_holds_rev_and_a_copy_of_the_benchmarks(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "plugin").mkdir(parents=True)
    (repo / "plugin" / "marker.txt").write_text("rev one\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    tree = open_change_tree("HEAD", repo)
    try:
        assert (tree.path / "plugin" / "marker.txt").read_text() == "rev one\n" and len(tree.sha) == 40
        assert (tree.import_dir / "benchmarks" / "gate" / "slowdown.py").is_file()
        assert tree.pythonpath("/inherited").split(":") == [str(tree.path / "plugin"), str(tree.import_dir),
                                                           "/inherited"]
    finally:
        tree.remove()
    assert not tree.path.exists() and not tree.import_dir.exists()
