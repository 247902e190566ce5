"""One call ``submit(fn, a).result()`` with an n MB float64 array, on a warm pool: ms.

Each competitor's file in ``array_sum`` has a ``caller()`` that starts its pool and yields
``call(fn, a) -> result``; ``array_double`` and ``array_memory`` use the same callers.
"""
from collections.abc import Callable

import numpy as np
from _harness import timed

Call = Callable[[Callable[[np.ndarray], object], np.ndarray], object]


def array(n: int) -> np.ndarray:
    """n MB of float64."""
    return np.ones(n * 2**20 // 8)


def ms_per_call(call: Call, fn: Callable[[np.ndarray], object], a: np.ndarray,
                runs: int) -> float:
    def once() -> None:
        result = call(fn, a)
        if isinstance(result, np.ndarray):
            result[0]  # touched: a lazily fetched result is paid for here
    once()  # warm: one full round, discarded, as for every competitor
    return min(timed(once) for _ in range(runs)) * 1e3
