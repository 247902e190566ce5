"""What a task costs in CPU time beside its wall time (issue 18): pipelined submit (every
task submitted, then every result taken) and ``map`` of no-ops, for multilane's process
pool and its peers on this machine.

Wall time alone flatters a runtime that spins: on 2 cores a spinning caller or worker
takes a core the rest of the program could use. The CPU figure is that of this process
and every descendant (its workers, their threads), from their clocks in /proc
(``latency.tree_cpu_s``), over the timed part only; best of ``runs`` by wall time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from _work import identity
from latency import executor, tree_cpu_s

TASKS = {"pipelined submit": 20_000, "map": 100_000}
QUICK_TASKS = {"pipelined submit": 1_000, "map": 5_000}
PEERS = ("multilane", "stdlib", "loky")
MIN_RUN_S = 0.5  # a timed run at least this long: /proc's CPU clocks move by 10 ms ticks
MAX_TASKS = 20_000_000

Executor = Any


def _pipelined(ex: Executor, n: int) -> None:
    for future in [ex.submit(identity, i) for i in range(n)]:
        future.result()


def _map(ex: Executor, n: int) -> None:
    # The standard library's chunksize defaults to 1: each peer at its own default, as a
    # user calls it (multilane and loky pick a chunk size).
    for _ in ex.map(identity, range(n)):
        pass


WORKLOADS: dict[str, Callable[[Executor, int], None]] = {
    "pipelined submit": _pipelined, "map": _map}


def cost(ex: Executor, workload: str, n: int, runs: int,
         min_run_s: float = MIN_RUN_S) -> dict[str, float]:
    """µs of wall and of CPU per task, and CPU over wall, the best run by wall time. A
    run shorter than ``min_run_s`` is made longer first: the CPU clocks move by ticks."""
    run = WORKLOADS[workload]
    run(ex, min(n, 1_000))  # warm: the workers have started and loaded what they need
    while True:
        start = time.perf_counter()
        run(ex, n)
        wall = time.perf_counter() - start
        if wall >= min_run_s or n >= MAX_TASKS:
            break
        n = min(MAX_TASKS, n * math.ceil(min_run_s / max(wall, 1e-6)))
    best: dict[str, float] = {}
    for _ in range(runs):
        cpu, start = tree_cpu_s(), time.perf_counter()
        run(ex, n)
        wall, cpu = time.perf_counter() - start, tree_cpu_s() - cpu
        if not best or wall / n * 1e6 < best["wall"]:
            best = {"wall": wall / n * 1e6, "cpu": cpu / n * 1e6, "cpu_per_wall": cpu / wall}
    return best


def measure(quick: bool = False, runs: int = 3) -> dict[str, dict[str, dict[str, float] | None]]:
    """Per workload, every peer's cost (None: not installed)."""
    tasks = QUICK_TASKS if quick else TASKS
    out: dict[str, dict[str, dict[str, float] | None]] = {w: {} for w in tasks}
    for name in PEERS:
        with executor(name) as ex:
            for workload, n in tasks.items():
                out[workload][name] = None if ex is None else cost(
                    ex, workload, n, runs, 0.0 if quick else MIN_RUN_S)
    return out


def render(figures: dict[str, dict[str, dict[str, float] | None]]) -> list[str]:
    lines = ["## cpu_cost", "",
             "µs per no-op task, of wall time and of CPU time (this process and its workers "
             "together, from their clocks in /proc), on a pool of two workers; best of 3 runs "
             "by wall time, each run at least half a second (more tasks where the given "
             "number ran faster). Pipelined submit submits every task, then takes every result; "
             "map is each peer's `map` at its own default chunk size.", "",
             "| workload | competitor | wall a task | CPU a task | CPU / wall |",
             "| --- | --- | --- | --- | --- |"]
    for workload, peers in figures.items():
        for name, row in peers.items():
            if row is None:
                lines.append(f"| {workload} | {name} | not installed | | |")
            else:
                lines.append(f"| {workload} | {name} | {row['wall']:.2f} | {row['cpu']:.2f} "
                             f"| {row['cpu_per_wall']:.2f}x |")
    return lines + [""]
