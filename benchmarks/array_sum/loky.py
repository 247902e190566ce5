"""array_sum on loky's reusable executor (2 workers)."""
from collections.abc import Iterator
from contextlib import contextmanager

from _work import array_sum
from array_sum._common import Call, array, ms_per_call


@contextmanager
def caller() -> Iterator[Call]:
    from loky import get_reusable_executor
    ex = get_reusable_executor(max_workers=2)
    try:
        yield lambda fn, a: ex.submit(fn, a).result()
    finally:
        ex.shutdown(wait=True)


def run(n: int, runs: int) -> float:
    with caller() as call:
        return ms_per_call(call, array_sum, array(n), runs)
