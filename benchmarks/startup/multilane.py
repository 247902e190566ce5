"""Time from creating a multilane pool of 2 until it has run a task on each worker."""
import time

import multilane
from _work import identity


def _ready() -> float:
    start = time.perf_counter()
    ex = multilane.ProcessPoolExecutor(2)
    for f in [ex.submit(identity, i) for i in range(2)]:
        f.result()
    elapsed = time.perf_counter() - start
    ex.shutdown()
    return elapsed


def run(n: int, runs: int) -> float:
    return min(_ready() for _ in range(runs))
