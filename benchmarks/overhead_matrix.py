"""The overhead matrix (issue 18): what one task costs on each runtime, for tasks of three
sizes crossed with arguments of three sizes, like for like on this machine.

Each cell is a batch of ``n`` equal tasks handed over at once and waited for: a no-op,
1 ms or 10 ms of Python work (holding the GIL), each given the same float64 NumPy array of
1 KB, 1 MB or 100 MB. The figure is wall time per task, best of ``runs``. Every runtime
has two slots (processes, workers or threads), so a task of T ms cannot cost less than
T/2 ms per task: the rest is what the runtime costs.

Each runtime is called the way its users call it: an executor's ``submit`` for each task
(multilane, the standard library, loky), ``Parallel`` over the batch (joblib: it dumps an
argument over 1 MB to a file once per batch and sends its name), ``WorkerPool.map``
(mpire), ``.remote`` (Ray), ``dask.delayed`` computed on the threaded scheduler, and
``client.submit`` on a ``LocalCluster`` (Dask). The clusters run on this machine: what
they add is their own cost, with no network between machines. A runtime that does not
install here is shown as such, never dropped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from _harness import have
from _work import spin_then_len

import multilane

SLOTS = 2
TASKS = {"no-op": 0.0, "1 ms": 0.001, "10 ms": 0.010}
SIZES = {"1 KB": 1_000, "1 MB": 1_000_000, "100 MB": 100_000_000}
PEERS = ("multilane process lane", "multilane, shared array", "multilane auto", "stdlib",
         "loky", "joblib", "mpire",
         "ray remote", "multilane ray lane", "dask threaded", "dask LocalCluster",
         "multilane dask lane")
NEEDS = {"loky": "loky", "joblib": "joblib", "mpire": "mpire", "ray remote": "ray",
         "multilane ray lane": "ray", "dask threaded": "dask",
         "dask LocalCluster": "distributed", "multilane dask lane": "distributed"}
OBJECT_STORE = 2**30  # room for a batch of 100 MB arguments
TARGET_RATIO = 1.2  # the Dask lane's no-op cost against client.submit's (issue 17)
NOT_INSTALLED = None
FAILED = math.nan

Batch = Callable[[float, Any, int], object]  # (seconds, array, n): runs n tasks


def batch_size(seconds: float, nbytes: int, quick: bool) -> int:
    """Tasks in a cell: about half a second of work or copying on the fastest runtimes,
    between 4 and 500 (the clusters take ~2-5 ms a task here: a few seconds a cell)."""
    per_task = max(seconds / SLOTS, nbytes / 1e9, 0.001)
    n = min(500, max(4, int(0.5 / per_task)))
    return max(2, n // 10) if quick else n


def _submitting(ex: Any) -> Batch:
    """A batch on a ``concurrent.futures``-style executor: submit each, then wait."""
    def batch(seconds: float, array: Any, n: int) -> object:
        return [f.result() for f in [ex.submit(spin_then_len, seconds, array)
                                     for _ in range(n)]]
    return batch


@contextlib.contextmanager
def _multilane(lane: str, cluster: Any = None) -> Iterator[Batch]:
    with multilane.Executor(processes=SLOTS, cluster=cluster, profiles=False) as ex:
        yield _submitting(ex.options(lane=lane))


@contextlib.contextmanager
def _multilane_shared() -> Iterator[Batch]:
    """The process lane, each cell's array placed once with ``multilane.shared`` (at the
    cell's warm-up, untimed, as ``ray.put`` would be): its buffer goes to each worker
    once, and every task sends a few numbers naming it."""
    placed: dict[int, Any] = {}
    with _multilane("process") as send:
        def batch(seconds: float, array: Any, n: int) -> object:
            if id(array) not in placed:
                placed[id(array)] = multilane.shared(array)
            return send(seconds, placed[id(array)], n)
        yield batch


@contextlib.contextmanager
def _ray() -> Iterator[Batch]:
    import ray

    path = os.pathsep.join(entry for entry in sys.path if entry)  # workers import _work
    ray.init(num_cpus=SLOTS, object_store_memory=OBJECT_STORE, include_dashboard=False,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        remote = ray.remote(spin_then_len)
        yield lambda seconds, array, n: ray.get([remote.remote(seconds, array)
                                                 for _ in range(n)])
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _dask_cluster() -> Iterator[Batch]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=SLOTS, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        yield lambda seconds, array, n: client.gather(
            [client.submit(spin_then_len, seconds, array, pure=False) for _ in range(n)])


@contextlib.contextmanager
def _dask_threaded() -> Iterator[Batch]:
    import dask

    def batch(seconds: float, array: Any, n: int) -> object:
        tasks = [dask.delayed(spin_then_len, pure=False)(seconds, array) for _ in range(n)]
        return dask.compute(*tasks, scheduler="threads", num_workers=SLOTS)
    yield batch


@contextlib.contextmanager
def _joblib() -> Iterator[Batch]:
    from joblib import Parallel, delayed

    with Parallel(n_jobs=SLOTS) as parallel:
        yield lambda seconds, array, n: parallel(delayed(spin_then_len)(seconds, array)
                                                 for _ in range(n))


@contextlib.contextmanager
def _mpire() -> Iterator[Batch]:
    from mpire import WorkerPool

    with WorkerPool(n_jobs=SLOTS) as pool:
        yield lambda seconds, array, n: pool.map(spin_then_len, [(seconds, array)] * n,
                                                 progress_bar=False)


@contextlib.contextmanager
def _stdlib() -> Iterator[Batch]:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(SLOTS) as ex:
        yield _submitting(ex)


@contextlib.contextmanager
def _loky() -> Iterator[Batch]:
    from loky import get_reusable_executor

    ex = get_reusable_executor(max_workers=SLOTS)
    try:
        yield _submitting(ex)
    finally:
        ex.shutdown(wait=True)


def _dask_lane() -> Any:
    from multilane.cluster.dask import Dask

    return _multilane("cluster", Dask(workers=SLOTS))


def _ray_lane() -> Any:
    from multilane.cluster.ray import Ray

    return _multilane("cluster", Ray(cpus=SLOTS, object_store_bytes=OBJECT_STORE))


OPENERS: dict[str, Callable[[], Any]] = {
    "multilane process lane": lambda: _multilane("process"),
    "multilane, shared array": _multilane_shared,
    "multilane auto": lambda: _multilane("auto"),
    "stdlib": _stdlib, "loky": _loky, "joblib": _joblib, "mpire": _mpire,
    "ray remote": _ray, "multilane ray lane": _ray_lane,
    "dask threaded": _dask_threaded, "dask LocalCluster": _dask_cluster,
    "multilane dask lane": _dask_lane,
}


def cells() -> list[tuple[str, str]]:
    return [(task, size) for size in SIZES for task in TASKS]


def _time_cells(batch: Batch, arrays: dict[str, Any], quick: bool, runs: int,
                out: dict[str, float | None]) -> None:
    """Times every cell into ``out``, in order (a failure leaves the rest as they were)."""
    for task, size in cells():
        seconds, array = TASKS[task], arrays[size]
        n = batch_size(seconds, SIZES[size], quick)
        batch(seconds, array, 2)  # warm: workers started, the function imported
        best = math.inf
        for _ in range(runs):
            start = time.perf_counter()
            batch(seconds, array, n)
            best = min(best, (time.perf_counter() - start) / n)
        out[f"{task}, {size}"] = best * 1e6
    return out


def measure(quick: bool, runs: int) -> dict[str, dict[str, float | None]]:
    """{peer: {cell: µs per task}}: None for every cell of a peer that is not installed,
    NaN for those of one that failed (its error is printed)."""
    import numpy as np

    arrays = {size: np.ones(SIZES[size] // 8) for size in SIZES}
    names = [f"{t}, {s}" for t, s in cells()]
    out: dict[str, dict[str, float | None]] = {}
    for name in PEERS:
        print(f"  overhead_matrix/{name} ...", file=sys.stderr, flush=True)
        if name in NEEDS and not have(NEEDS[name]):
            out[name] = dict.fromkeys(names, NOT_INSTALLED)
            continue
        out[name] = dict.fromkeys(names, FAILED)
        try:
            with warnings.catch_warnings():
                # Dask warns of a large object in the task graph: the matrix measures it.
                warnings.simplefilter("ignore")
                with OPENERS[name]() as batch:
                    _time_cells(batch, arrays, quick, runs, out[name])
        except Exception as e:  # one runtime that breaks leaves the others' figures
            print(f"  overhead_matrix/{name} failed: {e!r}", file=sys.stderr, flush=True)
    return out


def targets(figures: dict[str, dict[str, float | None]]) -> list[tuple[str, str, bool]]:
    lane = figures.get("multilane dask lane", {}).get("no-op, 1 KB")
    direct = figures.get("dask LocalCluster", {}).get("no-op, 1 KB")
    if lane is None or direct is None or math.isnan(lane) or math.isnan(direct):
        return []
    ratio = lane / direct
    return [(f"dask lane per no-op task within {TARGET_RATIO}x of client.submit",
             f"{ratio:.2f}x ({lane:,.0f} against {direct:,.0f} µs)", ratio <= TARGET_RATIO)]


def shown(value: float | None) -> str:
    if value is None:
        return "not installed"
    return "failed" if math.isnan(value) else f"{value:,.0f}"


def fastest_peer(figures: dict[str, dict[str, float | None]],
                 cell: str) -> tuple[float, str] | None:
    """The lowest figure in ``cell`` among the runtimes that are not multilane's."""
    measured = [(value, name) for name, row in figures.items()
                if not name.startswith("multilane") and (value := row.get(cell)) is not None
                and not math.isnan(value)]
    return min(measured) if measured else None


def render(figures: dict[str, dict[str, float | None]],
           plot_path: str | None = None) -> list[str]:
    names = [f"{t}, {s}" for t, s in cells()]
    lines = ["## overhead_matrix", "",
             f"µs of wall time per task, a batch handed over at once on {SLOTS} slots of each "
             "runtime, every task given the same array (joblib dumps one over 1 MB to a file "
             "once a batch; \"multilane, shared array\" placed it with `multilane.shared` "
             "once, untimed; the others send it with each task). The floor is T/2 for a task "
             f"of T: {SLOTS} slots. The clusters run on this machine.", "",
             "| runtime | " + " | ".join(names) + " |", "| --- " * (len(names) + 1) + "|",
             "| *floor* | " + " | ".join(f"{TASKS[t] / SLOTS * 1e6:,.0f}"
                                         for t, _ in cells()) + " |"]
    for name, row in figures.items():
        lines.append(f"| {name} | " + " | ".join(shown(row.get(c)) for c in names) + " |")
    process = figures.get("multilane process lane", {})
    against = []
    for cell in names:
        best, mine = fastest_peer(figures, cell), process.get(cell)
        if best is None or mine is None or math.isnan(mine):
            against.append("")
        else:
            ratio = round(best[0] / mine, 2)
            word = "faster" if ratio > 1 else "slower" if ratio < 1 else "as fast"
            against.append(f"{ratio:.2f}x {word} ({best[1]})")
    lines.append("| *process lane against the fastest other runtime* | "
                 + " | ".join(against) + " |")
    if plot_path:
        lines += ["", f"![the overhead matrix]({plot_path})"]
    return lines + [""]


def plot(figures: dict[str, dict[str, float | None]], path: str, title: str) -> None:
    """One panel per cell (tasks down, arguments across), a bar per runtime: what it costs
    per task above the floor (its own work on two slots), on a log scale, the time per
    task written beside; written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt

    names = list(figures)
    fig, axes = plt.subplots(len(TASKS), len(SIZES), figsize=(15, 11), sharex=True)
    try:
        for i, task in enumerate(TASKS):
            floor = TASKS[task] / SLOTS * 1e6
            for j, size in enumerate(SIZES):
                ax, cell = axes[i][j], f"{task}, {size}"
                values = [figures[name].get(cell) for name in names]
                # No runtime beats the floor; a figure at it (within the clock's noise)
                # is drawn at 1 µs, the axis' start.
                above = [max(v - floor, 1.0) if v is not None and not math.isnan(v) else 0.0
                         for v in values]
                measured = [bar > 0 for bar in above]
                colours = ["tab:green" if name.startswith("multilane") else "tab:grey"
                           for name in names]
                ax.barh(range(len(names)), above, color=colours)
                for k, value in enumerate(values):
                    label = f"{value:,.0f} µs" if measured[k] else shown(value)
                    ax.text(above[k] * 1.15 if measured[k] else 1.2, k, label,
                            va="center", fontsize=7)
                ax.set_xscale("log")
                ax.set_xlim(1, 10**7)
                ax.set_title(f"{task} task, {size} argument (floor {floor:,.0f} µs)",
                             fontsize=9)
                ax.set_yticks(range(len(names)), names if j == 0 else [], fontsize=8)
                ax.invert_yaxis()
                if i == len(TASKS) - 1:
                    ax.set_xlabel("µs per task above the floor (log scale); "
                                  "beside: µs per task")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    figures = measure(quick, 1 if quick else 3)
    print("\n".join(render(figures)))
    for target, measured, met in targets(figures):
        print(f"{'met' if met else 'MISSED'}: {target}: {measured}")
