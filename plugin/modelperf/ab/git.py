"""The base side of ``--against``: REF checked out into a temporary git worktree, and what differs.

Every failure is an :class:`AgainstError` whose message is one sentence: what went wrong, where, and
what to do about it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEPENDENCY_FILES", "AgainstError", "BaseTree", "changed_dependency_files", "check_out", "head_commit",
           "repo_root", "source_roots"]

# Files that pin what a side installs: when they differ, both sides still share this environment.
DEPENDENCY_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "requirements*.txt", "requirements/*.txt",
                    "poetry.lock", "uv.lock", "Pipfile.lock", "tox.ini")
_GIT_TIMEOUT_S = 120  # a worktree of a large repository takes a while to write


class AgainstError(Exception):
    """``--against`` cannot go on as asked; the message says why in one sentence."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S,
                              check=False)
    except FileNotFoundError:
        raise AgainstError("--against needs git, and no `git` command is on the PATH; install git.") from None
    except subprocess.TimeoutExpired:
        raise AgainstError(f"`git {' '.join(args)}` in {root} took over {_GIT_TIMEOUT_S} s; check the "
                           "repository is not locked by another git process.") from None


def repo_root(start: Path) -> Path:
    """The top of the git repository holding ``start``."""
    done = _git(start, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise AgainstError(f"--against compares with another commit, but {start} is not inside a git repository; "
                           "run from a git checkout, or drop --against and use stored baselines.")
    return Path(done.stdout.strip())


def head_commit(repo: Path) -> str | None:
    """The commit checked out in ``repo``; None where there is none (not a repository, no commit yet)."""
    done = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    return done.stdout.strip() or None if done.returncode == 0 else None


@dataclass(frozen=True)
class BaseTree:
    """REF's files in a temporary worktree; :meth:`remove` deletes it and git's record of it."""

    ref: str
    sha: str
    path: Path
    repo: Path

    @property
    def label(self) -> str:
        return self.ref if self.sha.startswith(self.ref) else f"{self.ref} ({self.sha[:10]})"

    def remove(self) -> None:
        _git(self.repo, "worktree", "remove", "--force", str(self.path))
        _git(self.repo, "worktree", "prune")


def check_out(repo: Path, ref: str) -> BaseTree:
    """Resolve ``ref`` and check it out, detached, into a new temporary directory."""
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0 or not done.stdout.strip():
        raise AgainstError(f"--against {ref}: no such commit, branch or tag in {repo}; check the name, or fetch it "
                           "first (in CI: check out with fetch-depth: 0).")
    sha = done.stdout.strip()
    path = Path(tempfile.mkdtemp(prefix=f"modelperf-base-{sha[:10]}-"))
    added = _git(repo, "worktree", "add", "--detach", "--force", str(path), sha)
    if added.returncode != 0:
        detail = (added.stderr.strip().splitlines() or ["no message"])[-1]
        raise AgainstError(f"--against {ref}: could not check {sha[:10]} out into {path} ({detail}); "
                           "check the disk has space and `git worktree prune` runs cleanly.")
    return BaseTree(ref, sha, path, repo)


def changed_dependency_files(repo: Path, sha: str) -> list[str]:
    """Dependency files that differ between ``sha`` and the working tree (both sides share one environment)."""
    done = _git(repo, "diff", "--name-only", sha, "--", *DEPENDENCY_FILES)
    return sorted(done.stdout.split()) if done.returncode == 0 else []


def source_roots(repo: Path, modules: Iterable[object] | None = None) -> list[str]:
    """Directories under ``repo``, relative to it, from which imported modules were loaded.

    A worker of either side puts the same directories of *its* tree first on ``sys.path``, so an
    editable install (``pip install -e .``) of this repository resolves to that side's copy.
    Directories inside a virtual environment (``site-packages``) are not the project's code.
    """
    roots: set[str] = set()
    for module in list(sys.modules.values()) if modules is None else modules:
        file = getattr(module, "__file__", None)
        name = getattr(module, "__name__", "")
        if not file or "." in name:
            continue  # a top-level module or package locates its root; submodules follow it
        path = Path(file).resolve()
        top = path.parent.parent if path.name == "__init__.py" else path.parent
        try:
            relative = top.relative_to(repo.resolve())
        except ValueError:
            continue
        if "site-packages" not in relative.parts and not any(p.startswith(".") for p in relative.parts):
            roots.add(relative.as_posix())
    return sorted(roots)
