"""Soak: 1,000,000 tiny tasks, then 1,000 executor create/shutdown cycles, watching this
process's descriptors, threads, child processes and resident memory (issue: reliability).

``run(tasks, cycles)`` returns the figures at the start (after a warm-up), after the tasks
and after the cycles; ``run.py`` renders them and checks they did not grow.
"""
from __future__ import annotations

import gc
import os
import threading

from _work import identity

import multilane

BATCH = 10_000  # tasks in flight at once


def snapshot() -> dict[str, float]:
    gc.collect()
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    me = str(os.getpid())
    kids = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids += fields[1] == me and fields[0] != "Z"
    return {"descriptors": len(os.listdir("/proc/self/fd")), "threads": threading.active_count(),
            "child processes": kids, "resident MB": rss / 1024}


def run(tasks: int, cycles: int) -> dict[str, dict[str, float]]:
    out = {}
    with multilane.ProcessPoolExecutor(2) as ex:
        for f in [ex.submit(identity, i) for i in range(BATCH)]:
            f.result()
    # What a process opens once and keeps (the auto lane's profile store: a file and its
    # two SQLite companions) is opened before the first snapshot, as the tests' conftest
    # does for uvloop's pipe: only what grows with tasks and executors is a leak.
    with multilane.Executor(processes=1, threads=1) as ex:
        ex.submit(identity, 1).result()
    out["start"] = snapshot()
    with multilane.ProcessPoolExecutor(2) as ex:
        for start in range(0, tasks, BATCH):
            futures = [ex.submit(identity, i) for i in range(start, min(tasks, start + BATCH))]
            assert [f.result() for f in futures] == list(range(start, start + len(futures)))
            del futures
    out[f"after {tasks:,} tasks"] = snapshot()
    for _ in range(cycles):
        with multilane.Executor(processes=1, threads=1) as ex:
            ex.submit(identity, 1).result()
            ex.options(lane="thread").submit(identity, 1).result()
    out[f"after {cycles:,} executors"] = snapshot()
    return out
