"""The same rootdir, and so the same test ids, whether a path option is written ``--opt value`` or ``--opt=value``.

pytest chooses its rootdir and ini file before it loads this plugin, so it does not yet know that
``/x`` in ``--baseline-dir /x`` is an option's value: an existing path there is taken for a test
path, the rootdir moves to the common ancestor, and every test id (the key of baselines and history)
changes with it. Once the options are known (``pytest_load_initial_conftests``, before any conftest
or test is read), :func:`correct_rootdir` chooses again without those values and puts pytest's
choice right, or, where that cannot be done safely, stops with one sentence giving the ``=`` spelling.
"""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path
from typing import Any

import pytest

from modelperf.config import OPTIONS

__all__ = ["correct_rootdir", "values_taken_as_paths"]

# Ini settings pytest acts on before this plugin is loaded: with another ini file they cannot be re-applied.
_APPLIED_EARLY = ("addopts", "pythonpath", "minversion", "required_plugins")


def values_taken_as_paths(args: list[str], invocation_dir: Path) -> list[tuple[str, str]]:
    """(flag, value) of each of this plugin's options given as two arguments whose value is an existing path."""
    flags = {option.flag for option in OPTIONS if option.parse is not None}
    found = []
    for flag, value in itertools.pairwise(args):
        if flag in flags and (invocation_dir / value).exists():
            found.append((flag, value))
    return found


def _setup(config: pytest.Config) -> tuple[Path, Path | None, Any] | None:
    """pytest's rootdir, ini file and ini contents for the true test paths only; None where it cannot tell."""
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        return None
    namespace = config.known_args_namespace
    arguments: dict[str, Any] = {"inifile": namespace.inifilename, "args": list(namespace.file_or_dir),
                                 "rootdir_cmd_arg": namespace.rootdir or None,
                                 "invocation_dir": config.invocation_params.dir}
    if "override_ini" in inspect.signature(determine_setup).parameters:
        arguments["override_ini"] = namespace.override_ini
    rootpath, inipath, inicfg, *_ = determine_setup(**arguments)
    return Path(rootpath), inipath, inicfg


def correct_rootdir(config: pytest.Config, args: list[str]) -> None:
    """Undo the move of the rootdir (and ini file) that a path option's value caused, or raise UsageError."""
    taken = values_taken_as_paths(args, Path(config.invocation_params.dir))
    if not taken:
        return
    found = _setup(config)
    if found is None or (found[0], found[1]) == (config.rootpath, config.inipath):
        return
    rootpath, inipath, inicfg = found
    old_root, old_ini = config.rootpath, config.inipath
    private = all(hasattr(config, name) for name in ("_rootpath", "_inipath", "_inicfg", "_inicache"))
    early = [name for cfg in (inicfg, getattr(config, "_inicfg", {})) for name in _APPLIED_EARLY if name in cfg]
    if not private or (inipath != old_ini and early):
        invocation = Path(config.invocation_params.dir)
        outside = [(f, v) for f, v in taken if not (invocation / v).resolve().is_relative_to(rootpath.resolve())]
        flag, value = (outside or taken)[0]  # the value that moved the rootdir, not one inside the project
        raise pytest.UsageError(
            f"pytest read {value} (the value of {flag}) as a test path too, which moved its rootdir from {rootpath} "
            f"to {old_root} and with it every test id that baselines and history are keyed by: write "
            f"{flag}={value} (with '=') instead.")
    # pytest's own fields: no public way sets them, and the test ids are made from them (pinned by
    # tests/faults/test_path_options.py, so a pytest that renames them is noticed).
    config._rootpath = rootpath
    if inipath != old_ini:
        config._inipath, config._inicfg = inipath, inicfg
        config._inicache.clear()
    namespace = config.known_args_namespace
    if namespace.confcutdir == str(old_ini.parent if old_ini else old_root):  # derived from the moved setup
        namespace.confcutdir = str(inipath.parent if inipath else rootpath)
