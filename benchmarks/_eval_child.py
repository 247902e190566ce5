"""The measuring process of auto_eval: one workload, every lane, one line of JSON.

``python _eval_child.py SPEC MODE RUNS`` (or the workload's ``main`` script, which calls
``main(work)``). The function is imported or defined before any timing: the user's
process pays that the same for every lane. Then, in ``lanes`` mode, the best of ``RUNS``
rounds of each of: the plain sequential loop, every fixed lane (hybrid at each of
``HYBRID``'s concurrencies) and the auto lane; in ``auto`` mode one auto run (auto_eval
runs it in a fresh process per round, each with the profiles one earlier run stored),
after one untimed sequential run: in ``lanes`` mode the other timings warm the process
first (a NumPy sum of 32 MB arrays took 0.44 s a map in a cold process, 0.24 s warm),
and the stored auto lane is compared with lanes timed so.

Each timing has an executor of its own, made with the defaults (a process per core), its
pools started before the timer by calls that do not touch the workload (the auto lane's
thread and process lanes too: its time holds its exploration and the workers' first import
of the function's module, not the start of the workers), shut down after the timer.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import _eval_homes
from _eval_kernels import build_items

import multilane

RESULT = "AUTO_EVAL_RESULT "
HYBRID = (4, 16, 64)
FIXED = ("inline", "thread", "process", *(f"hybrid{c}" for c in HYBRID))
SHORT_S = 0.02  # a timing this short is taken twice as often: it is mostly noise
PRUNE = 3.0  # after a round, fixed lanes this much slower than the best are not re-timed
WARM_TIMEOUT_S = 10.0


def _warm(ex: multilane.Executor, lane: str) -> None:
    """Starts ``lane``'s pool and waits until every worker has run a call."""
    view = ex.options(lane=lane)
    view.submit(abs, -1).result()
    if lane == "thread":
        return
    workers = ex.statistics()[lane].workers
    seen: set[int] = set()
    deadline = time.monotonic() + WARM_TIMEOUT_S
    while len(seen) < workers and time.monotonic() < deadline:
        seen |= {f.result() for f in [view.submit(os.getpid) for _ in range(4 * workers)]}
        if len(seen) < workers:
            time.sleep(0.002)


def _executor_timer(lane: str, fn: Callable[[Any], Any], items: list[Any], submit: bool,
                    chosen: dict[str, Any]) -> Callable[[], float]:
    """Times one run of ``fn`` over ``items`` on ``lane`` (``hybridC``: the hybrid lane at
    concurrency C), on an executor of its own."""
    name = "hybrid" if lane.startswith("hybrid") else lane
    kwargs = {"hybrid_concurrency": int(lane[6:])} if name == "hybrid" else {}
    warm = {"auto": ("process", "thread"), "inline": ()}.get(name, (name,))

    def run() -> float:
        ex = multilane.Executor(**kwargs)
        try:
            for pool in warm:
                _warm(ex, pool)
            start = time.perf_counter()
            if submit:
                [f.result() for f in [ex.options(lane=name).submit(fn, x) for x in items]]
            else:
                list(ex.options(lane=name).map(fn, items))
            elapsed = time.perf_counter() - start
            if name == "auto" and elapsed < chosen.get("auto_s", float("inf")):
                explanation = ex.explain(fn)
                chosen.update(auto_s=elapsed, explain=str(explanation),
                              lanes=sorted({p["lane"] or "undecided"
                                             for p in explanation.profiles}))
        finally:
            ex.shutdown()
        return elapsed

    return run


def _sequential_timer(fn: Callable[[Any], Any], items: list[Any],
                      submit: bool) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        if submit:
            [fn(x) for x in items]
        else:
            list(map(fn, items))
        return time.perf_counter() - start

    return run


def best_interleaved(timers: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """The best timing of each timer over ``runs`` rounds. Each round times every timer in
    turn, starting one further along each round, so that no timer always runs in another's
    wake; a timing under SHORT_S is taken twice per round. After the first round a fixed
    lane more than PRUNE times slower than the best fixed lane is not timed again: it
    cannot be the best, and on a slow lane the rounds would cost minutes."""
    best: dict[str, float] = {}
    names = list(timers)
    for round_ in range(runs):
        fixed = [best[name] for name in FIXED if name in best]
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            if round_ and name in FIXED and best[name] > PRUNE * min(fixed):
                continue
            for _ in range(2):
                best[name] = min(best.get(name, float("inf")), timers[name]())
                if best[name] >= SHORT_S:
                    break
    return best


def main(work: Callable[[Any], Any] | None = None) -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    mode, runs = sys.argv[2], int(sys.argv[3])
    start = time.perf_counter()
    fn = work if work is not None else _eval_homes.function(spec)
    import_s = time.perf_counter() - start
    items = build_items(spec["items"], spec["calls"], os.environ.get("AUTO_EVAL_HTTP"))
    submit = spec["mode"] == "submit"
    chosen: dict[str, Any] = {}
    if mode == "auto":
        # As in ``lanes`` mode, where other timings run first in the same process: the
        # process is warm (its allocator's pools and thresholds, the function's first
        # calls, lazy imports inside it) for every lane alike, the stored auto lane too.
        _sequential_timer(fn, items, submit)()
    timers = {"auto": _executor_timer("auto", fn, items, submit, chosen)}
    if mode == "lanes":
        timers["sequential"] = _sequential_timer(fn, items, submit)
        for lane in FIXED:
            timers[lane] = _executor_timer(lane, fn, items, submit, chosen)
    times = best_interleaved(timers, runs)
    print(RESULT + json.dumps({"times": times, "auto_lanes": chosen.get("lanes", []),
                               "explain": chosen.get("explain", ""), "import_s": import_s}),
          flush=True)


if __name__ == "__main__":
    main()
