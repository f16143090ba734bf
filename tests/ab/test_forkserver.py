"""--against's fork server: what it preloads, what a forked worker finds, how its end is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelperf.ab.forkserver import PRELOAD, preload_for, preloadable
from modelperf.ab.runner import AgainstRunner
from modelperf.ab.workers import WORKER_ENV, SideSpec
from modelperf.forking.server import ForkServer, ForkServerError
from modelperf.measure.control import control_modules
from modelperf.models.distilbert import LOADING_MODULES
from modelperf.pytest.against import _control_needed


def test_only_installed_modules_outside_the_project_are_preloaded(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "project_pkg").mkdir()
    (tmp_path / "project_pkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["project_pkg", "pytest", "no_such_module_anywhere"]
    assert preloadable([tmp_path], names) == ["pytest"]  # the project's own is each side's to import
    assert preloadable([], names) == ["project_pkg", "pytest"]


def test_the_preload_is_what_the_selected_tests_import() -> None:
    assert preload_for([], []) == list(PRELOAD)
    assert preload_for(["llama"], []) == [*PRELOAD, "llama_cpp"]  # no torch: llama.cpp times its own control
    assert preload_for(["distilbert"], ["torch"]) == [*PRELOAD, "torch", *LOADING_MODULES]
    assert preload_for(["llama", "distilbert"], ["torch", "torch"]).count("torch") == 1


LATENCY = """
    import pytest

    @pytest.mark.latency
    def test_loop(benchmark):
        benchmark(sum, range(10))
"""
LLAMA_LATENCY = """
    import pytest

    @pytest.mark.latency
    def test_llama(benchmark, llama):
        benchmark(llama.classify, ["a"])
"""
ACCURACY = """
    import pytest

    @pytest.mark.accuracy
    def test_acc(accuracy, distilbert):
        pass

    @pytest.mark.skip
    @pytest.mark.latency
    def test_skipped(benchmark):
        pass
"""


@pytest.mark.parametrize(("sources", "control"), [
    ([LATENCY], True),  # the control block times beside it, in torch where installed
    ([LLAMA_LATENCY], False),  # llama.cpp's own control
    ([ACCURACY], False),  # no latency test runs
    ([LLAMA_LATENCY, ACCURACY, LATENCY], True),
])
def test_the_control_is_preloaded_where_a_selected_latency_test_times_it(pytester: pytest.Pytester,
                                                                        sources: list[str], control: bool) -> None:
    pytester.makepyfile(**{f"test_{index}": source for index, source in enumerate(sources)})
    items, _ = pytester.inline_genitems("--benchmark", "--model-probe-timeout", "0")  # no probe of the models
    assert _control_needed(items) == (control_modules() if control else ())


# The descriptors go by another name than a worker's: a child that found them under WORKER_ENV would
# wait for a controller's commands instead of running its tests.
FDS_ENV = "MODELPERF_TEST_FDS"


def _spawn(server: ForkServer, folder: Path, test: str) -> int:
    """Fork a child that runs pytest on ``test`` in ``folder``; its exit status."""
    (folder / "test_child.py").write_text(test)
    commands, replies = os.pipe(), os.pipe()
    try:
        child = server.spawn(["-q", "-p", "no:randomly", "-p", "no:cacheprovider", "test_child.py"], folder,
                             dict(os.environ), [], folder / "child.log", (commands[0], replies[1]), FDS_ENV)
        return child.wait(120)
    finally:
        for fd in (*commands, *replies):
            os.close(fd)


def test_a_forked_worker_has_torch_threads_as_a_fresh_process_and_its_own_working_directory(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    fresh = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], check=True,
                           capture_output=True, text=True).stdout.strip()
    server = ForkServer(["pytest", "torch"], tmp_path / "server.log")
    try:
        server.wait_ready()
        status = _spawn(server, tmp_path, f"""
import os, torch

def test_threads():
    x = torch.ones(64, 64)
    assert (x @ x).sum().item() == 64 ** 3  # an op runs: torch's thread pool starts here, after the fork
    assert torch.get_num_threads() == {fresh}
    assert os.getcwd() == {str(tmp_path)!r} and os.environ["{FDS_ENV}"].count(",") == 1
    assert "{WORKER_ENV}" not in os.environ
""")
    finally:
        server.close()
    assert status == 0, (tmp_path / "child.log").read_text()


def test_a_worker_killed_by_a_signal_reports_it_as_popen_does(tmp_path: Path) -> None:
    server = ForkServer(["pytest"], tmp_path / "server.log")
    try:
        server.wait_ready()
        status = _spawn(server, tmp_path, "import os, signal\n\ndef test_crash():\n    os.kill(os.getpid(), "
                                          "signal.SIGSEGV)\n")
    finally:
        server.close()
    assert status == -signal.SIGSEGV


def test_a_server_that_cannot_start_is_one_sentence_and_the_workers_start_on_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "lib"  # installed elsewhere than the project, so it is preloaded
    library.mkdir()
    (library / "dies_on_import.py").write_text("import os\nprint('cannot import here')\nos._exit(7)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(library), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(library))
    server = ForkServer(["dies_on_import"], tmp_path / "server.log")
    with pytest.raises(ForkServerError, match=r"fork server ended with status 7 while importing the libraries "
                                              r".*cannot import here.*full log: "):
        server.wait_ready(30)
    server.close()

    said: list[str] = []
    monkeypatch.setattr("modelperf.ab.forkserver.PRELOAD", ("dies_on_import",))
    spec = SideSpec("change", "working tree", tmp_path / "project", (), (), tmp_path / "logs")
    runner = AgainstRunner(spec, None, 3, "HEAD", said.append)
    runner._start_server()
    assert runner.server is None
    assert said and said[0].endswith("; starting each worker as a fresh interpreter instead")
