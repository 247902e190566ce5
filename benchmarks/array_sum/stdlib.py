"""array_sum on concurrent.futures.ProcessPoolExecutor(2): the array is pickled both ways."""
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from _work import array_sum
from array_sum._common import Call, array, ms_per_call


@contextmanager
def caller() -> Iterator[Call]:
    with ProcessPoolExecutor(2) as ex:
        yield lambda fn, a: ex.submit(fn, a).result()


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_sum, array(n), runs)
