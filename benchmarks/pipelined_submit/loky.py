"""Pipelined submit on loky's reusable executor."""
from pipelined_submit._common import tasks_per_second


def run(n: int, runs: int) -> float:
    from loky import get_reusable_executor
    ex = get_reusable_executor(max_workers=2)
    try:
        return tasks_per_second(ex, max(1, n // 5), runs)
    finally:
        ex.shutdown(wait=True)
