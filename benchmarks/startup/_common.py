"""Time from creating a pool of 2 until it has run a task on each worker (shutdown excluded)."""
import time
from collections.abc import Callable
from concurrent.futures import Executor

from _work import identity


def seconds_until_ready(make_pool: Callable[[], Executor], runs: int) -> float:
    def once() -> float:
        start = time.perf_counter()
        ex = make_pool()
        for f in [ex.submit(identity, i) for i in range(2)]:
            f.result()
        elapsed = time.perf_counter() - start
        ex.shutdown()
        return elapsed
    return min(once() for _ in range(runs))
