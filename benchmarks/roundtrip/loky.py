"""Round trip on loky's reusable executor."""
from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    from loky import get_reusable_executor
    n = max(1, n // 5)
    ex = get_reusable_executor(max_workers=2)
    for i in range(n):  # warm: one full round, discarded, as for every competitor
        ex.submit(identity, i).result()
    try:
        return min(timed(lambda: [ex.submit(identity, i).result() for i in range(n)])
                   for _ in range(runs)) / n * 1e6
    finally:
        ex.shutdown(wait=True)
