"""Try each model once in a child process before the session uses it.

A crash inside a native model library ends whatever process it happens in: llama.cpp's AMX weight
repacking, for one, dies with SIGSEGV on the first evaluation on some Intel Xeons. Loading the
model and evaluating it once in a short-lived child turns such a crash (or a hang) into a result:
the tests that need that model fail with one sentence, and the rest of the session runs on and
writes its summary, baselines and history. The child warms the page cache and the caches under
``~/.cache/modelperf``, so the session's own load afterwards costs little more than before.

The child is ``python -m modelperf.models.probe REQUEST.json RESULT.json``. It writes the result in
two steps (after the import, then after the evaluation), so a crash still leaves what it learnt
about the library, such as llama.cpp's system-info line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelperf.models.base import Model, UnsupportedOperation
from modelperf.processes import interrupt_deferred

__all__ = ["ProbeRequest", "ProbeResult", "evaluate_once", "probe_models", "system_info"]

# What the probe asks of a model: the shortest call that runs its whole forward pass.
_PROBE_TEXT = "A short sentence to check that the model runs."
# Seconds a killed child gets to go away before the probe stops waiting for it.
_REAP_S = 5.0
# How often the children are polled: small against a probe's seconds, cheap in CPU.
_POLL_S = 0.05


@dataclass(frozen=True)
class ProbeRequest:
    """Which model to try, how to load it (JSON-safe keyword arguments of the loader) and what to say."""

    model: str
    load_arguments: Mapping[str, Any]
    describe: str  # e.g. "the Llama model /models/llama-2-7b.gguf"
    crash_hint: str  # the likely cause and the option that changes it, for a crash


@dataclass(frozen=True)
class ProbeResult:
    model: str
    ok: bool
    seconds: float
    problem: str | None = None  # one sentence when the child crashed or hung
    system_info: str | None = None  # llama.cpp's llama_print_system_info(), when the child got that far
    note: str | None = None  # why a child that did not crash still did not evaluate the model

    def line(self) -> str:
        """The summary line: what the probe found and what it cost."""
        if self.problem is not None:
            return f"{self.model}: {self.problem}"
        what = self.note or "loaded and evaluated once without a crash"
        return f"{self.model}: {what} ({self.seconds:.1f} s in a child process)"


def evaluate_once(model: Model) -> None:
    """One full evaluation: a generated token where the model generates, else a classification."""
    try:
        model.generate(_PROBE_TEXT, 1)
    except UnsupportedOperation:
        model.classify([_PROBE_TEXT])


def probe_models(requests: list[ProbeRequest], timeout: float) -> list[ProbeResult]:
    """Run every request's child at once (they mostly wait on disk and imports) and collect the results."""
    with interrupt_deferred():  # a Ctrl-C between making the folder and owning it would leave it behind
        temporary = tempfile.TemporaryDirectory(prefix="modelperf-probe-")
    with temporary as name:
        folder = Path(name)
        children: list[subprocess.Popen[bytes]] = []
        try:
            for request in requests:
                with interrupt_deferred():  # a started child is always in the list the clean-up stops
                    children.append(_start(request, folder))
            begun = time.monotonic()
            ended: dict[int, float] = {}
            while len(ended) < len(children) and time.monotonic() - begun < timeout:
                for index, child in enumerate(children):
                    if index not in ended and child.poll() is not None:
                        ended[index] = time.monotonic()
                time.sleep(_POLL_S)
            return [_result(request, child, folder, ended.get(index), begun, timeout)
                    for index, (request, child) in enumerate(zip(requests, children))]
        except BaseException:  # Ctrl-C: the children run in sessions of their own and would outlive the session
            for child in children:
                if child.poll() is None:
                    _kill(child)
            raise


def _start(request: ProbeRequest, folder: Path) -> subprocess.Popen[bytes]:
    source = folder / f"{request.model}-request.json"
    source.write_text(json.dumps({"model": request.model, "load_arguments": dict(request.load_arguments)}))
    # A session of its own, so a hung child and anything it started are killed together. Its output is
    # dropped: a crash speaks through the exit signal, a Python error again in the session's own load.
    return subprocess.Popen(
        [sys.executable, "-m", "modelperf.models.probe_child", str(source), str(folder / f"{request.model}-result.json")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _result(request: ProbeRequest, child: subprocess.Popen[bytes], folder: Path, ended: float | None, begun: float,
            timeout: float) -> ProbeResult:
    found = _read(folder / f"{request.model}-result.json")
    system_info = found.get("system_info")
    if ended is None:
        _kill(child)
        return ProbeResult(request.model, False, time.monotonic() - begun, (
            f"{_capital(request.describe)} did not finish loading and evaluating once within {timeout:g} s in the "
            "probe process, which was stopped: raise --model-probe-timeout if the model is just slow to load, "
            "or check the model file and its library."), system_info)
    seconds = ended - begun
    if child.returncode < 0:
        name = _signal_name(-child.returncode)
        return ProbeResult(request.model, False, seconds, (
            f"{_capital(request.describe)} crashed the probe process with {name} (signal {-child.returncode}) while "
            f"loading it and evaluating once, so its tests fail without running: {request.crash_hint}"), system_info)
    if child.returncode != 0 or found.get("unavailable"):
        # A Python error or an unusable file, not a crash: the session's own load meets it and reports it.
        return ProbeResult(request.model, True, seconds, system_info=system_info,
                           note="its load failed without a crash; the tests that need it say why")
    return ProbeResult(request.model, True, seconds, system_info=system_info)


def _kill(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()
    try:
        child.wait(timeout=_REAP_S)
    except subprocess.TimeoutExpired:
        pass  # an unkillable (D-state) child: leave it to the OS rather than hang the session


def _read(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def system_info(name: str) -> str | None:
    if name != "llama":
        return None
    try:
        import llama_cpp

        return bytes(llama_cpp.llama_print_system_info()).decode(errors="replace").strip()
    except Exception:  # noqa: BLE001 - a missing or odd library only loses this line
        return None
