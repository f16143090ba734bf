"""Inner ``--against`` sessions shared by the tests of this package: each scenario is one session over
one tiny repository, and every test asserts one behaviour of it (a session costs seconds; an assertion
costs nothing). Under pytest-xdist the workers share each session too: each is run once, under a file
lock in the run's common temporary folder, by a worker that needs it while no other is running it, and
the others read what it printed."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from tests.ab.helpers import STRUCTURAL, Session, commit, run_against, spin, write

CRASH = """
    import os, signal
    import pytest

    @pytest.mark.latency
    def test_{name}(benchmark):
        if {crash}:
            os.kill(os.getpid(), signal.SIGSEGV)
        benchmark(sum, range(1000))
"""

ACCURACY = """
    import pytest

    from modelperf.measure.accuracy import evaluate_sentiment
    from modelperf.models.base import Classification

    WRONG = {wrong}  # examples this version gets wrong, out of 200

    class StandIn:
        class info:
            key, name = "stand-in@0123456789ab", "stand-in"

        def classify(self, texts):
            labels = [int(t.split()[-1]) % 2 ^ (int(t.split()[-1]) < WRONG) for t in texts]
            return Classification(tuple(labels), tuple((0.2, 0.8) if x else (0.8, 0.2) for x in labels),
                                  ("negative", "positive"))

    @pytest.mark.accuracy
    def test_{name}(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
"""

MEMORY = """
    import pytest

    MIB = {mib}

    @pytest.mark.peak_memory
    def test_{name}():
        block = bytearray(MIB * 1024 * 1024)
        assert len(block) == MIB * 1024 * 1024
"""

# A perplexity test as the shipped suite writes it: no marker, the `accuracy` fixture records the figure.
PERPLEXITY = """
    from types import SimpleNamespace

    SCALE = {scale}

    def test_{name}(accuracy):
        model = SimpleNamespace(info=SimpleNamespace(key="stand-in@0123456789ab"))
        accuracy.record_perplexity(model, SimpleNamespace(value=20.0 * SCALE, scored_tokens=500, chunks=1,
                                                          context=512))
"""

UNMARKED = """
    import pytest

    @pytest.fixture
    def recorder(request):
        from modelperf.pytest.plugin import get_hooks
        return get_hooks(request.config).instrument(request.node, "accuracy")

    def test_records(recorder):
        from modelperf.records import Kind, Measurement
        recorder.record(Measurement(
            "test_rec.py::test_records", Kind.ACCURACY, "perplexity", "ppl", 20.0, (20.0,), (), None))
"""

NOTHING = """
    import pytest

    CALL = {call}

    @pytest.mark.latency{mark}
    def test_nothing(benchmark):
        if CALL:
            benchmark(sum, range(5000))
"""

# Each timed call logs its side, process and start/end times, in a file outside both trees. A call
# of 0.12 s is longer than a turn (TURN_S), so every round hands the turn over, and "slow"
# (REWARM_BELOW_S): the first block's two runs warm up and tell the controller its time per call, the
# later blocks' runs do not warm up. Sleeping, not computing: the schedule is the point, not the CPU;
# the virtual clock (see tests/ab/helpers.py) is told the same time.
PACED = """
    import os, time
    import pytest
    import vclock

    SIDE = {side!r}

    def work():
        start = time.perf_counter()
        time.sleep(0.12)
        vclock.spend(0.12)
        with open({log!r}, "a") as out:
            out.write(f"{{SIDE}} {{os.getpid()}} {{start}} {{time.perf_counter()}}\\n")

    @pytest.mark.latency{mark}
    def test_paced(benchmark):
        benchmark(work)
"""

# An untimed test that waits (up to 30 s) for the other side's run of it to start, then writes whether
# it came: both sides' runs of a memory or accuracy test overlap only if the controller starts them at
# once. The marks of each side's copy differ only in SIDE, so both collect the same test.
MEETING = """
    import time
    from pathlib import Path
    import pytest

    SIDE, FOLDER = {side!r}, Path({folder!r})

    def meet(name):
        other = "change" if SIDE == "base" else "base"
        (FOLDER / f"{{name}}-{{SIDE}}.started").touch()
        deadline = time.monotonic() + 30
        while not (FOLDER / f"{{name}}-{{other}}.started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (FOLDER / f"{{name}}-{{SIDE}}.met").write_text(str((FOLDER / f"{{name}}-{{other}}.started").exists()))

    @pytest.mark.peak_memory
    def test_meet_memory():
        meet("memory")
        assert len(bytearray(1024 * 1024)) == 1024 * 1024

    @pytest.mark.accuracy
    def test_meet_accuracy(accuracy, sentiment_data):
        meet("accuracy")
        from modelperf.models.base import Classification

        class Fixed:
            class info:
                key, name = "fixed@0123456789ab", "fixed"

            def classify(self, texts):
                return Classification(tuple(1 for _ in texts), tuple((0.2, 0.8) for _ in texts),
                                      ("negative", "positive"))

        accuracy.evaluate(Fixed(), sentiment_data)
"""


def _sentiment(root: Path) -> None:
    lines = ["sentence\tlabel"] + [f"review number {i}\t{i % 2}" for i in range(200)]
    (root / "data.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _shared(factory: pytest.TempPathFactory, name: str, run: Callable[[Path], Session], *,
            wait: bool = True) -> tuple[Session, Path]:
    """``run(folder)`` once per test run, however many xdist workers ask: (its session, its folder).
    Without ``wait``, raises :class:`filelock.Timeout` at once where another worker is running it now."""
    root = factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # the folder all workers of this run share
    folder, done = root / f"ab-{name}", root / f"ab-{name}.json"
    with FileLock(str(root / f"ab-{name}.lock"), timeout=-1 if wait else 0):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what an interrupted attempt left
            folder.mkdir()
            session = run(folder)
            done.write_text(json.dumps({"ret": session.ret, "output": session.output}), encoding="utf-8")
        found = json.loads(done.read_text(encoding="utf-8"))
    return Session(int(found["ret"]), str(found["output"])), folder


def _all_shared(factory: pytest.TempPathFactory) -> dict[str, tuple[Session, Path]]:
    """Every shared session of this package. A worker first runs those no other worker is running, and
    waits only for the rest: under xdist the sessions run side by side, none with a worker idle on its lock."""
    runs: dict[str, Callable[[Path], Session]] = {"changed": _changed, "clean": _clean}
    found: dict[str, tuple[Session, Path]] = {}
    for name, run in runs.items():
        try:
            found[name] = _shared(factory, name, run, wait=False)
        except Timeout:
            continue  # another worker runs it now: take the next one meanwhile
    return {name: found.get(name) or _shared(factory, name, run) for name, run in runs.items()}


@pytest.fixture(scope="package")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Session, Path]]:
    return _all_shared(tmp_path_factory)


@pytest.fixture(scope="package")
def changed(shared: dict[str, tuple[Session, Path]]) -> tuple[Session, Path]:
    """One session where the change differs from the base in every way a test can: (its result, its folder)."""
    return shared["changed"]


@pytest.fixture(scope="package")
def clean(shared: dict[str, tuple[Session, Path]]) -> tuple[Session, Path]:
    """A session started in a subdirectory of its repository where nothing measured changed:
    (its result, its folder, where its TMPDIR pointed: ``tmp``)."""
    return shared["clean"]


# Ten times the work, at an alpha of 0.2: with 3 pairs (2 degrees of freedom) the first look's level then
# needs a t near 12 (near 60 at the default alpha), which a tenfold slowdown reaches at once, so the
# verdict comes at the first look rather than after more passes of blocks.
_SLOWER = "(alpha=0.2)"


def _changed(folder: Path) -> Session:
    repo = folder / "repo"
    repo.mkdir()
    _sentiment(repo)
    paced = folder / "paced.log"
    write(repo, {
        "test_same.py": spin(20000),
        "test_slower.py": spin(20000, mark=_SLOWER).replace("test_spin", "test_slower"),
        "test_kept.py": "def test_kept():\n    assert True\n",
        "test_crash_base.py": CRASH.format(name="crash_base", crash=True),
        "test_crash_change.py": CRASH.format(name="crash_change", crash=False),
        "test_acc_same.py": ACCURACY.format(name="acc_same", wrong=0),
        "test_acc_worse.py": ACCURACY.format(name="acc_worse", wrong=0),
        "test_mem_grow.py": MEMORY.format(name="mem_grow", mib=16),
        "test_ppl_same.py": PERPLEXITY.format(name="ppl_same", scale=1.0),
        "test_ppl_worse.py": PERPLEXITY.format(name="ppl_worse", scale=1.0),
        "test_rec.py": UNMARKED,
        "test_nothing.py": NOTHING.format(call=True, mark=STRUCTURAL),  # the base times the call
        "test_paced.py": PACED.format(side="base", log=str(paced), mark=STRUCTURAL),
        "test_meeting.py": MEETING.format(side="base", folder=str(folder)),
        "test_broken.py": spin(5000).replace("test_spin", "test_broken") + "\nthis is not python\n",
    })
    commit(repo)
    write(repo, {  # the working tree: the change
        "test_slower.py": spin(200000, mark=_SLOWER).replace("test_spin", "test_slower"),
        "test_crash_base.py": CRASH.format(name="crash_base", crash=False),
        "test_crash_change.py": CRASH.format(name="crash_change", crash=True),
        "test_acc_worse.py": ACCURACY.format(name="acc_worse", wrong=30),
        "test_mem_grow.py": MEMORY.format(name="mem_grow", mib=48),
        "test_ppl_worse.py": PERPLEXITY.format(name="ppl_worse", scale=1.5),  # scores the text otherwise
        "test_nothing.py": NOTHING.format(call=False, mark=STRUCTURAL),  # the change never times it
        "test_paced.py": PACED.format(side="change", log=str(paced), mark=STRUCTURAL),
        "test_meeting.py": MEETING.format(side="change", folder=str(folder)),
        "test_broken.py": spin(5000).replace("test_spin", "test_broken"),  # the change mends it
    })
    # Its own TMPDIR: a failing session keeps its workers' logs there, for people to read.
    # One model thread a side, so that two cores hold both sides' memory and accuracy runs at once.
    return run_against(repo, "-rA", "--accuracy-dataset", "data.tsv", "--results-json", str(folder / "results.json"),
                       "--llama-threads", "1", "--distilbert-threads", "1", env={"TMPDIR": str(folder)})


def _clean(folder: Path) -> Session:
    repo, temp = folder / "repo", folder / "tmp"
    temp.mkdir()
    write(repo, {"pyproject.toml": "[tool.pytest.ini_options]\n",  # the rootdir is the repository, above the tests
                 "sub/test_spin.py": spin(20000), "sub/test_old.py": spin(5000).replace("test_spin", "test_old"),
                 "sub/test_kept.py": "def test_kept():\n    assert True\n"})
    commit(repo)
    (repo / "sub" / "test_old.py").unlink()
    write(repo, {"sub/test_new.py": spin(5000).replace("test_spin", "test_new")})
    # A budget no pass fits, from the environment: every latency test gets one pass (its first look is then its cap).
    return run_against(repo / "sub", ".", "--summary-markdown", "summary.md", "--results-json", "results.json", "-rA",
                       env={"TMPDIR": str(temp), "MODELPERF_AGAINST_BUDGET": "0.001"})
