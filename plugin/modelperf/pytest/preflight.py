"""Checks made before any model work starts, so that a bad folder costs no model load or scoring."""

from __future__ import annotations

import os

from modelperf.config import SettingError
from modelperf.store.atomic import check_writable

__all__ = ["check_cache_folder"]

_FIX = "point MODELPERF_CACHE at a writable folder (it is created if missing), or unset it to use ~/.cache/modelperf"


def check_cache_folder() -> None:
    """Raise a :class:`SettingError` unless the model cache (converted checkpoints, fitted heads, weight
    hashes, Llama's prefix KV cells) is a folder this session can write."""
    from modelperf.models.embedded import cache_root

    folder = cache_root()
    configured = os.environ.get("MODELPERF_CACHE")
    named = f"MODELPERF_CACHE={configured}" if configured else f"The model cache {folder} (MODELPERF_CACHE is unset)"
    if folder.exists() and not folder.is_dir():
        raise SettingError(f"{named} is a file, and the model cache must be a folder: {_FIX}.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        check_writable(folder)
    except OSError as exc:
        raise SettingError(f"{named} cannot be written ({exc.strerror or exc}): {_FIX}.") from None
