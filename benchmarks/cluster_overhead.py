"""Per-task cost of the local process pool, the Dask lane and the Ray lane on this
machine, beside Dask's ``client.submit`` and Ray's remote functions used directly
(issue 17: "when to move to a cluster").

Each cell is a batch of ``n`` equal tasks submitted at once and waited for: a no-op, 1 ms
or 10 ms of Python work, given a float64 NumPy array of 1 KB, 1 MB or 100 MB. The figure
is wall time per task (best of ``runs``); with two slots, a task of T ms cannot cost less
than T/2 ms per task, so the rest is what the runtime costs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from _harness import have

import multilane

SLOTS = 2
TASKS = {"no-op": 0.0, "1 ms": 0.001, "10 ms": 0.010}
SIZES = {"1 KB": 1_000, "1 MB": 1_000_000, "100 MB": 100_000_000}
PEERS = ("multilane process lane", "multilane dask lane", "dask client.submit",
         "multilane ray lane", "ray remote")
OBJECT_STORE = 2**30  # room for a batch of 100 MB arguments
TARGET_RATIO = 1.2  # the Dask lane's no-op cost against client.submit's


def work(seconds: float, array: Any) -> int:
    """``seconds`` of Python work (a spin on the clock), then the array's length."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return len(array)


def batch_size(seconds: float, nbytes: int, quick: bool) -> int:
    """Tasks in a cell: about half a second of work or copying on the local pool, between
    4 and 500 (the clusters take ~2-5 ms a task here: a few seconds a cell)."""
    per_task = max(seconds / SLOTS, nbytes / 1e9, 0.001)
    n = min(500, max(4, int(0.5 / per_task)))
    return max(2, n // 10) if quick else n


Submit = Callable[[Any, float, Any], Any]  # (work, seconds, array) -> a handle
Wait = Callable[[list], Any]


@contextlib.contextmanager
def peer(name: str) -> Iterator[tuple[Submit, Wait] | None]:
    """How ``name`` submits one task and waits for a batch; None if not installed."""
    if "dask" in name and not have("distributed"):
        yield None
        return
    if "ray" in name and not have("ray"):
        yield None
        return
    if name == "multilane process lane":
        with multilane.Executor(processes=SLOTS, profiles=False) as ex:
            view = ex.options(lane="process")
            yield view.submit, lambda fs: [f.result() for f in fs]
    elif name == "multilane dask lane":
        from multilane.cluster.dask import Dask

        with multilane.Executor(cluster=Dask(workers=SLOTS), profiles=False) as ex:
            view = ex.options(lane="cluster")
            yield view.submit, lambda fs: [f.result() for f in fs]
    elif name == "dask client.submit":
        import logging

        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=SLOTS, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address="127.0.0.1:0",
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            yield (lambda fn, *args: client.submit(fn, *args, pure=False)), client.gather
    elif name == "multilane ray lane":
        from multilane.cluster.ray import Ray

        with multilane.Executor(cluster=Ray(cpus=SLOTS, object_store_bytes=OBJECT_STORE),
                                profiles=False) as ex:
            view = ex.options(lane="cluster")
            yield view.submit, lambda fs: [f.result() for f in fs]
    elif name == "ray remote":
        import ray

        path = os.pathsep.join(entry for entry in sys.path if entry)
        ray.init(num_cpus=SLOTS, object_store_memory=OBJECT_STORE, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
        try:
            remote = ray.remote(work)
            yield (lambda fn, *args: remote.remote(*args)), ray.get
        finally:
            ray.shutdown()
    else:
        raise ValueError(name)


def measure(quick: bool, runs: int) -> dict[str, dict[str, float | None]]:
    """{cell: {peer: µs per task, or None if the peer is not installed}}."""
    import numpy as np

    cells = [(task, size) for size in SIZES for task in TASKS]
    arrays = {size: np.ones(SIZES[size] // 8) for size in SIZES}
    out: dict[str, dict[str, float | None]] = {f"{t}, {s}": {} for t, s in cells}
    for name in PEERS:
        print(f"  cluster_overhead/{name} ...", file=sys.stderr, flush=True)
        with peer(name) as calls:
            for task, size in cells:
                cell = f"{task}, {size}"
                if calls is None:
                    out[cell][name] = None
                    continue
                submit, wait = calls
                seconds, array = TASKS[task], arrays[size]
                n = batch_size(seconds, SIZES[size], quick)
                wait([submit(work, seconds, array) for _ in range(2)])  # warm
                best = float("inf")
                for _ in range(runs):
                    start = time.perf_counter()
                    wait([submit(work, seconds, array) for _ in range(n)])
                    best = min(best, (time.perf_counter() - start) / n)
                out[cell][name] = best * 1e6
    return out


def targets(figures: dict[str, dict[str, float | None]]) -> list[tuple[str, str, bool]]:
    noop = figures.get("no-op, 1 KB", {})
    lane, direct = noop.get("multilane dask lane"), noop.get("dask client.submit")
    if lane is None or direct is None:
        return []
    ratio = lane / direct
    return [(f"dask lane per no-op task within {TARGET_RATIO}x of client.submit",
             f"{ratio:.2f}x ({lane:,.0f} against {direct:,.0f} µs)", ratio <= TARGET_RATIO)]


def render(figures: dict[str, dict[str, float | None]]) -> list[str]:
    lines = ["## cluster_overhead", "",
             f"µs of wall time per task, a batch submitted at once on {SLOTS} slots "
             "(a 10 ms task cannot cost less than 5,000 µs here). The clusters run on this "
             "machine: what they add is their own cost, with no network between the "
             "machines.", "",
             "| task, argument | " + " | ".join(PEERS) + " |",
             "| --- " * (len(PEERS) + 1) + "|"]
    for cell, row in figures.items():
        shown = ["not installed" if row.get(p) is None else f"{row[p]:,.0f}" for p in PEERS]
        lines.append(f"| {cell} | " + " | ".join(shown) + " |")
    return lines + [""]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    figures = measure(quick, 1 if quick else 3)
    print("\n".join(render(figures)))
    for target, shown, met in targets(figures):
        print(f"{'met' if met else 'MISSED'}: {target}: {shown}")
