"""Peak memory of a region of code, as two figures that are always named.

**memray peak** is memray's high-water mark: the most bytes that were allocated and not yet freed
at any moment of the tracked region, counting every ``malloc``/``calloc``/``realloc``/``mmap`` the
process made, native code included (torch and llama.cpp allocate in C/C++). It counts what was
*asked for*: an ``mmap`` of a 700 MB GGUF file counts as 700 MB the moment it is mapped, whether
or not a page of it was ever read, and an untouched ``np.empty`` counts in full.

**RSS peak** is the resident set: the pages of the process that sat in physical memory. It is
sampled by a background thread every few milliseconds (plus readings at the start and end and,
on Linux, the kernel's own high-water mark ``VmHWM``, reset at the start of the region). It is
reported both as an absolute figure and as a delta over the region's starting RSS.

The two differ because memory can be mapped without being resident (an mmapped model whose pages
were never touched, ``np.empty``) and resident without being allocated in the region (pages
allocated earlier, shared libraries loaded on first use, the allocator keeping freed arenas).
memray's figure is precise and repeatable, so baselines compare it; the RSS figure says what the
machine actually had to provide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import memray
import psutil

from modelperf.units import format_duration, format_size

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MemoryResult", "MemoryTracker", "measure_in_subprocess"]

# Milliseconds between RSS samples: short enough to catch a model's transient load buffers.
_SAMPLE_INTERVAL_S = 0.005
# How many of the largest allocating locations a report lists.
_TOP_STACKS = 5
# Native frames read per record when looking for the first one that is not an allocator.
_NATIVE_DEPTH = 12
# Frames that only pass memory along; the frame that called them says more.
_ALLOCATOR_FRAMES = ("malloc", "calloc", "realloc", "memalign", "mmap", "PyMem_", "PyObject_", "PyDataMem_")

# memray allows one Tracker per process; this flag lets us say so before memray's terser error.
_active_lock = threading.Lock()
_active_label: str | None = None


@dataclass(frozen=True)
class MemoryResult:
    """What one tracked region used. See the module docstring for what each figure means."""

    memray_peak_bytes: int
    rss_peak_bytes: int
    rss_start_bytes: int
    wall_seconds: float
    capture_path: Path | None = None
    top_stacks: list[str] = field(default_factory=list)

    @property
    def rss_delta_bytes(self) -> int:
        """How far the resident set rose above where it stood when the region began."""
        return self.rss_peak_bytes - self.rss_start_bytes

    def section(self) -> str:
        """A plain-text block for a failure report: both figures, the top stacks, the capture."""
        lines = [
            (
                f"memray peak: {format_size(self.memray_peak_bytes)} "
                "(high-water mark of bytes allocated in the region, native and mmapped included)"
            ),
            (
                f"RSS peak:    {format_size(self.rss_peak_bytes)} resident, "
                f"{format_size(self.rss_delta_bytes)} above the {format_size(self.rss_start_bytes)} "
                "at the start of the region"
            ),
            f"wall time:   {format_duration(self.wall_seconds)}",
        ]
        if self.top_stacks:
            lines.append("Largest allocations at the memray peak (size, count, where):")
            lines.extend(f"  {stack}" for stack in self.top_stacks)
        if self.capture_path is not None:
            lines.append(f"Capture kept at {self.capture_path}; see where the memory went with:")
            lines.append(f"  memray flamegraph {self.capture_path}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["capture_path"] = None if self.capture_path is None else str(self.capture_path)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryResult:
        path = data.get("capture_path")
        return cls(
            memray_peak_bytes=int(data["memray_peak_bytes"]),
            rss_peak_bytes=int(data["rss_peak_bytes"]),
            rss_start_bytes=int(data["rss_start_bytes"]),
            wall_seconds=float(data["wall_seconds"]),
            capture_path=None if path is None else Path(path),
            top_stacks=[str(s) for s in data.get("top_stacks", [])],
        )


class _RssSampler:
    """Polls the resident set on a daemon thread and remembers the highest reading."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelperf-rss", daemon=True)
        self._kernel_reset = _reset_kernel_peak()
        self.start_bytes = self._rss()
        self.peak_bytes = self.start_bytes
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_INTERVAL_S):
            self.peak_bytes = max(self.peak_bytes, self._rss())

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def stop(self) -> int:
        """Stop sampling and return the peak RSS in bytes."""
        self._stop.set()
        self._thread.join()
        final = self._rss()
        kernel = _kernel_peak() if self._kernel_reset else None
        self.peak_bytes = max(self.peak_bytes, final, kernel or 0)
        return self.peak_bytes


def _reset_kernel_peak() -> bool:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so it then covers only our region;
    # where that fails VmHWM is the lifetime peak and must not be used.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _kernel_peak() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class MemoryTracker:
    """Measure the memory a ``with`` block uses; ``.result`` holds a :class:`MemoryResult` after.

    ``keep_capture`` decides the fate of the memray capture file (in ``capture_dir``): ``False``
    deletes it on exit, ``True`` keeps it, ``None`` leaves it until the caller calls
    :meth:`keep` or :meth:`discard`, e.g. after comparing the figure with a baseline.
    If the block raises, no result is set and the capture is deleted unless ``keep_capture`` is True.
    """

    def __init__(
        self,
        capture_dir: Path,
        *,
        native: bool = True,
        keep_capture: bool | None = False,
        label: str = "region",
    ) -> None:
        self.capture_dir = Path(capture_dir)
        self.native = native
        self.keep_capture = keep_capture
        self.label = label
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]
        self.capture_path = self.capture_dir / f"memray-{safe}-{os.getpid()}-{uuid.uuid4().hex[:8]}.bin"
        self.result: MemoryResult | None = None
        self._tracker: memray.Tracker | None = None
        self._sampler: _RssSampler | None = None
        self._started = 0.0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(failed=exc_type is not None)

    def start(self) -> None:
        """Begin tracking (what ``with`` does on entry)."""
        _claim(self.label)
        try:
            self.capture_dir.mkdir(parents=True, exist_ok=True)
            self._tracker = memray.Tracker(
                self.capture_path,
                native_traces=self.native,
                follow_fork=False,
                # Aggregated captures are small and fast to read, and memray flamegraph reads them.
                file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS,
            )
            self._tracker.__enter__()
        except RuntimeError as error:
            _release()
            if "one Tracker" not in str(error):
                raise
            raise RuntimeError(_nested_message(self.label, "another memray Tracker")) from error
        except BaseException:
            _release()
            raise
        self._sampler = _RssSampler()
        self._started = time.perf_counter()

    def stop(self, failed: bool = False) -> None:
        """End tracking (what ``with`` does on exit); ``.result`` is set unless ``failed``."""
        wall = time.perf_counter() - self._started
        assert self._tracker is not None and self._sampler is not None, "stop() without start()"
        # Stop sampling first: memray's flush on exit uses memory the region did not.
        rss_peak = self._sampler.stop()
        try:
            self._tracker.__exit__(None, None, None)
        finally:
            _release()
        if not failed:
            peak, stacks = _read_capture(self.capture_path, native=self.native)
            self.result = MemoryResult(
                memray_peak_bytes=peak,
                rss_peak_bytes=rss_peak,
                rss_start_bytes=self._sampler.start_bytes,
                wall_seconds=wall,
                capture_path=self.capture_path,
                top_stacks=stacks,
            )
        if self.keep_capture is False or (failed and self.keep_capture is None):
            self.discard()

    def keep(self) -> Path:
        """Keep the capture file (for ``memray flamegraph``) and return its path."""
        if not self.capture_path.exists():
            raise RuntimeError(
                f"The memray capture of {self.label!r} at {self.capture_path} is gone; "
                "pass keep_capture=None or True to MemoryTracker to decide after the region ends."
            )
        return self.capture_path

    def discard(self) -> None:
        """Delete the capture file; the result then names no capture."""
        self.capture_path.unlink(missing_ok=True)
        if self.result is not None:
            self.result = replace(self.result, capture_path=None)


def _claim(label: str) -> None:
    global _active_label
    with _active_lock:
        if _active_label is not None:
            raise RuntimeError(_nested_message(label, f"MemoryTracker {_active_label!r}"))
        _active_label = label


def _release() -> None:
    global _active_label
    with _active_lock:
        _active_label = None


def _nested_message(label: str, other: str) -> str:
    return (
        f"Cannot start memory tracking of {label!r} because {other} is already active in this "
        "process (memray allows one at a time); end it first, or measure in a child process "
        "with measure_in_subprocess()."
    )


def _read_capture(path: Path, *, native: bool) -> tuple[int, list[str]]:
    """Return memray's peak and a line for each of the largest allocations at that peak."""
    with memray.FileReader(path) as reader:
        peak = int(reader.metadata.peak_memory)
        records = sorted(
            reader.get_high_watermark_allocation_records(merge_threads=True),
            key=lambda record: record.size,
            reverse=True,
        )
        stacks = [_describe(record, native=native) for record in records[:_TOP_STACKS]]
    return peak, stacks


def _describe(record: memray.AllocationRecord, *, native: bool) -> str:
    """One line: size, count, the two innermost Python frames and the nearest useful native one."""
    frames = [f"{file}:{line} {function}" for function, file, line in record.stack_trace(max_stacks=2)]
    where = " <- ".join(frames) if frames else "(no Python frame)"
    if native:
        names = [function for function, _file, _line in record.native_stack_trace(max_stacks=_NATIVE_DEPTH)]
        useful = next((n for n in names if not any(a in n for a in _ALLOCATOR_FRAMES)), None)
        if useful is not None:
            where += f"  [native: {useful[:120]}]"
    count = record.n_allocations
    return f"{format_size(record.size):>10}  {count} alloc{'s' if count != 1 else ''}  {where}"


# The child: runs `setup` untracked (imports), then `code` inside a MemoryTracker, writes JSON.
_CHILD = """
import json, sys
from pathlib import Path
from modelperf.measure.memory import MemoryTracker
code, setup, capture_dir, native, keep, out = sys.argv[1:7]
namespace = {"__name__": "__modelperf_measured__"}
exec(compile(setup, "<setup>", "exec"), namespace)
compiled = compile(code, "<measured code>", "exec")
with MemoryTracker(Path(capture_dir), native=native == "1", keep_capture=keep == "1", label="subprocess") as t:
    exec(compiled, namespace)
Path(out).write_text(json.dumps(t.result.to_json()))
"""


def measure_in_subprocess(
    code: str,
    *,
    capture_dir: Path,
    native: bool = True,
    timeout: float = 600,
    setup: str = "",
    keep_capture: bool = False,
) -> MemoryResult:
    """Measure ``code`` in a fresh Python process, so nothing loaded earlier hides its memory.

    ``setup`` runs first, untracked, in the same namespace (put imports there so their memory is
    not counted). A kept capture is the caller's to delete. A failing child raises RuntimeError
    with the child's last line of stderr.
    """
    capture_dir = Path(capture_dir)
    capture_dir.mkdir(parents=True, exist_ok=True)
    fd, out_name = tempfile.mkstemp(prefix="modelperf-memory-", suffix=".json", dir=capture_dir)
    os.close(fd)
    out = Path(out_name)
    flags = [str(int(native)), str(int(keep_capture))]
    argv = [sys.executable, "-c", _CHILD, code, setup, str(capture_dir), *flags, str(out)]
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"Measuring memory in a child process failed: {last}")
        return MemoryResult.from_json(json.loads(out.read_text()))
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(
            f"Measuring memory in a child process took over {format_duration(timeout)}; "
            "raise the timeout or measure less."
        ) from error
    finally:
        out.unlink(missing_ok=True)
