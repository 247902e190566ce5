"""array_sum on multilane with the array made under multilane.zero_copy(): sent uncopied."""
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from _work import array_sum
from array_sum._common import Call, array, ms_per_call

import multilane


def zero_copy_array(n: int) -> np.ndarray:
    """``array(n)``, made in shared memory by multilane's NumPy allocator."""
    with multilane.zero_copy():
        return array(n)


@contextmanager
def caller() -> Iterator[Call]:
    """A pool whose workers make their results with multilane's allocator too."""
    with multilane.ProcessPoolExecutor(2, initializer=multilane.zero_copy) as ex:
        yield lambda fn, a: ex.submit(fn, a).result()


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_sum, zero_copy_array(n), runs)
