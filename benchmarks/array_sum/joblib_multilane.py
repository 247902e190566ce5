"""array_sum through joblib.Parallel(n_jobs=2) under the "multilane" backend (process
lane): the array travels as any large buffer multilane sends, through shared memory,
where joblib's own backends dump it to a file (see joblib.py, its peer here)."""
from collections.abc import Iterator
from contextlib import contextmanager

from _work import array_sum
from array_sum._common import Call, array, ms_per_call


@contextmanager
def caller() -> Iterator[Call]:
    from joblib import Parallel, delayed, parallel_config

    import multilane.joblib

    try:
        with parallel_config("multilane", lane="process"), Parallel(n_jobs=2) as parallel:
            yield lambda fn, a: parallel([delayed(fn)(a[...])])[0]
    finally:
        multilane.joblib.shutdown()


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_sum, array(n), runs)
