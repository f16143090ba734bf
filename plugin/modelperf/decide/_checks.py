"""Argument checks shared by the comparisons: a bad argument is one ValueError sentence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["Array", "check_nonnegative", "require"]

Array = np.ndarray[Any, Any]


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_nonnegative(name: str, value: float | None, what: str) -> None:
    require(value is None or (math.isfinite(value) and value >= 0), f"{name}={value!r} must be {what} >= 0.")
