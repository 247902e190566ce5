"""Round trip on concurrent.futures.ProcessPoolExecutor."""
from concurrent.futures import ProcessPoolExecutor

from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    n = max(1, n // 5)  # 200 us a task: fewer tasks give the same precision
    with ProcessPoolExecutor(2) as ex:
        for i in range(n):  # warm: one full round, discarded, as for every competitor
            ex.submit(identity, i).result()
        return min(timed(lambda: [ex.submit(identity, i).result() for i in range(n)])
                   for _ in range(runs)) / n * 1e6
