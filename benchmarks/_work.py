"""Task functions every competitor runs; importable so that every library can pickle them."""


def identity(x):
    return x


def countdown(n):
    while n > 0:
        n -= 1
    return n


def array_sum(a):
    return float(a.sum())


def array_double(a):
    return a * 2


def shm_apply(fn, name, shape, dtype, out=None):
    """``fn`` on an array in SharedMemory ``name``, the manual way; an array result is
    written into SharedMemory ``out`` (None is returned then)."""
    from multiprocessing.shared_memory import SharedMemory

    import numpy as np

    blocks = [SharedMemory(name)] + ([SharedMemory(out)] if out else [])
    try:
        result = fn(np.ndarray(shape, dtype, buffer=blocks[0].buf))
        if out:
            np.ndarray(shape, dtype, buffer=blocks[1].buf)[...] = result
            result = None
        return result
    finally:
        for block in blocks:
            block.close()


def add_one(x):
    return x + 1


def double(x):
    return x * 2


def minus_three(x):
    return x - 3


def spin_then_len(seconds, array):
    """``seconds`` of Python work (a spin on the clock, holding the GIL), then the array's
    length: the overhead matrix's task."""
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return len(array)
