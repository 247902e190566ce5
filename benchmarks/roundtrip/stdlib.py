"""Round trip on concurrent.futures.ProcessPoolExecutor."""
from concurrent.futures import ProcessPoolExecutor

from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    n = max(1, n // 5)  # 200 us a task: fewer tasks give the same precision
    with ProcessPoolExecutor(2) as ex:
        ex.submit(identity, 0).result()
        return min(timed(lambda: [ex.submit(identity, i).result() for i in range(n)])
                   for _ in range(runs)) / n * 1e6
