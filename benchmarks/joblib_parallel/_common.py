"""joblib.Parallel(n_jobs=2) over n tiny calls, on one backend: the backend's executor is
reused between calls (loky's is; multilane's backend shares one), so a first call warms
it and the best of the rest counts. Issue 17's target: the multilane backend >= 5x
faster than loky, joblib's default."""
from _harness import timed
from _work import identity


def run(n: int, runs: int, backend: str, **options: object) -> float:
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend, n_jobs=2, **options):
        Parallel()(delayed(identity)(i) for i in range(n))  # warm
        return min(timed(lambda: Parallel()(delayed(identity)(i) for i in range(n)))
                   for _ in range(runs))
