"""Whether a stored baseline may be compared with a new measurement of the same test.

Pure: a stored :class:`Measurement` and a current one in, ``None`` (compare them) or the one
sentence saying why not out. The store asks it; the pytest face only prints the answer.
"""

from __future__ import annotations

from modelperf.records import Measurement

__all__ = ["why_not_compared"]


def why_not_compared(stored: Measurement, current: Measurement) -> str | None:
    """None when ``current`` may be judged against ``stored``; else the reason, as the end of a line."""
    if stored.model != current.model:
        return (f"the baseline was measured with other weights ({stored.model}, now {current.model}): not "
                "compared; run with --baseline-save to replace it")
    then, now = stored.extra.get("control_version"), current.extra.get("control_version")
    if then != now:
        return (f"the baseline was measured against another control workload ({then}, now {now}; the control "
                "changed, or the model's weight dtypes or shapes did): not compared; run with --baseline-save "
                "to re-record it")
    return None
