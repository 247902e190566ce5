"""mpire.WorkerPool(2).map with its default chunking."""
from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    from mpire import WorkerPool
    with WorkerPool(n_jobs=2) as pool:
        pool.map(identity, range(100))
        return min(timed(lambda: pool.map(identity, range(n))) for _ in range(runs))
