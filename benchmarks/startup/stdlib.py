"""Time from creating a concurrent.futures pool of 2 until it has run two tasks."""
import time
from concurrent.futures import ProcessPoolExecutor

from _work import identity


def _ready() -> float:
    start = time.perf_counter()
    ex = ProcessPoolExecutor(2)
    for f in [ex.submit(identity, i) for i in range(2)]:
        f.result()
    elapsed = time.perf_counter() - start
    ex.shutdown()
    return elapsed


def run(n: int, runs: int) -> float:
    return min(_ready() for _ in range(runs))
