"""Peak extra memory (MB) of this process and all its descendants while one call runs.

The sampler sums ``Pss`` from ``/proc/PID/smaps_rollup`` over the process tree every few
ms: PSS splits a page between the processes mapping it, so shared memory counts once.
Other processes on the machine do not count, nor do shared-memory files no process maps
at that moment (joblib's dump counts once its worker maps it). The sampler runs as a
process of its own (this file, run as a script: it samples until its stdin closes, then
prints the first sample and the peak): a sampling thread would wait for the GIL while the
measured process pickles or copies the array, and miss those moments.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sampler process imports nothing else
    import numpy as np
    from array_sum._common import Call

EVERY = 0.002  # seconds between samples (one sample takes ~1 ms)
READY_TIMEOUT = 10.0


def _tree(root: int, skip: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid == skip:
            continue
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(child) for child in f.read().split()]
        except OSError:  # exited meanwhile
            pass
    return pids


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):  # exited meanwhile
        pass
    return 0


def tree_mb(root: int, skip: int) -> float:
    """The PSS of ``root`` and its descendants but ``skip``, in MB.

    Read in tree order, then backwards, and the smaller sum taken: a page that one process
    maps (or unmaps) while the others are read can be counted twice in one order, not both.
    """
    pids = _tree(root, skip)
    forward = sum(_pss_kb(pid) for pid in pids)
    return min(forward, sum(_pss_kb(pid) for pid in reversed(pids))) / 1024


def peak_extra_mb(call: Callable[[], object]) -> float:
    """The most memory seen while ``call`` runs, minus that just before it (``tree_mb``)."""
    sampler = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(os.getpid())],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sampler.stdin is not None and sampler.stdout is not None
    with sampler:
        if not select.select([sampler.stdout], [], [], READY_TIMEOUT)[0]:
            sampler.kill()
            raise RuntimeError("the memory sampler did not start")
        sampler.stdout.readline()  # "ready": the baseline is sampled
        call()
        sampler.stdin.close()
        baseline, peak = map(float, sampler.stdout.readline().split())
    return peak - baseline


def peak_per_call(caller: Callable[[], AbstractContextManager[Call | None]],
                  fn: Callable[[np.ndarray], object], a: np.ndarray, runs: int) -> float:
    """Peak extra MB of one ``call(fn, a)``, best of ``runs``, each on a fresh pool warmed
    up with an array 1/64 the size: memory a pool keeps from one call to the next (the
    last arguments, a store's pages) would otherwise be in the baseline. NaN if the pool
    does not start (``caller`` yields None)."""
    import numpy as np

    small = np.ones(max(1, a.size // 64))
    return min(_peak_on(caller(), fn, a, small) for _ in range(runs))


def _peak_on(pool: AbstractContextManager[Call | None], fn: Callable[[np.ndarray], object],
             a: np.ndarray, small: np.ndarray) -> float:
    with pool as call:
        if call is None:
            return float("nan")
        call(fn, small)  # warm: the workers started, the libraries imported
        return peak_extra_mb(lambda: call(fn, a))


def _sample(root: int) -> None:
    baseline = peak = tree_mb(root, os.getpid())
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], EVERY)[0]:  # until the parent closes it
        peak = max(peak, tree_mb(root, os.getpid()))
    print(baseline, max(peak, tree_mb(root, os.getpid())), flush=True)


if __name__ == "__main__":
    _sample(int(sys.argv[1]))
