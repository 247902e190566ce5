"""The one definition of how many cores this process may use, and each worker's share of
them for the native thread pools it loads."""

from __future__ import annotations

import os

__all__ = ["NATIVE_THREAD_VARIABLES", "native_threads", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or taskset's
    limit), else every core of the machine. At least 1."""
    counter = getattr(os, "process_cpu_count", None)  # 3.13: the affinity, and -X cpu_count
    if counter is not None:
        return counter() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# The thread pools of native libraries (OpenMP, OpenBLAS, MKL, BLIS, Accelerate, numexpr,
# Numba): each sizes itself to every core of the machine, so N workers using them at once
# would run N times too many threads, spinning against each other.
NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                           "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                           "NUMBA_NUM_THREADS")


def native_threads(workers: int, threads: int | None = None) -> dict[str, str]:
    """The environment a worker sets before importing anything: ``threads`` for every
    native thread pool if given; else its share of the cores, unless the parent's
    environment sets one."""
    if threads is not None:
        return dict.fromkeys(NATIVE_THREAD_VARIABLES, str(threads))
    share = str(max(1, usable_cores() // workers))
    return {name: share for name in NATIVE_THREAD_VARIABLES if name not in os.environ}
