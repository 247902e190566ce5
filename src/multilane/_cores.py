"""The one definition of how many cores this process may use."""

from __future__ import annotations

import os

__all__ = ["usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or taskset's
    limit), else every core of the machine. At least 1."""
    counter = getattr(os, "process_cpu_count", None)  # 3.13: the affinity, and -X cpu_count
    if counter is not None:
        return counter() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
