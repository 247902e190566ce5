"""array_sum the manual way: per call, a multiprocessing.shared_memory block made, the array
copied in, its (name, shape, dtype) sent to a stdlib ProcessPoolExecutor(2) worker that
attaches, computes and closes; the block is unlinked after."""
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.shared_memory import SharedMemory

import numpy as np
from _work import array_sum, shm_apply
from array_sum._common import Call, array, ms_per_call


@contextmanager
def caller() -> Iterator[Call]:
    with ProcessPoolExecutor(2) as ex:
        def call(fn: Callable[[np.ndarray], object], a: np.ndarray) -> object:
            block = SharedMemory(create=True, size=a.nbytes)
            try:
                np.ndarray(a.shape, a.dtype, buffer=block.buf)[...] = a
                return ex.submit(shm_apply, fn, block.name, a.shape, a.dtype.str).result()
            finally:
                block.close()
                block.unlink()
        yield call


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_sum, array(n), runs)
