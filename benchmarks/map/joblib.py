"""joblib.Parallel(n_jobs=2) with its default batching, measured on n/10 items and scaled."""
from _harness import timed
from _work import identity


def run(n: int, runs: int) -> float:
    from joblib import Parallel, delayed
    m = max(1, n // 10)
    with Parallel(n_jobs=2) as parallel:
        parallel(delayed(identity)(i) for i in range(100))
        return min(timed(lambda: parallel(delayed(identity)(i) for i in range(m)))
                   for _ in range(runs)) * n / m
