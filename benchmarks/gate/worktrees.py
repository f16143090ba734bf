"""The change side of the gate benchmark: a temporary worktree of REV, and the injected slowdown's code.

Both sides hold REV's code: ``--against REV`` checks the base out itself, and each session runs in
this worktree. What makes the change side slower is :mod:`benchmarks.gate.slowdown`, loaded from a copy
of this ``benchmarks`` package in a folder of its own (so that the running sessions do not see edits
made to the checkout meanwhile, and nothing else of this checkout lands on their path). Git is driven
through :mod:`modelperf.ab.git`, the helper ``--against`` itself uses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelperf.ab.git import BaseTree, check_out, repo_root

from ..studies import REPO

__all__ = ["ChangeTree", "open_change_tree"]

_PACKAGE = Path(__file__).resolve().parents[1]  # benchmarks/


@dataclass(frozen=True)
class ChangeTree:
    """REV checked out for the change side, and the folder that puts ``benchmarks`` on its path."""

    tree: BaseTree
    import_dir: Path

    @property
    def path(self) -> Path:
        return self.tree.path

    @property
    def sha(self) -> str:
        return self.tree.sha

    def pythonpath(self, inherited: str | None) -> str:
        """REV's package first (an installed modelperf would shadow it), then ``benchmarks``."""
        return os.pathsep.join([str(self.path / "plugin"), str(self.import_dir), *filter(None, [inherited])])

    def remove(self) -> None:
        self.tree.remove()
        shutil.rmtree(self.tree.path, ignore_errors=True)
        shutil.rmtree(self.import_dir, ignore_errors=True)


def open_change_tree(rev: str, repo: Path = REPO) -> ChangeTree:
    """Check ``rev`` out, detached, into a temporary folder; raises ``AgainstError`` with one sentence."""
    tree = check_out(repo_root(repo), rev)
    import_dir = Path(tempfile.mkdtemp(prefix="modelperf-gate-import-"))
    shutil.copytree(_PACKAGE, import_dir / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    return ChangeTree(tree, import_dir)
