"""``multilane showdown``: the classic GIL experiment, measured on this machine."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

from .._cores import usable_cores
from ._work import countdown

_ROWS = [
    ("sequential", "one core, one task after another: the baseline"),
    ("threads", "the GIL lets one thread run Python at a time: no faster, often slower"),
    ("multiprocessing", "a process per core, each with its own GIL: parallel, costly to start"),
    ("multilane", "pre-started workers fed through shared memory: parallel, cheap to feed"),
    ("ceiling", "bare os.fork() children, no pool at all: the most this machine gives"),
]


def _calibrate(target_s: float = 0.5) -> int:
    """A countdown length that takes about ``target_s`` on this machine."""
    n = 200_000
    start = time.perf_counter()
    countdown(n)
    elapsed = max(time.perf_counter() - start, 1e-6)
    return max(10_000, int(n * target_s / elapsed))


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _sequential(n: int, tasks: int, workers: int) -> float:
    return _time(lambda: [countdown(n) for _ in range(tasks)])


def _threads(n: int, tasks: int, workers: int) -> float:
    def go() -> None:
        threads = [threading.Thread(target=countdown, args=(n,)) for _ in range(tasks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return _time(go)


def _multiprocessing(n: int, tasks: int, workers: int) -> float:
    # The article's version: start the pool and run, start-up included, as people write it.
    def go() -> None:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.map(countdown, [n] * tasks, chunksize=1)
    return _time(go)


def _multilane(n: int, tasks: int, workers: int) -> float:
    from ..lanes.process import ProcessPoolExecutor

    def go() -> None:
        with ProcessPoolExecutor(workers) as ex:
            list(ex.map(countdown, [n] * tasks, chunksize=1))
    return _time(go)


def _ceiling(n: int, tasks: int, workers: int) -> float:
    """Forked children splitting the tasks, nothing else: what the cores can give now."""
    def go() -> None:
        pids = []
        for w in range(workers):
            mine = len(range(w, tasks, workers))
            pid = os.fork()
            if pid == 0:
                for _ in range(mine):
                    countdown(n)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
    return _time(go)


_RUNNERS = {"sequential": _sequential, "threads": _threads,
            "multiprocessing": _multiprocessing, "multilane": _multilane, "ceiling": _ceiling}


def run(n: int | None, tasks: int, workers: int | None, as_json: bool, repeat: int = 3) -> int:
    workers = workers or usable_cores()
    n = n or _calibrate(0.3)
    # Best of `repeat`, lanes interleaved: shared machines drift, and the best run is the
    # one least disturbed by the rest of the machine.
    times = {name: float("inf") for name, _ in _ROWS}
    for _ in range(repeat):
        for name, _why in _ROWS:
            times[name] = min(times[name], _RUNNERS[name](n, tasks, workers))
    base = times["sequential"]
    figures = {name: {"seconds": t, "speedup": base / t if t > 0 else float("inf")}
               for name, t in times.items()}
    if as_json:
        print(json.dumps({"n": n, "tasks": tasks, "workers": workers, "cpus": usable_cores(),
                          "lanes": figures}, indent=2))
        return 0
    print(f"The GIL showdown: {tasks} x countdown({n:,}) on {usable_cores()} CPUs, "
          f"{workers} workers, best of {repeat} (pools include their start-up)\n")
    print(f"{'lane':<16} {'time':>8} {'speedup':>8}  why")
    print(f"{'-' * 16} {'-' * 8} {'-' * 8}  {'-' * 40}")
    for name, why in _ROWS:
        f = figures[name]
        print(f"{name:<16} {f['seconds']:>7.2f}s {f['speedup']:>7.2f}x  {why}")
    print()
    longest = max(times.values())
    for name, _ in _ROWS:
        bar = "#" * max(1, round(40 * times[name] / longest))
        print(f"{name:<16} {bar} {times[name]:.2f}s")
    ceiling = times["ceiling"]
    print(f"\nShorter is better. This machine's cores give {base / ceiling:.2f}x right now "
          f"(the ceiling row); multilane reaches {ceiling / times['multilane']:.0%} of it. "
          "Threads cannot: the GIL runs one at a time.")
    return 0
