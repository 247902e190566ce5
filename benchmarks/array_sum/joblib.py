"""array_sum on joblib.Parallel(n_jobs=2) with memmapping: arrays over 1 MB are dumped to a
file (in /dev/shm where it can) that the worker maps.

Each call passes a new view of the array: joblib keeps the file it dumped for an array
object and sends that object's file again, unchanged (a result computed on stale data if
the array changed in place). Timed on the same object, this would be multilane.shared's
case (an array placed once), not an array sent with each call."""
from collections.abc import Iterator
from contextlib import contextmanager

from _work import array_sum
from array_sum._common import Call, array, ms_per_call


@contextmanager
def caller() -> Iterator[Call]:
    from joblib import Parallel, delayed
    with Parallel(n_jobs=2, max_nbytes="1M") as parallel:
        yield lambda fn, a: parallel([delayed(fn)(a[...])])[0]


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_sum, array(n), runs)
